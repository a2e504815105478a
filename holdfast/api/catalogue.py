"""Catalogue API: datasets, parts, versions, uploads, files, torrents, tags, search."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from holdfast.api.deps import CurrentAccount, InstanceDep, PagingDep, RequireAccount
from holdfast.api.schemas import (
    DatasetOut,
    FileOut,
    PageOut,
    PartOut,
    SearchHitOut,
    UploadOut,
    VersionOut,
    dataset_out,
    file_out,
    page_out,
    part_out,
    upload_out,
    version_out,
)
from holdfast.catalogue.models import Threat
from holdfast.catalogue.schemas import DatasetEdit, DatasetIn, PartIn, UploadIn
from holdfast.catalogue.service import Page
from holdfast.errors import InvalidInput, PayloadTooLarge
from holdfast.instance import Instance

router = APIRouter(tags=["catalogue"])

T = TypeVar("T")


class ListPageOut(PageOut[T], Generic[T]):
    """A page of a listing whose matches are counted only up to a cap.

    Counting every match of a large catalogue on each request is what makes listings
    slow, so `total` stops at a cap (10,000 for listings, 1,000 for search): when
    `total_exact` is false there are more than `total`, and `pages` is a lower bound.
    `has_next` always says whether another page follows.
    """

    total: int = Field(description="Number of matches, counted up to a cap (see total_exact).")
    pages: int = Field(description="Number of pages; a lower bound when total_exact is false.")
    total_exact: bool = Field(
        description="False when there are more matches than `total` (the count's cap)."
    )
    has_next: bool = Field(description="Whether a page follows this one.")


class TagOut(BaseModel):
    name: str
    datasets: int = Field(description="Number of datasets with this tag that you can see.")


def listing_out(items: list[Any], page: Page) -> dict[str, Any]:
    return {
        **page_out(items, page.total, page.offset, page.limit),
        "total_exact": page.total_exact,
        "has_next": bool(page.has_next),
    }


@router.get("/datasets", response_model=ListPageOut[DatasetOut])
def list_datasets(
    viewer: CurrentAccount,
    instance: InstanceDep,
    paging: PagingDep,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    threat: Threat | None = None,
    sort: Annotated[str, Query(pattern="^(updated|created|title|uploads)$")] = "updated",
) -> dict[str, Any]:
    page = instance.catalogue.list_datasets(
        viewer,
        offset=paging.offset,
        limit=paging.limit,
        tag=tag,
        threat=threat.value if threat else None,
        sort=sort,
    )
    return listing_out([dataset_out(d, instance.base_url) for d in page.items], page)


@router.post("/datasets", response_model=DatasetOut, status_code=201)
def create_dataset(body: DatasetIn, actor: RequireAccount, instance: InstanceDep) -> DatasetOut:
    """Create a dataset. From an untrusted account it waits for review (status `pending`)."""
    dataset = instance.catalogue.create_dataset(actor, body)
    return dataset_out(instance.catalogue.get_dataset(actor, dataset.slug), instance.base_url)


@router.get("/datasets/{slug}", response_model=DatasetOut)
def get_dataset(slug: str, viewer: CurrentAccount, instance: InstanceDep) -> DatasetOut:
    return dataset_out(instance.catalogue.get_dataset(viewer, slug), instance.base_url)


@router.patch("/datasets/{slug}", response_model=DatasetOut)
def edit_dataset(
    slug: str, body: DatasetEdit, actor: RequireAccount, instance: InstanceDep
) -> DatasetOut:
    """Edit a dataset; each edit is a new version in its history."""
    instance.catalogue.edit_dataset(actor, slug, body)
    return dataset_out(instance.catalogue.get_dataset(actor, slug), instance.base_url)


@router.get("/datasets/{slug}/versions", response_model=ListPageOut[VersionOut])
def dataset_versions(
    slug: str, viewer: CurrentAccount, instance: InstanceDep, paging: PagingDep
) -> dict[str, Any]:
    """The dataset's edit history, newest version first."""
    page = instance.catalogue.versions(viewer, slug, offset=paging.offset, limit=paging.limit)
    return listing_out([version_out(v) for v in page.items], page)


@router.post("/datasets/{slug}/parts", response_model=PartOut, status_code=201)
def add_part(slug: str, body: PartIn, actor: RequireAccount, instance: InstanceDep) -> PartOut:
    return part_out(instance.catalogue.add_part(actor, slug, body))


@router.get("/datasets/{slug}/uploads", response_model=ListPageOut[UploadOut])
def dataset_uploads(
    slug: str, viewer: CurrentAccount, instance: InstanceDep, paging: PagingDep
) -> dict[str, Any]:
    page = instance.catalogue.list_uploads(
        viewer, dataset=slug, offset=paging.offset, limit=paging.limit
    )
    return listing_out([upload_out(u, instance.base_url) for u in page.items], page)


@router.get("/uploads", response_model=ListPageOut[UploadOut])
def list_uploads(
    viewer: CurrentAccount,
    instance: InstanceDep,
    paging: PagingDep,
    sort: Annotated[str, Query(pattern="^(created|size|seeders)$")] = "created",
) -> dict[str, Any]:
    page = instance.catalogue.list_uploads(
        viewer, offset=paging.offset, limit=paging.limit, sort=sort
    )
    return listing_out([upload_out(u, instance.base_url) for u in page.items], page)


