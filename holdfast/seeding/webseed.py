"""The instance's web seed (BEP 19): stored data over HTTP, with Range requests.

URL form: a torrent lists `<base_url>/webseed/<infohash>/` in its `url-list`. Clients
then ask for `<base_url>/webseed/<infohash>/<name>/<path>` (multi-file torrents) or
`<base_url>/webseed/<infohash>/<name>` (single-file torrents); `<base_url>/webseed/
<infohash>` itself also answers with a single-file torrent's file. `<infohash>` is the
v1, v2 or truncated v2 hash.

Only files of approved uploads (in approved datasets) are served, and only paths the
torrent lists: the request path must equal one of the upload's file paths, which the
torrent parser has already cleaned, and the file on disk, symlinks resolved, must be
inside the upload's folder. Anything else is a 404. Ranges, HEAD, If-Range and 416
come from Starlette's FileResponse.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from holdfast.api.deps import InstanceDep
from holdfast.catalogue.models import Status, Upload, UploadFile
from holdfast.catalogue.service import infohash_condition
from holdfast.errors import NotFound
from holdfast.instance import Instance
from holdfast.seeding.storage import UnsafePath, resolve_inside, upload_folder, upload_key

router = APIRouter(tags=["seeding"], include_in_schema=False)


def webseed_url(base_url: str, infohash: str) -> str:
    """The `url-list` entry under which this instance serves an upload's files."""
    return f"{base_url.rstrip('/')}/webseed/{infohash}/"


def locate(instance: Instance, infohash: str, path: str) -> tuple[Path, os.stat_result]:
    """The file on disk for `path` in an approved upload, and its size; NotFound otherwise."""
    if not instance.settings.webseed:
        raise NotFound("this instance serves no web seed")
    with instance.db.read() as s:
        upload = s.scalar(select(Upload).where(infohash_condition(infohash)))
        if (
            upload is None
            or upload.status != Status.approved.value
            or upload.dataset.status != Status.approved.value
        ):
            raise NotFound("no such upload")
        if path == "" or path == upload.name:
            # Single-file torrents: the URL itself or <url>/<name>.
            if upload.file_count != 1:
                raise NotFound("no such file in this upload")
            row = s.scalar(select(UploadFile).where(UploadFile.upload_id == upload.id))
        else:
            row = s.scalar(
                select(UploadFile).where(UploadFile.upload_id == upload.id, UploadFile.path == path)
            )
        if row is None:
            raise NotFound("no such file in this upload")
        key = upload_key(upload.infohash_v1, upload.infohash_v2)
        rel, size = row.path, row.size
    folder = upload_folder(instance.settings.resolved_storage_dir, key)
    try:
        target = resolve_inside(folder, rel)
        info = target.stat()
    except (UnsafePath, OSError):
        raise NotFound("this file is not stored here") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        raise NotFound("this file is not stored here")
    return target, info


async def _serve(request: Request, instance: Instance, infohash: str, path: str) -> FileResponse:
    target, info = await run_in_threadpool(locate, instance, infohash, path)
    return FileResponse(
        target,
        stat_result=info,
        media_type="application/octet-stream",
        headers={"Accept-Ranges": "bytes", "Cache-Control": "public, max-age=86400"},
        content_disposition_type="attachment",
    )


@router.api_route("/webseed/{infohash}", methods=["GET", "HEAD"])
async def webseed_root(request: Request, infohash: str, instance: InstanceDep) -> FileResponse:
    """A single-file upload's file (BEP 19 url without a trailing slash)."""
    return await _serve(request, instance, infohash, "")


@router.api_route("/webseed/{infohash}/{path:path}", methods=["GET", "HEAD"])
async def webseed_file(
    request: Request, infohash: str, path: str, instance: InstanceDep
) -> FileResponse:
    """One file of an approved upload, with HTTP Range support."""
    return await _serve(request, instance, infohash, path)
