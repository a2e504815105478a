"""The ActivityPub routes: discovery, the actor and its collections, objects, inboxes."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from holdfast.accounts.models import Account
from holdfast.api.errors import envelope
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.federation.discovery import (
    NODEINFO_CONTENT_TYPE,
    NODEINFO_PATH,
    NodeInfoInput,
    nodeinfo_discovery,
    nodeinfo_document,
    webfinger,
)
from holdfast.federation.documents import ACTIVITY_JSON, object_context, tombstone
from holdfast.federation.errors import (
    DocumentError,
    FederationError,
    SignatureRejected,
    WebFingerError,
)
from holdfast.federation.httpsig import (
    HttpRequest,
    VerificationPolicy,
    check_signer_is_actor,
    verify_request,
)
from holdfast.federation.jobs import queue_receive_many
from holdfast.federation.models import FedObject, ObjectState
from holdfast.federation.replication import Receiver, Refused, id_of, types_of
from holdfast.federation.service import TORRENT_BUNDLE_TYPE, Federation, host_of
from holdfast.federation.strictjson import loads_strict

router = APIRouter(include_in_schema=False)
# Outbox positions are 64-bit row ids.
MAX_POSITION = 2**63 - 1

AP_HEADERS = {"Vary": "Accept"}


def _fed(request: Request) -> Federation:
    fed: Federation = request.app.state.federation
    return fed


def _client(request: Request) -> Any:
    return request.app.state.federation_client()


def activity_response(document: Any, status: int = 200) -> Response:
    body = document if isinstance(document, (bytes, str)) else json.dumps(document)
    return Response(body, status_code=status, media_type=ACTIVITY_JSON, headers=AP_HEADERS)


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(envelope(status, message, **extra), status_code=status)


def wants_activity(accept: str) -> bool:
    accept = accept.lower()
    return "application/activity+json" in accept or (
        "application/ld+json" in accept and "activitystreams" in accept
    )


class ActivityNegotiation:
    """Sends requests for /datasets/… and /uploads/… that ask for ActivityStreams to /ap/…."""

    PREFIXES = ("/datasets/", "/uploads/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if path.startswith(self.PREFIXES):
                accept = ""
                for name, value in scope["headers"]:
                    if name == b"accept":
                        accept += value.decode("latin-1") + ","
                if wants_activity(accept):
                    scope = dict(scope, path="/ap" + path, raw_path=("/ap" + path).encode())
        await self.app(scope, receive, send)


# ----------------------------------------------------------------- discovery


@router.get("/.well-known/webfinger")
def webfinger_route(request: Request, resource: str | None = None) -> Response:
    fed = _fed(request)
    try:
        document = webfinger(resource, fed.identity)
    except WebFingerError as exc:
        return error(exc.status, str(exc))
    return Response(
        json.dumps(document),
        media_type="application/jrd+json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


@router.get("/.well-known/nodeinfo")
def nodeinfo_links(request: Request) -> JSONResponse:
    return JSONResponse(nodeinfo_discovery(_fed(request).base_url))


@router.get(NODEINFO_PATH)
def nodeinfo(request: Request) -> Response:
    fed = _fed(request)
    with fed.db.read() as s:
        users = int(s.scalar(select(func.count(Account.id))) or 0)
        local_datasets = int(
            s.scalar(
                select(func.count(Dataset.id)).where(
                    Dataset.status == Status.approved.value, Dataset.account_id.is_not(None)
                )
            )
            or 0
        )
        local_uploads = int(
            s.scalar(
                select(func.count(Upload.id)).where(
                    Upload.status == Status.approved.value, Upload.account_id.is_not(None)
                )
            )
            or 0
        )
    document = nodeinfo_document(
        NodeInfoInput(
            node_name=fed.identity.title,
            open_registrations=fed.open_registration,
            users_total=users,
            datasets=local_datasets,
            uploads=local_uploads,
            policy=fed.policy(),
        )
    )
    return Response(json.dumps(document), media_type=NODEINFO_CONTENT_TYPE)


# --------------------------------------------------------------- the actor


def _refuse_blocked_fetch(
    request: Request, fed: Federation, *, cached_only: bool = False
) -> Response | Literal[False] | None:
    """A request signed by a blocked (or not allowed) peer gets nothing.

    With `cached_only`, answers from memory: False when the signer is allowed (or
    none is named), None when that needs a database read."""
    signature = request.headers.get("signature") or request.headers.get("signature-input") or ""
    marker = 'keyid="'
    lowered = signature.lower()
    if marker in lowered:
        start = lowered.index(marker) + len(marker)
        key_id = signature[start : signature.find('"', start)]
        if key_id.startswith(("http://", "https://")):
            if cached_only:
                allowed = fed.cached_host_allowed(host_of(key_id))
                if allowed is None:
                    return None
            else:
                allowed = fed.actor_allowed(key_id)
            if not allowed:
                return error(403, f"{host_of(key_id)} is not federated with")
    return False if cached_only else None


@router.get("/actor")
def actor(request: Request) -> Response:
    fed = _fed(request)
    return _refuse_blocked_fetch(request, fed) or activity_response(fed.actor_document())


@router.get("/actor/outbox")
def outbox(
    request: Request,
    after: int | None = Query(default=None, ge=0, le=MAX_POSITION),
    before: str | None = None,
) -> Response:
    fed = _fed(request)
    refused = _refuse_blocked_fetch(request, fed)
    if refused:
        return refused
    if after is None and before is None:
        return activity_response(fed.outbox_collection())
    before_id = int(before) if before and before.isdigit() else None
    if before not in (None, "") and before_id is None:
        return error(400, "before must be an outbox position")
    page = fed.outbox_page(after=after, before=before_id, limit=fed.outbox_page_size)
    return activity_response(page)


@router.get("/actor/outbox/torrents")
def outbox_torrents(request: Request, after: int = Query(ge=0, le=MAX_POSITION)) -> Response:
    """The .torrent files an outbox page (`?after=`) links to here, bencoded together."""
    fed = _fed(request)
    refused = _refuse_blocked_fetch(request, fed)
    if refused:
        return refused
    body = fed.outbox_torrents(after=after, limit=fed.outbox_page_size)
    return Response(body, media_type=TORRENT_BUNDLE_TYPE)


def _collection(fed: Federation, url: str, items: list[str]) -> dict[str, Any]:
    return {
        "@context": object_context(),
        "id": url,
        "type": "OrderedCollection",
        "totalItems": len(items),
        "orderedItems": items,
    }


@router.get("/actor/followers")
def followers(request: Request) -> Response:
    fed = _fed(request)
    items = fed.collection_actors("inbound")
    return activity_response(_collection(fed, fed.identity.followers_url, items))


@router.get("/actor/following")
def following(request: Request) -> Response:
    fed = _fed(request)
    items = fed.collection_actors("outbound")
    return activity_response(_collection(fed, fed.identity.following_url, items))


@router.get("/ap/activities/{token}")
def activity(request: Request, token: str) -> Response:
    fed = _fed(request)
    found = fed.outbox_item(f"{fed.base_url}/ap/activities/{token}")
    if found is None:
        return error(404, "no such public activity")
    return activity_response(found)


# ---------------------------------------------------------------- objects


def _visible(fed: Federation, obj: FedObject) -> bool:
    with fed.db.read() as s:
        if obj.kind == "upload" and obj.upload_id:
            upload = s.get(Upload, obj.upload_id)
            return (
                upload is not None
                and upload.status == Status.approved.value
                and upload.dataset.status == Status.approved.value
            )
        if obj.dataset_id:
            status = s.scalar(select(Dataset.status).where(Dataset.id == obj.dataset_id))
            return status == Status.approved.value
    return False


def _object_response(fed: Federation, obj: FedObject | None, request: Request) -> Response:
    refused = _refuse_blocked_fetch(request, fed)
    if refused:
        return refused
    if obj is None:
        return error(404, "no such object")
    if obj.state == ObjectState.deleted.value or (
        obj.local and obj.state != ObjectState.current.value and obj.kind == "upload"
    ):
        former = ["Page", "holdfast:Upload" if obj.kind == "upload" else "holdfast:Dataset"]
        gone = tombstone(obj.object_id, former, obj.deleted_at or obj.updated_at)
        return activity_response(gone, status=410)
    if obj.state in (ObjectState.unfetched.value, ObjectState.pending.value) or not _visible(
        fed, obj
    ):
        return error(404, "no such object")
    return activity_response(obj.json)


@router.get("/ap/datasets/{slug}")
def dataset_object(request: Request, slug: str) -> Response:
    fed = _fed(request)
    return _object_response(fed, fed.dataset_object(slug), request)


@router.get("/ap/datasets/{slug}/versions/{digest}")
def dataset_version(request: Request, slug: str, digest: str) -> Response:
    fed = _fed(request)
    obj = fed.stored_object(f"{fed.dataset_url(slug)}/versions/{digest}")
    if obj is not None and obj.state == ObjectState.superseded.value and _visible(fed, obj):
        return activity_response(obj.json)  # older versions stay readable
    return _object_response(fed, obj, request)


@router.get("/ap/uploads/{infohash}")
def upload_object(request: Request, infohash: str) -> Response:
    fed = _fed(request)
    return _object_response(fed, fed.upload_object(infohash), request)


# ---------------------------------------------------------------- inboxes


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_post(request: Request) -> Response:
    fed = _fed(request)
    limit = fed.settings.federation_max_request_bytes
    body = await _read_body(request, limit)
    if body is None:
        return error(413, f"ActivityPub requests are limited to {limit} bytes")
    url = str(request.url)
    if fed.settings.public_url:
        url = (
            fed.base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    message = HttpRequest.build("POST", url, request.headers.raw, body)
    client = _client(request)
    refused = _refuse_blocked_fetch(request, fed, cached_only=True)
    if refused is None:
        refused = await asyncio.to_thread(_refuse_blocked_fetch, request, fed)
    if refused:
        return refused
    try:
        verified = await verify_request(
            message, fed.key_resolver(client), policy=VerificationPolicy(max_body_bytes=limit)
        )
    except SignatureRejected as exc:
        return error(exc.status, str(exc), reason=exc.reason.value)
    try:
        activity = loads_strict(body)
    except DocumentError as exc:
        return error(400, f"the body is not a JSON object: {exc}")
    if not isinstance(activity, dict):
        return error(400, "the body is not a JSON object")
    try:
        check_signer_is_actor(verified, activity)
    except SignatureRejected as exc:
        return error(exc.status, str(exc), reason=exc.reason.value)
    receiver = Receiver(fed, client)
    try:
        if types_of(activity) & QUEUED:
            # Signature, policy and proofs checked here; the catalogue work (and any
            # dataset or .torrent fetch) is a job, so the answer does not wait for it.
            await receiver.precheck(activity, verified.owner)
            await InboxQueue.of(fed).put(body, verified.owner, id_of(activity))
            outcome = "queued"
        else:
            outcome = await receiver.receive(activity, verified.owner)
    except Refused as exc:
        return error(exc.status, str(exc))
    except FederationError as exc:
        return error(400, f"the activity could not be applied: {exc}")
    return JSONResponse({"ok": True, "result": outcome}, status_code=202)


QUEUED = frozenset({"Create", "Update", "Announce", "Delete"})


class InboxQueue:
    """Stores checked activities as `federation.receive` jobs, several per transaction:
    requests arriving while one batch is committed wait for the next one (one commit
    for many deliveries), and each is answered once its own job is stored."""

    MAX_BATCH = 200

    def __init__(self, fed: Federation) -> None:
        self.fed = fed
        self.loop = asyncio.get_running_loop()
        self.waiting: list[tuple[str, str, str | None, asyncio.Future[None]]] = []
        self.writing = False

    @classmethod
    def of(cls, fed: Federation) -> InboxQueue:
        queue: InboxQueue | None = getattr(fed, "_inbox_queue", None)
        if queue is None or queue.loop is not asyncio.get_running_loop():
            queue = cls(fed)
            fed._inbox_queue = queue  # type: ignore[attr-defined]
        return queue

    async def put(self, body: bytes, sender: str, activity_id: str | None) -> None:
        done: asyncio.Future[None] = self.loop.create_future()
        self.waiting.append((body.decode("utf-8"), sender, activity_id, done))
        if not self.writing:
            self.writing = True
            self.loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch = self.waiting[: self.MAX_BATCH]
                del self.waiting[: self.MAX_BATCH]
                try:
                    await asyncio.to_thread(self._store, [(b, s, i) for b, s, i, _ in batch])
                except Exception as exc:
                    for *_, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for *_, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self.writing = False

    def _store(self, items: list[tuple[str, str, str | None]]) -> None:
        with self.fed.db.write() as s:
            queue_receive_many(s, items)


@router.post("/actor/inbox")
async def actor_inbox(request: Request) -> Response:
    return await receive_post(request)


@router.post("/inbox")
async def shared_inbox(request: Request) -> Response:
    return await receive_post(request)
