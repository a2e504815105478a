"""Seeding API: an upload's seeding status, and web seeds people submit for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from holdfast.api.deps import CurrentAccount, InstanceDep, RequireAccount
from holdfast.catalogue.models import Status
from holdfast.errors import Conflict, Gone, InvalidInput
from holdfast.jobs import enqueue
from holdfast.seeding.checks import MAX_URL_LENGTH, WebseedRefused, check_webseed_url
from holdfast.seeding.models import SubmittedWebseed
from holdfast.seeding.status import seeding_status
from holdfast.seeding.webseed import webseed_url

router = APIRouter(prefix="/api/v1", tags=["seeding"])

MAX_WEBSEEDS_PER_UPLOAD = 50


class SeedingOut(BaseModel):
    seeding: bool = Field(description="The instance's own seeder is seeding it now.")
    state: str = Field(
        description='"off", "no_data", "not_public", "starting", or the torrent state '
        '("checking_files", "seeding", "error", ...).'
    )
    peers: int
    seeds: int
    upload_rate: int = Field(description="Bytes per second.")
    download_rate: int = Field(description="Bytes per second.")
    uploaded: int = Field(description="Bytes uploaded by this instance, all time.")
    downloaded: int
    progress: float
    ratio: float = Field(description="Uploaded bytes divided by the upload's size.")
    error: str
    webseed: bool = Field(description="The instance serves the data over HTTP (BEP 19).")
    webseed_url: str | None


class WebseedIn(BaseModel):
    url: str = Field(max_length=MAX_URL_LENGTH, description="A BEP 19 web seed URL.")


class WebseedOut(BaseModel):
    id: int
    url: str
    state: str = Field(description='"pending", "ok" or "failed".')
    pieces_checked: int
    error: str
    created_at: datetime
    checked_at: datetime | None


def webseed_out(row: SubmittedWebseed) -> WebseedOut:
    return WebseedOut(
        id=row.id,
        url=row.url,
        state=row.state,
        pieces_checked=row.pieces_checked,
        error=row.error,
        created_at=row.created_at,
        checked_at=row.checked_at,
    )


@router.get("/uploads/{infohash}/seeding", response_model=SeedingOut)
def upload_seeding(infohash: str, viewer: CurrentAccount, instance: InstanceDep) -> SeedingOut:
    """Whether this instance seeds the upload, its peers, rates and ratio."""
    upload = instance.catalogue.get_upload(viewer, infohash)
    status = seeding_status(instance, upload)
    data: dict[str, Any] = status.as_dict()
    data["webseed_url"] = (
        webseed_url(instance.base_url, upload.infohash) if status.webseed else None
    )
    return SeedingOut(**data)


@router.get("/uploads/{infohash}/webseeds", response_model=list[WebseedOut])
def list_webseeds(infohash: str, viewer: CurrentAccount, instance: InstanceDep) -> list[WebseedOut]:
    """Web seeds submitted for the upload and what checking them found."""
    upload = instance.catalogue.get_upload(viewer, infohash)
    with instance.db.read() as s:
        rows = s.scalars(
            select(SubmittedWebseed)
            .where(SubmittedWebseed.upload_id == upload.id)
            .order_by(SubmittedWebseed.id)
            .limit(MAX_WEBSEEDS_PER_UPLOAD)
        ).all()
    return [webseed_out(r) for r in rows]


@router.post("/uploads/{infohash}/webseeds", response_model=WebseedOut, status_code=201)
def submit_webseed(
    infohash: str, body: WebseedIn, actor: RequireAccount, instance: InstanceDep
) -> WebseedOut:
    """Offer a web seed for the upload. It is checked in the background by fetching a
    few pieces and verifying their hashes; private addresses are refused."""
    upload = instance.catalogue.get_upload(actor, infohash)
    if upload.status == Status.removed.value or upload.dataset.status == Status.removed.value:
        raise Gone("this upload was removed")
    try:
        url = check_webseed_url(body.url, allow_private=instance.settings.allow_private_addresses)
    except WebseedRefused as exc:
        raise InvalidInput(str(exc), fields={"url": str(exc)}) from None
    from holdfast.seeding.jobs import check_submitted_webseed

    try:
        with instance.db.write() as s:
            count = len(
                s.scalars(
                    select(SubmittedWebseed.id).where(SubmittedWebseed.upload_id == upload.id)
                ).all()
            )
            if count >= MAX_WEBSEEDS_PER_UPLOAD:
                raise Conflict("this upload has as many web seeds as it may have")
            row = SubmittedWebseed(upload_id=upload.id, account_id=actor.id, url=url)
            s.add(row)
            s.flush()
            enqueue(s, check_submitted_webseed, {"id": row.id}, key=f"webseed-check:{row.id}")
    except IntegrityError:
        raise Conflict("this web seed was already submitted for this upload") from None
    return webseed_out(row)
