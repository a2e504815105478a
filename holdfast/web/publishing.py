"""Publishing and editing: one form creates a dataset and attaches a .torrent (or adds a
.torrent to an existing dataset); another edits a dataset, each edit a new version.

Everything the form sent is checked before anything is stored, and every problem is
shown next to its field: the dataset's fields, the torrent (parsed, and refused if it
is already in the catalogue), the upload's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from holdfast.accounts.models import Account
from holdfast.api.catalogue import read_torrent
from holdfast.api.deps import InstanceDep
from holdfast.catalogue.access import can_edit
from holdfast.catalogue.models import Dataset, Scarcity, Threat
from holdfast.catalogue.schemas import DatasetEdit, DatasetIn, PartIn, UploadIn, slugify
from holdfast.errors import (
    Conflict,
    Gone,
    HoldfastError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from holdfast.instance import Instance
from holdfast.torrents import Torrent
from holdfast.web.forms import (
    AccountDep,
    PagesDep,
    VisitorDep,
    render_page,
    see_other,
    split_commas,
    split_lines,
    validation_fields,
)

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=100_000)]
Short = Annotated[str, Form(max_length=2000)]
Slug = Annotated[str, Path(max_length=100)]
THREATS = [(t.value, t.value) for t in Threat]
SCARCITIES = [(s.value, s.value) for s in Scarcity]


@dataclass
class PublishForm:
    """What the publish form sent, kept to show it again with its errors."""

    mode: str = "new"
    dataset: str = ""
    title: str = ""
    slug: str = ""
    description: str = ""
    source_urls: str = ""
    license: str = ""
    publisher: str = ""
    threat: str = "unknown"
    scarcity: str = "unknown"
    tags: str = ""
    upload_description: str = ""
    method: str = ""
    parts: list[str] = field(default_factory=list)


def _publish_page(
    request: Request,
    visitor: Any,
    pages: Any,
    instance: Instance,
    values: PublishForm,
    *,
    errors: dict[str, str] | None = None,
    message: str = "",
    status: int = 200,
) -> Response:
    existing: Dataset | None = None
    if values.mode == "existing" and values.dataset:
        try:
            existing = instance.catalogue.get_dataset(visitor.account, values.dataset)
        except (NotFound, Gone):
            existing = None
    return render_page(
        request,
        pages,
        visitor,
        "publish.html",
        {
            "values": values,
            "existing": existing,
            "errors": errors or {},
            "message": message,
            "threats": THREATS,
            "scarcities": SCARCITIES,
            "max_torrent_bytes": instance.settings.max_torrent_bytes,
        },
        status=status,
    )


@router.get("/publish")
def publish_form(
    actor: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    dataset: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    values = PublishForm(mode="existing" if dataset else "new", dataset=dataset)
    return _publish_page(request, visitor, pages, instance, values)


def _dataset_in(values: PublishForm, errors: dict[str, str]) -> DatasetIn | None:
    try:
        return DatasetIn(
            title=values.title,
            slug=values.slug.strip() or None,
            description=values.description,
            source_urls=split_lines(values.source_urls),
            license=values.license,
            publisher=values.publisher,
            threat=values.threat,  # type: ignore[arg-type]  # validated by pydantic
            scarcity=values.scarcity,  # type: ignore[arg-type]
            tags=split_commas(values.tags),
        )
    except ValidationError as exc:
        errors.update(validation_fields(exc))
        return None


def _upload_in(slug: str, values: PublishForm, errors: dict[str, str]) -> UploadIn | None:
    try:
        return UploadIn(
            dataset=slug,
            description=values.upload_description,
            method=values.method,
            parts=values.parts,
        )
    except ValidationError as exc:
        for name, problem in validation_fields(exc).items():
            errors.setdefault("upload_description" if name == "description" else name, problem)
        return None


def _check_torrent(
    instance: Instance, actor: Account, data: bytes, errors: dict[str, str]
) -> Torrent | None:
    try:
        return instance.catalogue.check_torrent(actor, data)
    except HoldfastError as exc:
        errors["torrent"] = exc.message
        return None


@router.post("/publish")
def publish_submit(
    actor: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    mode: Annotated[str, Form(pattern="^(new|existing)$")] = "new",
    dataset: Short = "",
    title: Short = "",
    slug: Short = "",
    description: Text = "",
    source_urls: Text = "",
    license: Short = "",
    publisher: Short = "",
    threat: Short = "unknown",
    scarcity: Short = "unknown",
    tags: Short = "",
    upload_description: Text = "",
    method: Text = "",
    parts: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    torrent: Annotated[UploadFile | None, File()] = None,
) -> Response:
    values = PublishForm(
        mode=mode,
        dataset=dataset.strip(),
        title=title,
        slug=slug,
        description=description,
        source_urls=source_urls,
        license=license,
        publisher=publisher,
        threat=threat,
        scarcity=scarcity,
        tags=tags,
        upload_description=upload_description,
        method=method,
        parts=parts,
    )
    errors: dict[str, str] = {}
    catalogue = instance.catalogue

    # 1. Check everything, change nothing.
    dataset_in: DatasetIn | None = None
    target_slug = values.dataset
    if mode == "new":
        dataset_in = _dataset_in(values, errors)
        if dataset_in is not None:
            target_slug = dataset_in.slug or slugify(dataset_in.title)
            if not target_slug:
                errors["slug"] = "the title has no letters or digits; give a slug"
    else:
        try:
            existing = catalogue.get_dataset(actor, values.dataset)
            if not can_add_upload(existing):
                errors["dataset"] = f"the dataset is {existing.status}; uploads cannot be added"
        except (NotFound, Gone) as exc:
            errors["dataset"] = exc.message if values.dataset else "give the dataset's slug"

    torrent_bytes = b""
    parsed: Torrent | None = None
    if torrent is not None:
        try:
            torrent_bytes = read_torrent(instance, torrent)
        except HoldfastError as exc:
            errors["torrent"] = exc.message
    if torrent_bytes:
        parsed = _check_torrent(instance, actor, torrent_bytes, errors)
    elif mode == "existing" and "torrent" not in errors:
        errors["torrent"] = "choose the .torrent file to add"
    upload_in = _upload_in(target_slug or "placeholder", values, errors)

    if errors:
        return _publish_page(
            request,
            visitor,
            pages,
            instance,
            values,
            errors=errors,
            message="Nothing was published: check the fields marked below."
            + (" Choose the .torrent file again." if torrent_bytes else ""),
            status=422,
        )

    # 2. Store, in one transaction: the dataset (when new) with its upload.
    try:
        if parsed is None:
            if dataset_in is None:  # pragma: no cover - errors above would have returned
                raise InvalidInput("choose the .torrent file to add")
            created = catalogue.create_dataset(actor, dataset_in)
            return see_other(f"/datasets/{created.slug}")
        if upload_in is None:  # pragma: no cover - errors above would have returned
            raise InvalidInput("invalid upload fields")
        upload = catalogue.publish(
            actor,
            upload_in.model_copy(update={"dataset": target_slug}),
            parsed,
            torrent_bytes,
            new_dataset=dataset_in,
        )
    except HoldfastError as exc:
        # Only a race gets here (the same slug or torrent published at the same
        # moment); the transaction stored nothing.
        return _publish_page(
            request,
            visitor,
            pages,
            instance,
            values,
            errors=exc.fields or {"torrent": exc.message},
            message=f"Nothing was published: {exc.message}.",
            status=exc.status,
        )
    return see_other(f"/uploads/{upload.infohash}")


def can_add_upload(dataset: Dataset) -> bool:
    return dataset.status != "removed"


# -------------------------------------------------------------------- editing


def _edit_values(dataset: Dataset) -> dict[str, Any]:
    return {
        "title": dataset.title,
        "description": dataset.description,
        "source_urls": "\n".join(dataset.source_urls),
        "license": dataset.license,
        "publisher": dataset.publisher,
        "threat": dataset.threat,
        "scarcity": dataset.scarcity,
        "tags": ", ".join(dataset.tag_names),
        "summary": "",
        "base_version": dataset.version,
    }


def _editable(instance: Instance, actor: Account, slug: str) -> Dataset:
    dataset = instance.catalogue.get_dataset(actor, slug)
    if not can_edit(actor, dataset.status, dataset.account_id):
        raise PermissionDenied("only the submitter or a moderator can edit this dataset")
    return dataset


def _edit_page(
    request: Request,
    visitor: Any,
    pages: Any,
    dataset: Dataset,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    part_values: dict[str, str] | None = None,
    part_errors: dict[str, str] | None = None,
    message: str = "",
    status: int = 200,
) -> Response:
    return render_page(
        request,
        pages,
        visitor,
        "dataset_edit.html",
        {
            "dataset": dataset,
            "values": values,
            "errors": errors or {},
            "part_values": part_values or {"slug": "", "title": "", "description": ""},
            "part_errors": part_errors or {},
            "message": message,
            "threats": THREATS,
            "scarcities": SCARCITIES,
        },
        status=status,
    )


@router.get("/datasets/{slug}/edit")
def edit_form(
    slug: Slug,
    actor: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
) -> Response:
    dataset = _editable(instance, actor, slug)
    return _edit_page(request, visitor, pages, dataset, _edit_values(dataset))


@router.post("/datasets/{slug}/edit")
def edit_submit(
    slug: Slug,
    actor: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    title: Short = "",
    description: Text = "",
    source_urls: Text = "",
    license: Short = "",
    publisher: Short = "",
    threat: Short = "unknown",
    scarcity: Short = "unknown",
    tags: Short = "",
    summary: Short = "",
    base_version: Annotated[int, Form(ge=1)] = 1,
) -> Response:
    dataset = _editable(instance, actor, slug)
    values: dict[str, Any] = {
        "title": title,
        "description": description,
        "source_urls": source_urls,
        "license": license,
        "publisher": publisher,
        "threat": threat,
        "scarcity": scarcity,
        "tags": tags,
        "summary": summary,
        "base_version": base_version,
    }

    def unchanged(errors: dict[str, str] | None, why: str, status: int) -> Response:
        return _edit_page(
            request,
            visitor,
            pages,
            dataset,
            values,
            errors=errors,
            message=f"Nothing was changed: {why}.",
            status=status,
        )

    try:
        edit = DatasetEdit(
            **values | {"source_urls": split_lines(source_urls), "tags": split_commas(tags)}
        )
    except ValidationError as exc:
        return unchanged(validation_fields(exc), "check the fields marked below", 422)
    try:
        instance.catalogue.edit_dataset(actor, slug, edit)
    except (InvalidInput, Conflict) as exc:
        return unchanged(exc.fields, exc.message, exc.status)
    return see_other(f"/datasets/{slug}")


@router.post("/datasets/{slug}/parts")
def add_part(
    slug: Slug,
    actor: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    part_slug: Short = "",
    part_title: Short = "",
    part_description: Text = "",
) -> Response:
    dataset = _editable(instance, actor, slug)
    part_values = {"slug": part_slug, "title": part_title, "description": part_description}
    try:
        part = PartIn(slug=part_slug.strip(), title=part_title, description=part_description)
        instance.catalogue.add_part(actor, slug, part)
    except ValidationError as exc:
        part_errors = validation_fields(exc)
    except (InvalidInput, Conflict) as exc:
        part_errors = exc.fields or {"slug": exc.message}
    else:
        return see_other(f"/datasets/{slug}/edit#parts")
    return _edit_page(
        request,
        visitor,
        pages,
        dataset,
        _edit_values(dataset),
        part_values=part_values,
        part_errors=part_errors,
        message="The part was not added: check the fields marked below.",
        status=422,
    )
