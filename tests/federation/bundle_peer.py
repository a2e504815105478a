"""A holdfast-like origin on 127.0.0.1 whose `holdfast:torrents` answer a test chooses.

`BundlePeer` serves, in a thread of the test process, what a holdfast instance serves
to a peer that backfills it: its actor (both keys), its outbox read oldest-first
(`?after=N` pages naming `holdfast:cursor`, `next` and `holdfast:torrents`), the
Creates of one dataset and of its uploads (each object and each activity proved
with eddsa-jcs-2022 by the peer's key, made by holdfast's own document and proof
functions), the dataset document and each upload's `.torrent` at
`/api/v1/uploads/<infohash>/torrent`. The `.torrent` files are real ones, made by
libtorrent. Every request is recorded (`requests`), and `bundle` (a function of the
page's `after` and the genuine bundle) decides what the bundle link answers.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from holdfast.federation.documents import (
    DatasetVersionInfo,
    InstanceIdentity,
    UploadInfo,
    dataset_document,
    instance_actor,
    object_context,
    upload_document,
)
from holdfast.federation.keys import InstanceKeys
from holdfast.federation.proofs import create_proof
from holdfast.federation.service import TORRENT_BUNDLE_TYPE
from holdfast.torrents import bencode, parse_torrent
from tests.federation.interop.children import bind_loopback
from tests.instance.torrents import sample_torrent

ACTIVITY_JSON = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
# A handler that "hangs" waits at most this long (or until the server stops).
MAX_HANG_SECONDS = 20.0

# (after, the genuine bundle {URL: file} of that page) -> the answer
BundleAnswer = Callable[[int, dict[bytes, bytes]], Awaitable[Response]]


@dataclass(frozen=True)
class PeerUpload:
    """One upload the peer publishes, with its genuine `.torrent`."""

    position: int  # of its Create in the outbox
    url: str
    torrent_url: str
    infohash_v1: str | None
    infohash_v2: str | None
    data: bytes

    @property
    def infohash(self) -> str:
        return self.infohash_v2 or self.infohash_v1 or ""


class BundlePeer:
    """One origin served in a thread; use as a context manager."""

    def __init__(
        self, workdir: Path, keys: InstanceKeys, *, uploads: int = 4, page_size: int = 3
    ) -> None:
        self.workdir = workdir
        self.keys = keys
        self.upload_count = uploads
        self.page_size = page_size
        self.base_url = ""
        self.uploads: list[PeerUpload] = []
        self.requests: list[str] = []  # path?query of each request, in arrival order
        # What the bundle link answers; None: the genuine bundle, as holdfast serves it.
        self.bundle: BundleAnswer | None = None
        # Where a page says its bundle is; None: this peer's own `/actor/outbox/torrents`.
        self.bundle_link: Callable[[int], str] | None = None
        # `.torrent` URL -> other bytes served there instead of the genuine file (None: 404).
        self.served_instead: dict[str, bytes | None] = {}
        self._items: list[dict[str, Any]] = []  # outbox position n is _items[n - 1]
        self._dataset: dict[str, Any] = {}
        self._released = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ content

    @property
    def actor_url(self) -> str:
        return f"{self.base_url}/actor"

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[1]

    @property
    def last_position(self) -> int:
        return len(self._items)

    def genuine_bundle(self, after: int) -> dict[bytes, bytes]:
        """What holdfast's `outbox_torrents(after=...)` holds for the page `?after=`."""
        page = range(after + 1, min(after + self.page_size, self.last_position) + 1)
        return {u.torrent_url.encode(): u.data for u in self.uploads if u.position in page}

    def _build(self) -> None:
        identity = InstanceIdentity(base_url=self.base_url, name="origin", title="Origin")
        self.identity = identity
        now = datetime.now(UTC)
        version = DatasetVersionInfo(
            dataset_url=f"{self.base_url}/datasets/rivers",
            slug="rivers",
            title="Rivers",
            published=now,
            description="Daily discharge of rivers.",
            tags=("hydrology",),
        )
        self._dataset = self._prove(dataset_document(identity, version))
        self._items = [self._create(self._dataset, 1)]
        for n in range(self.upload_count):
            # Hybrid (v1 and v2) and v1-only files, as holdfast publishes both.
            kind = "hybrid" if n % 2 == 0 else "v1"
            port = self.base_url.rsplit(":", 1)[1]
            data = sample_torrent(self.workdir, f"upload{n}", version=kind, seed=port)
            torrent = parse_torrent(data)
            infohash = torrent.infohash_v2 or torrent.infohash_v1 or ""
            magnet = "magnet:?" + "&".join(
                [f"xt=urn:btih:{torrent.infohash_v1}"] * bool(torrent.infohash_v1)
                + [f"xt=urn:btmh:1220{torrent.infohash_v2}"] * bool(torrent.infohash_v2)
            )
            info = UploadInfo(
                url=f"{self.base_url}/uploads/{infohash}",
                name=torrent.name,
                dataset_url=version.dataset_url,
                dataset_title=version.title,
                torrent_url=f"{self.base_url}/api/v1/uploads/{infohash}/torrent",
                magnet=magnet,
                total_size=torrent.total_size,
                file_count=torrent.file_count,
                piece_length=torrent.piece_length,
                published=now,
                infohash_v1=torrent.infohash_v1,
                infohash_v2=torrent.infohash_v2,
                description=f"Upload {n} of the rivers.",
            )
            self._items.append(self._create(self._prove(upload_document(identity, info)), n + 2))
            self.uploads.append(
                PeerUpload(
                    position=n + 2,
                    url=info.url,
                    torrent_url=info.torrent_url,
                    infohash_v1=torrent.infohash_v1,
                    infohash_v2=torrent.infohash_v2,
                    data=data,
                )
            )

    def _prove(self, document: dict[str, Any]) -> dict[str, Any]:
        return create_proof(document, self.keys.ed25519_private)

    def _create(self, document: dict[str, Any], n: int) -> dict[str, Any]:
        """The Create holdfast puts in its outbox (`Federation.activity`, then proved)."""
        activity = {
            "@context": object_context(),
            "id": f"{self.base_url}/ap/activities/create-{n}",
            "type": "Create",
            "actor": self.identity.actor_url,
            "object": document,
            "published": document["published"],
            "to": [PUBLIC],
            "cc": [self.identity.followers_url],
        }
        return self._prove(activity)

    def _page(self, after: int) -> dict[str, Any]:
        outbox = self.identity.outbox_url
        items = self._items[after : after + self.page_size]
        last = after + len(items)
        page: dict[str, Any] = {
            "@context": object_context(),
            "id": f"{outbox}?after={after}",
            "type": "OrderedCollectionPage",
            "partOf": outbox,
            "orderedItems": items,
            "next": f"{outbox}?after={last}",
            "holdfast:cursor": last,
        }
        if items:
            link = self.bundle_link(after) if self.bundle_link else None
            page["holdfast:torrents"] = link or f"{outbox}/torrents?after={after}"
        return page

    # -------------------------------------------------------------------- serving

    def _app(self) -> Starlette:
        def json_response(document: dict[str, Any]) -> Response:
            return Response(json.dumps(document), media_type=ACTIVITY_JSON)

        async def record(request: Request) -> None:
            query = f"?{request.url.query}" if request.url.query else ""
            self.requests.append(f"{request.url.path}{query}")

        async def actor(request: Request) -> Response:
            await record(request)
            return json_response(
                instance_actor(
                    self.identity,
                    rsa_public=self.keys.rsa_public,
                    ed25519_public=self.keys.ed25519_public,
                )
            )

        async def outbox(request: Request) -> Response:
            await record(request)
            after = request.query_params.get("after")
            if after is None or not after.isdigit():
                return json_response(
                    {
                        "@context": object_context(),
                        "id": self.identity.outbox_url,
                        "type": "OrderedCollection",
                        "totalItems": self.last_position,
                        "last": f"{self.identity.outbox_url}?after=0",
                    }
                )
            return json_response(self._page(int(after)))

        async def torrents(request: Request) -> Response:
            await record(request)
            after = int(request.query_params.get("after", "0"))
            genuine = self.genuine_bundle(after)
            if self.bundle is not None:
                return await self.bundle(after, genuine)
            return Response(bencode.encode(genuine), media_type=TORRENT_BUNDLE_TYPE)

        async def dataset(request: Request) -> Response:
            await record(request)
            return json_response(self._dataset)

        async def torrent(request: Request) -> Response:
            await record(request)
            url = f"{self.base_url}{request.url.path}"
            for upload in self.uploads:
                if upload.torrent_url == url:
                    data = self.served_instead.get(url, upload.data)
                    if data is None:
                        break
                    return Response(data, media_type="application/x-bittorrent")
            return Response(status_code=404)

        return Starlette(
            routes=[
                Route("/actor", actor),
                Route("/actor/outbox", outbox),
                Route("/actor/outbox/torrents", torrents),
                Route("/datasets/{slug}", dataset),
                Route("/api/v1/uploads/{infohash}/torrent", torrent),
            ]
        )

    async def hang(self) -> None:
        """Wait, answering nothing, until the server stops (at most MAX_HANG_SECONDS)."""
        deadline = time.monotonic() + MAX_HANG_SECONDS
        while not self._released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def start(self) -> BundlePeer:
        import uvicorn

        sock = bind_loopback()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._build()
        config = uvicorn.Config(self._app(), log_level="warning", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the peer did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> BundlePeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
