"""Background work of the seeding area: checking web seeds people submit."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from holdfast.catalogue.models import TorrentBlob
from holdfast.db.base import utcnow
from holdfast.jobs import JobContext, JobFailed, job
from holdfast.seeding.checks import check_webseed
from holdfast.seeding.models import SubmittedWebseed, WebseedState
from holdfast.torrents import TorrentError, parse_torrent


@job("seeding.check_webseed", max_attempts=3, lock_seconds=300)
def check_submitted_webseed(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Sample pieces from a submitted web seed; record `ok` or `failed` with the reason."""
    webseed_id = payload.get("id")
    if not isinstance(webseed_id, int):
        raise JobFailed("payload needs an integer id")
    with ctx.db.read() as s:
        row = s.get(SubmittedWebseed, webseed_id)
        if row is None:
            return  # withdrawn, or its upload was deleted
        url, upload_id = row.url, row.upload_id
        data = s.scalar(select(TorrentBlob.data).where(TorrentBlob.upload_id == upload_id))
    if data is None:
        raise JobFailed("the upload's torrent is missing")
    try:
        torrent = parse_torrent(data)
    except TorrentError as exc:
        raise JobFailed(f"stored torrent unreadable: {exc.reason}") from exc
    result = asyncio.run(
        check_webseed(
            url,
            torrent,
            allow_private=ctx.settings.allow_private_addresses,
            seed=webseed_id,
        )
    )
    with ctx.db.write() as s:
        row = s.get(SubmittedWebseed, webseed_id)
        if row is None:
            return
        row.state = (WebseedState.ok if result.ok else WebseedState.failed).value
        row.pieces_checked = result.pieces_checked
        row.error = result.error[:2000]
        row.checked_at = utcnow()
