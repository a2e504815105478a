"""What the JSON API returns. Built from the models by the `*_out` functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, Field

from holdfast.accounts.models import Account, ApiToken
from holdfast.catalogue.models import Dataset, DatasetPart, DatasetVersion, Upload, UploadFile
from holdfast.moderation.models import AuditEntry, Report

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def from_row(model: type[M], row: Any, **computed: Any) -> M:
    """`model` filled from the same-named attributes of `row`; `computed` gives the rest."""
    values = {name: getattr(row, name) for name in model.model_fields if name not in computed}
    return model(**values, **computed)


def name_of(account: Account | None) -> str | None:
    return account.name if account else None


class Ok(BaseModel):
    ok: bool = True


class ErrorOut(BaseModel):
    ok: bool = False
    error: str
    status: int
    fields: dict[str, str] | None = None


class PageOut(BaseModel, Generic[T]):
    ok: bool = True
    items: list[T]
    total: int
    page: int
    per_page: int
    pages: int


def page_out(items: list[Any], total: int, offset: int, limit: int) -> dict[str, Any]:
    return {
        "ok": True,
        "items": items,
        "total": total,
        "page": offset // limit + 1,
        "per_page": limit,
        "pages": (total + limit - 1) // limit,
    }


class AccountOut(BaseModel):
    name: str
    display_name: str
    role: str
    trusted: bool
    created_at: datetime
    disabled: bool = False


def account_out(account: Account) -> AccountOut:
    return from_row(AccountOut, account, disabled=account.disabled_at is not None)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    token: str | None = Field(default=None, description="Only present when the token is created.")


def token_out(row: ApiToken, plain: str | None = None) -> TokenOut:
    return from_row(TokenOut, row, token=plain)


class PartOut(BaseModel):
    slug: str
    title: str
    description: str


def part_out(part: DatasetPart) -> PartOut:
    return from_row(PartOut, part)


class DatasetOut(BaseModel):
    slug: str
    title: str
    description: str
    description_html: str
    source_urls: list[str]
    license: str
    publisher: str
    threat: str
    scarcity: str
    tags: list[str]
    parts: list[PartOut]
    status: str
    version: int
    upload_count: int
    submitted_by: str | None
    created_at: datetime
    updated_at: datetime
    url: str


def dataset_out(dataset: Dataset, base_url: str) -> DatasetOut:
    return from_row(
        DatasetOut,
        dataset,
        source_urls=list(dataset.source_urls),
        tags=dataset.tag_names,
        parts=[part_out(p) for p in dataset.parts],
        submitted_by=name_of(dataset.account),
        url=f"{base_url}/datasets/{dataset.slug}",
    )


class VersionOut(BaseModel):
    number: int
    summary: str
    created_at: datetime
    account: str | None
    content_hash: str
    parent_hash: str | None
    data: dict[str, Any]


def version_out(v: DatasetVersion) -> VersionOut:
    return from_row(VersionOut, v, account=name_of(v.account))


def magnet_link(upload: Upload, *, trackers: list[str] | None = None) -> str:
    """A magnet link naming every hash the torrent has (BEP 9, BEP 52)."""
    params = []
    if upload.infohash_v1:
        params.append(f"xt=urn:btih:{upload.infohash_v1}")
    if upload.infohash_v2:
        params.append(f"xt=urn:btmh:1220{upload.infohash_v2}")
    params.append("dn=" + quote(upload.name, safe=""))
    seen: set[str] = set()
    for url in (trackers or []) + [t for tier in upload.trackers for t in tier]:
        if url not in seen:
            seen.add(url)
            params.append("tr=" + quote(url, safe=""))
    for url in upload.webseeds:
        params.append("ws=" + quote(url, safe=""))
    return "magnet:?" + "&".join(params)


class UploadOut(BaseModel):
    infohash: str = Field(description="The v2 infohash when the torrent has one, else v1.")
    infohash_v1: str | None
    infohash_v2: str | None
    infohash_v2_truncated: str | None
    torrent_version: str
    name: str
    dataset: str
    parts: list[str]
    total_size: int
    file_count: int
    piece_length: int
    private: bool
    trackers: list[list[str]]
    webseeds: list[str]
    comment: str
    created_by: str
    creation_date: datetime | None
    description: str
    description_html: str
    method: str
    status: str
    seeders: int | None
    leechers: int | None
    completed: int | None
    submitted_by: str | None
    created_at: datetime
    magnet: str
    torrent_url: str
    url: str


def upload_out(upload: Upload, base_url: str) -> UploadOut:
    return from_row(
        UploadOut,
        upload,
        infohash_v2_truncated=upload.infohash_v2_short,
        dataset=upload.dataset.slug,
        parts=[p.slug for p in upload.parts],
        submitted_by=name_of(upload.account),
        magnet=magnet_link(upload),
        torrent_url=f"{base_url}/api/v1/uploads/{upload.infohash}/torrent",
        url=f"{base_url}/uploads/{upload.infohash}",
    )


class FileOut(BaseModel):
    index: int
    path: str
    size: int


def file_out(f: UploadFile) -> FileOut:
    return from_row(FileOut, f, index=f.idx)


class SearchHitOut(BaseModel):
    kind: str
    score: float
    dataset: DatasetOut
    upload: UploadOut | None


class ReportOut(BaseModel):
    id: int
    target_type: str
    target_id: int
    kind: str
    reason: str
    status: str
    resolution: str
    reported_by: str | None
    resolved_by: str | None
    created_at: datetime
    resolved_at: datetime | None


def report_out(r: Report) -> ReportOut:
    return from_row(
        ReportOut, r, reported_by=name_of(r.account), resolved_by=name_of(r.resolved_by)
    )


class AuditOut(BaseModel):
    id: int
    created_at: datetime
    actor: str | None
    action: str
    target_type: str
    target_id: int
    reason: str
    detail: dict[str, Any]


def audit_out(e: AuditEntry) -> AuditOut:
    return from_row(AuditOut, e, actor=name_of(e.actor))
