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
    return AccountOut(
        name=account.name,
        display_name=account.display_name,
        role=account.role,
        trusted=account.trusted,
        created_at=account.created_at,
        disabled=account.disabled_at is not None,
    )


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    token: str | None = Field(default=None, description="Only present when the token is created.")


def token_out(row: ApiToken, plain: str | None = None) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        token=plain,
    )


class PartOut(BaseModel):
    slug: str
    title: str
    description: str


def part_out(part: DatasetPart) -> PartOut:
    return PartOut(slug=part.slug, title=part.title, description=part.description)


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
    return DatasetOut(
        slug=dataset.slug,
        title=dataset.title,
        description=dataset.description,
        description_html=dataset.description_html,
        source_urls=list(dataset.source_urls),
        license=dataset.license,
        publisher=dataset.publisher,
        threat=dataset.threat,
        scarcity=dataset.scarcity,
        tags=dataset.tag_names,
        parts=[part_out(p) for p in dataset.parts],
        status=dataset.status,
        version=dataset.version,
        upload_count=dataset.upload_count,
        submitted_by=dataset.account.name if dataset.account else None,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
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
    return VersionOut(
        number=v.number,
        summary=v.summary,
        created_at=v.created_at,
        account=v.account.name if v.account else None,
        content_hash=v.content_hash,
        parent_hash=v.parent_hash,
        data=v.data,
    )


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
    return UploadOut(
        infohash=upload.infohash,
        infohash_v1=upload.infohash_v1,
        infohash_v2=upload.infohash_v2,
        infohash_v2_truncated=upload.infohash_v2_short,
        torrent_version=upload.torrent_version,
        name=upload.name,
        dataset=upload.dataset.slug,
        parts=[p.slug for p in upload.parts],
        total_size=upload.total_size,
        file_count=upload.file_count,
        piece_length=upload.piece_length,
        private=upload.private,
        trackers=upload.trackers,
        webseeds=upload.webseeds,
        comment=upload.comment,
        created_by=upload.created_by,
        creation_date=upload.creation_date,
        description=upload.description,
        description_html=upload.description_html,
        method=upload.method,
        status=upload.status,
        seeders=upload.seeders,
        leechers=upload.leechers,
        completed=upload.completed,
        submitted_by=upload.account.name if upload.account else None,
        created_at=upload.created_at,
        magnet=magnet_link(upload),
        torrent_url=f"{base_url}/api/v1/uploads/{upload.infohash}/torrent",
        url=f"{base_url}/uploads/{upload.infohash}",
    )


class FileOut(BaseModel):
    index: int
    path: str
    size: int


def file_out(f: UploadFile) -> FileOut:
    return FileOut(index=f.idx, path=f.path, size=f.size)


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
    return ReportOut(
        id=r.id,
        target_type=r.target_type,
        target_id=r.target_id,
        kind=r.kind,
        reason=r.reason,
        status=r.status,
        resolution=r.resolution,
        reported_by=r.account.name if r.account else None,
        resolved_by=r.resolved_by.name if r.resolved_by else None,
        created_at=r.created_at,
        resolved_at=r.resolved_at,
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
    return AuditOut(
        id=e.id,
        created_at=e.created_at,
        actor=e.actor.name if e.actor else None,
        action=e.action,
        target_type=e.target_type,
        target_id=e.target_id,
        reason=e.reason,
        detail=e.detail,
    )