def read_torrent(instance: Instance, torrent: UploadFile) -> bytes:
    limit = instance.settings.max_torrent_bytes
    data = torrent.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the .torrent file is larger than {limit} bytes", fields={"torrent": "too large"}
        )
    return data


def upload_fields(dataset: str, description: str, method: str, parts: str) -> UploadIn:
    try:
        return UploadIn(
            dataset=dataset,
            description=description,
            method=method,
            parts=[p.strip() for p in parts.split(",") if p.strip()],
        )
    except ValidationError as exc:
        fields = {".".join(str(x) for x in e["loc"]): e["msg"] for e in exc.errors()}
        raise InvalidInput("invalid upload fields", fields=fields) from exc


@router.post("/uploads", response_model=UploadOut, status_code=201)
def create_upload(
    actor: RequireAccount,
    instance: InstanceDep,
    torrent: Annotated[UploadFile, File(description="The .torrent file.")],
    dataset: Annotated[str, Form(description="Slug of the dataset this belongs to.")],
    description: Annotated[str, Form(max_length=100_000)] = "",
    method: Annotated[str, Form(max_length=100_000)] = "",
    parts: Annotated[str, Form(description="Comma-separated part slugs.")] = "",
) -> UploadOut:
    """Attach a torrent to a dataset. The file is kept byte for byte."""
    fields = upload_fields(dataset, description, method, parts)
    upload = instance.catalogue.create_upload(actor, fields, read_torrent(instance, torrent))
    return upload_out(instance.catalogue.get_upload(actor, upload.infohash), instance.base_url)


@router.get("/uploads/{infohash}", response_model=UploadOut)
def get_upload(infohash: str, viewer: CurrentAccount, instance: InstanceDep) -> UploadOut:
    """An upload by its v1, v2 or truncated v2 infohash."""
    return upload_out(instance.catalogue.get_upload(viewer, infohash), instance.base_url)


@router.post("/uploads/{infohash}/replace", response_model=UploadOut, status_code=201)
def replace_upload(
    infohash: str,
    actor: RequireAccount,
    instance: InstanceDep,
    torrent: Annotated[UploadFile, File(description="The corrected .torrent file.")],
) -> UploadOut:
    """Replace an upload's torrent. The old one is removed only if the new one is accepted."""
    new = instance.catalogue.replace_upload(actor, infohash, None, read_torrent(instance, torrent))
    return upload_out(instance.catalogue.get_upload(actor, new.infohash), instance.base_url)


@router.get("/uploads/{infohash}/files", response_model=ListPageOut[FileOut])
def upload_files(
    infohash: str,
    viewer: CurrentAccount,
    instance: InstanceDep,
    paging: PagingDep,
    prefix: Annotated[str | None, Query(max_length=4096)] = None,
) -> dict[str, Any]:
    page = instance.catalogue.upload_files(
        viewer, infohash, offset=paging.offset, limit=paging.limit, prefix=prefix
    )
    return listing_out([file_out(f) for f in page.items], page)


@router.get(
    "/uploads/{infohash}/torrent",
    response_class=Response,
    responses={200: {"content": {"application/x-bittorrent": {}}}},
)
def download_torrent(infohash: str, viewer: CurrentAccount, instance: InstanceDep) -> Response:
    """The original .torrent file, byte for byte."""
    upload, data = instance.catalogue.torrent_bytes(viewer, infohash)
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in upload.name)[:150]
    return Response(
        content=data,
        media_type="application/x-bittorrent",
        headers={"Content-Disposition": f'attachment; filename="{filename or "upload"}.torrent"'},
    )


@router.get(
    "/tags",
    response_model=list[TagOut],
    responses={200: {"headers": {"Link": {"description": 'The next page, rel="next".'}}}},
)
def list_tags(
    viewer: CurrentAccount,
    instance: InstanceDep,
    response: Response,
    page: Annotated[int, Query(ge=1, le=100_000, description="Page number, from 1.")] = 1,
    per_page: Annotated[int, Query(ge=1, le=500, description="Tags per page.")] = 200,
) -> list[TagOut]:
    """Tags of the datasets you can see, most used first, a page at a time; when more
    follow, the `Link` header names the next page (rel="next")."""
    tags = instance.catalogue.tags(viewer, offset=(page - 1) * per_page, limit=per_page)
    if tags.has_next:
        next_url = f"{instance.base_url}/api/v1/tags?page={page + 1}&per_page={per_page}"
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return [TagOut(name=name, datasets=n) for name, n in tags.items]


@router.get("/search", response_model=ListPageOut[SearchHitOut])
def search(
    viewer: CurrentAccount,
    instance: InstanceDep,
    paging: PagingDep,
    q: Annotated[str, Query(max_length=500, description="Words to look for; any text is safe.")],
    kind: Annotated[str | None, Query(pattern="^(dataset|upload)$")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    threat: Threat | None = None,
    min_size: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    max_size: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> dict[str, Any]:
    """Search datasets, uploads and file paths inside torrents, best matches first."""
    result = instance.search.search(
        viewer,
        q,
        kind=kind,
        tag=tag,
        threat=threat.value if threat else None,
        min_size=min_size,
        max_size=max_size,
        offset=paging.offset,
        limit=paging.limit,
    )
    items = [
        SearchHitOut(
            kind=h.kind,
            score=h.score,
            dataset=dataset_out(h.dataset, instance.base_url),
            upload=upload_out(h.upload, instance.base_url) if h.upload else None,
        )
        for h in result.hits
    ]
    return listing_out(items, result.page)
