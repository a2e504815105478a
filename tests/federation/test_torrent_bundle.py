"""A peer's `holdfast:torrents` bundle is only a shortcut: whatever it answers, the
backfill reads the whole outbox, each upload is stored once with the `.torrent` its
signed Upload names (read by its own URL when the bundle does not hold it), and no
upload is stored without its file.

The peer (`BundlePeer`) is a real HTTP server on 127.0.0.1 serving signed documents
made by holdfast's own functions; the receiver is a real instance on SQLite and, when
configured, PostgreSQL, reading the peer's outbox with `Receiver.sync_peer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.responses import Response, StreamingResponse

from holdfast.catalogue.models import Dataset, SearchDocument, TorrentBlob, Upload, UploadFile
from holdfast.federation.keys import InstanceKeys
from holdfast.federation.models import FedObject, Peer, SeenActivity
from holdfast.federation.netguard import guarded_client
from holdfast.federation.replication import Receiver
from holdfast.federation.service import TORRENT_BUNDLE_TYPE
from holdfast.torrents import bencode, parse_torrent
from tests.federation.bundle_peer import BundlePeer, PeerUpload
from tests.federation.interop.instances import InstanceThread
from tests.instance.torrents import sample_torrent

BITTORRENT = "application/x-bittorrent"
BUNDLES = ["/actor/outbox/torrents?after=0", "/actor/outbox/torrents?after=3"]


@pytest.fixture
def receiver(make_settings: Any) -> Iterator[InstanceThread]:
    """The backfilling instance, on the test's database (SQLite, then PostgreSQL)."""
    with InstanceThread(make_settings, name="beta", run_jobs=False) as node:
        yield node


@pytest.fixture
def peer(tmp_path: Path, instance_keys: InstanceKeys) -> Iterator[BundlePeer]:
    """An origin with one dataset and four uploads, three outbox items to a page:
    the bundles are those of `?after=0` (two uploads) and `?after=3` (two)."""
    with BundlePeer(tmp_path / "origin", instance_keys, uploads=4, page_size=3) as origin:
        yield origin


def backfill(node: InstanceThread, origin: BundlePeer, *, timeout: float = 10.0) -> dict[str, int]:
    """Read the whole outbox of `origin` once, as the federation job does."""
    with node.instance.db.write() as s:
        row = Peer(actor_id=origin.actor_url, host=origin.host)
        s.add(row)
        s.flush()
        peer_id = row.id

    async def run() -> dict[str, int]:
        async with guarded_client(allow_private=True, timeout=timeout) as client:
            counts: dict[str, int] = await Receiver(node.app.state.federation, client).sync_peer(
                peer_id
            )
            return counts

    return asyncio.run(asyncio.wait_for(run(), 120))


def fetched_singly(origin: BundlePeer) -> list[str]:
    """The `.torrent` URLs read one by one, once per request."""
    return sorted(
        f"{origin.base_url}{path}" for path in origin.requests if path.endswith("/torrent")
    )


def bundles_read(origin: BundlePeer) -> list[str]:
    return sorted(p for p in origin.requests if p.startswith("/actor/outbox/torrents"))


def urls(*uploads: PeerUpload) -> list[str]:
    return sorted(u.torrent_url for u in uploads)


def assert_catalogue(node: InstanceThread, origin: BundlePeer, stored: list[PeerUpload]) -> None:
    """The receiver holds exactly `stored` of the origin's uploads, each once, each with
    its genuine `.torrent` (kept and served back byte for byte) and its files; the
    others left no upload, file, search entry or current object behind; the outbox was
    read to its end."""
    with node.instance.db.read() as s:
        rows = s.execute(
            select(Upload.id, Upload.infohash_v1, Upload.infohash_v2, TorrentBlob.data)
            .outerjoin(TorrentBlob, TorrentBlob.upload_id == Upload.id)
            .order_by(Upload.id)
        ).all()
        files = dict(
            s.execute(
                select(UploadFile.upload_id, func.count()).group_by(UploadFile.upload_id)
            ).all()
        )
        searchable = set(
            s.scalars(select(SearchDocument.ref_id).where(SearchDocument.kind == "upload"))
        )
        blobs = s.scalar(select(func.count()).select_from(TorrentBlob))
        objects = dict(
            s.execute(
                select(FedObject.object_id, FedObject.state).where(FedObject.kind == "upload")
            ).all()
        )
        counted = s.scalar(select(Dataset.upload_count).where(Dataset.title == "Rivers"))
        cursor, synced_at = s.execute(
            select(Peer.cursor, Peer.synced_at).where(Peer.actor_id == origin.actor_url)
        ).one()
    genuine = {(u.infohash_v1, u.infohash_v2): u for u in origin.uploads}
    assert sorted((v1 or "", v2 or "") for _, v1, v2, _ in rows) == sorted(
        (u.infohash_v1 or "", u.infohash_v2 or "") for u in stored
    )
    assert blobs == len(rows)  # no upload without its file, no file without its upload
    for upload_id, v1, v2, data in rows:
        upload = genuine[(v1, v2)]
        assert data == upload.data
        assert files.get(upload_id) == parse_torrent(upload.data).file_count
        assert upload_id in searchable
    assert set(files) <= {r[0] for r in rows}
    assert searchable == {r[0] for r in rows}
    assert counted == len(stored)
    for upload in origin.uploads:
        state = objects.get(upload.url)
        if upload in stored:
            assert state == "current"
        else:
            assert state in (None, "unfetched")
        response = httpx.get(f"{node.base_url}/api/v1/uploads/{upload.infohash}/torrent")
        if upload in stored:
            assert response.status_code == 200
            assert response.content == upload.data
        else:
            assert response.status_code == 404
    assert cursor == origin.last_position == 5
    assert synced_at is not None


def assert_read_singly(node: InstanceThread, origin: BundlePeer, counts: dict[str, int]) -> None:
    """The bundle was asked for once per page and not used: every upload came by its
    own URL, each read once."""
    assert counts == {"pages": 3, "items": 5, "failed": 0}
    assert bundles_read(origin) == BUNDLES
    assert fetched_singly(origin) == urls(*origin.uploads)
    assert_catalogue(node, origin, origin.uploads)


def foreign_torrent(tmp_path: Path) -> bytes:
    """A valid `.torrent` that no upload of the origin names."""
    return sample_torrent(tmp_path, "foreign", version="hybrid", seed="elsewhere")


# ----------------------------------------------------------------------------- genuine


def test_a_genuine_bundle_is_used(receiver: InstanceThread, peer: BundlePeer) -> None:
    """The baseline the hostile cases differ from: no `.torrent` is read singly."""
    counts = backfill(receiver, peer)
    assert counts == {"pages": 3, "items": 5, "failed": 0}
    assert bundles_read(peer) == BUNDLES
    assert fetched_singly(peer) == []
    assert_catalogue(receiver, peer, peer.uploads)


# ----------------------------------------------------------------- 1. other torrents


def test_files_of_other_torrents_are_read_again_by_their_own_url(
    receiver: InstanceThread, peer: BundlePeer, tmp_path: Path
) -> None:
    """The bundle swaps the files of the first page's two uploads and gives the third
    upload a valid torrent no upload names: none of them is stored from the bundle;
    each is read by its own URL and stored with its genuine file. The fourth entry is
    right and used."""
    u0, u1, u2, u3 = peer.uploads
    other = foreign_torrent(tmp_path)

    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        if after == 0:
            body = {u0.torrent_url: u1.data, u1.torrent_url: u0.data}
        else:
            body = {u2.torrent_url: other, u3.torrent_url: u3.data}
        return Response(bencode.encode(body), media_type=TORRENT_BUNDLE_TYPE)

    peer.bundle = answer
    counts = backfill(receiver, peer)
    assert counts == {"pages": 3, "items": 5, "failed": 0}
    assert bundles_read(peer) == BUNDLES
    assert fetched_singly(peer) == urls(u0, u1, u2)
    assert_catalogue(receiver, peer, peer.uploads)


def test_a_wrong_file_at_both_the_bundle_and_its_url_stores_nothing(
    receiver: InstanceThread, peer: BundlePeer, tmp_path: Path
) -> None:
    """The bundle and the upload's own URL both serve another upload's file: that
    upload is refused (nothing of it written), one whose URL answers 404 is kept
    unfetched for a later retry, and the rest of the outbox is applied."""
    u0, u1, u2, u3 = peer.uploads
    other = foreign_torrent(tmp_path)
    peer.served_instead[u0.torrent_url] = u1.data

    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        body = dict(genuine)
        body[u0.torrent_url.encode()] = u1.data
        body[u2.torrent_url.encode()] = other
        return Response(bencode.encode(body), media_type=TORRENT_BUNDLE_TYPE)

    peer.bundle = answer
    peer.served_instead[u2.torrent_url] = None
    counts = backfill(receiver, peer)
    assert counts == {"pages": 3, "items": 4, "failed": 1}  # u0 refused
    assert bundles_read(peer) == BUNDLES
    assert set(fetched_singly(peer)) == set(urls(u0, u2))
    assert_catalogue(receiver, peer, [u1, u3])
    with receiver.instance.db.read() as s:
        states = dict(
            s.execute(
                select(FedObject.object_id, FedObject.state).where(FedObject.kind == "upload")
            ).all()
        )
        seen = set(s.scalars(select(SeenActivity.activity_id)))
    assert states == {u1.url: "current", u2.url: "unfetched", u3.url: "current"}
    # u0's Create is not marked applied: a later read of the outbox tries it again.
    creates = {
        u.position: f"{peer.base_url}/ap/activities/create-{u.position}" for u in peer.uploads
    }
    assert creates[u0.position] not in seen
    assert {creates[u.position] for u in (u1, u2, u3)} <= seen


# ----------------------------------------------- 2.-5. unusable answers, read singly


@pytest.mark.parametrize(
    "media_type", [BITTORRENT, "application/octet-stream", "application/json", ""]
)
def test_a_bundle_of_another_content_type_is_not_read(
    receiver: InstanceThread, peer: BundlePeer, media_type: str
) -> None:
    """The right files, but not said to be a bundle: not decoded, each read singly."""

    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        response = Response(bencode.encode(genuine))
        if media_type:
            response.headers["content-type"] = media_type
        return response

    peer.bundle = answer
    assert_read_singly(receiver, peer, backfill(receiver, peer))


def unsorted(genuine: dict[bytes, bytes]) -> bytes:
    """The entries in reverse order: bencoding, but not canonical (keys unsorted)."""
    entries = sorted(genuine.items(), reverse=True)
    return b"d" + b"".join(bencode.encode(k) + bencode.encode(v) for k, v in entries) + b"e"


INVALID = {
    "truncated": lambda genuine: bencode.encode(genuine)[:-1],
    "trailing bytes": lambda genuine: bencode.encode(genuine) + b"0:",
    "unsorted keys": unsorted,
    "not bencoding": lambda genuine: b"<html>busy</html>",
    "empty": lambda genuine: b"",
    "nested too deep": lambda genuine: b"l" * 500 + b"e" * 500,
    "long integer": lambda genuine: b"d3:keyi" + b"9" * 40 + b"ee",
}


@pytest.mark.parametrize("damage", list(INVALID))
def test_a_bundle_that_is_not_valid_bencoding_is_not_used(
    receiver: InstanceThread, peer: BundlePeer, damage: str
) -> None:
    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        body = INVALID[damage](genuine)
        return Response(body, media_type=TORRENT_BUNDLE_TYPE)

    peer.bundle = answer
    assert_read_singly(receiver, peer, backfill(receiver, peer))


@pytest.mark.parametrize("shape", ["list", "string", "integer", "list of pairs"])
def test_a_bundle_that_is_not_a_dictionary_is_not_used(
    receiver: InstanceThread, peer: BundlePeer, shape: str
) -> None:
    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        value: Any = {
            "list": list(genuine.values()),
            "string": b"".join(genuine.values()),
            "integer": len(genuine),
            "list of pairs": [[k, v] for k, v in genuine.items()],
        }[shape]
        return Response(bencode.encode(value), media_type=TORRENT_BUNDLE_TYPE)

    peer.bundle = answer
    assert_read_singly(receiver, peer, backfill(receiver, peer))


def test_entries_that_are_not_files_or_are_missing_are_read_singly(
    receiver: InstanceThread, peer: BundlePeer
) -> None:
    """Per URL: a number, a list holding the file, a dictionary (the decoded torrent)
    and no entry at all are each read by the URL; the one right entry is used, and
    entries for URLs the page does not link to (another page's, another host's) are
    ignored."""
    u0, u1, u2, u3 = peer.uploads

    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        if after == 0:
            body: dict[str, Any] = {
                u0.torrent_url: 7,
                u1.torrent_url: [u1.data],
                u3.torrent_url: u0.data,  # the next page's URL, with a wrong file
            }
        else:
            body = {
                u2.torrent_url: bencode.decode(u2.data),
                "http://127.0.0.1:9/api/v1/uploads/x/torrent": u3.data,
                u3.torrent_url: u3.data,
            }
        return Response(bencode.encode(body), media_type=TORRENT_BUNDLE_TYPE)

    peer.bundle = answer
    counts = backfill(receiver, peer)
    assert counts == {"pages": 3, "items": 5, "failed": 0}
    assert bundles_read(peer) == BUNDLES
    assert fetched_singly(peer) == urls(u0, u1, u2)
    assert_catalogue(receiver, peer, peer.uploads)


# ------------------------------------------------------------------ 6. too large


@pytest.mark.parametrize("length", ["declared", "streamed"])
def test_a_bundle_larger_than_the_limit_is_not_used(
    receiver: InstanceThread,
    peer: BundlePeer,
    monkeypatch: pytest.MonkeyPatch,
    length: str,
) -> None:
    """The genuine files plus one large entry, past the limit: with a declared
    Content-Length (refused before reading) or streamed without one (refused once
    the limit is passed). The limit is lowered from 32 MiB to 4 KiB here so that the
    test sends ~100 KiB instead of 32 MiB; the receiver allows 64 KiB over it."""
    monkeypatch.setattr("holdfast.federation.replication.MAX_TORRENT_BUNDLE", 4096)
    padding = b"x" * (4096 + 64 * 1024 + 1)

    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        body = bencode.encode({**genuine, f"{peer.base_url}/padding".encode(): padding})
        if length == "declared":
            return Response(body, media_type=TORRENT_BUNDLE_TYPE)

        async def chunks() -> Any:
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        return StreamingResponse(chunks(), media_type=TORRENT_BUNDLE_TYPE)

    peer.bundle = answer
    assert_read_singly(receiver, peer, backfill(receiver, peer))


# --------------------------------------------------------------- 7. another host


@pytest.mark.parametrize("way", ["link", "redirect"])
def test_a_bundle_on_another_host_is_not_fetched(
    receiver: InstanceThread,
    peer: BundlePeer,
    tmp_path: Path,
    other_keys: InstanceKeys,
    way: str,
) -> None:
    """A page naming a bundle on another host, or a bundle link on the sender that
    redirects there: that host gets no request at all, and every file is read from
    the sender by its own URL."""
    with BundlePeer(tmp_path / "elsewhere", other_keys, uploads=1) as elsewhere:
        there = f"{elsewhere.base_url}/actor/outbox/torrents?after={{}}"
        if way == "link":
            peer.bundle_link = there.format
        else:

            async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
                return Response(status_code=302, headers={"location": there.format(after)})

            peer.bundle = answer
        counts = backfill(receiver, peer)
        assert elsewhere.requests == []
    assert counts == {"pages": 3, "items": 5, "failed": 0}
    assert bundles_read(peer) == ([] if way == "link" else BUNDLES)
    assert fetched_singly(peer) == urls(*peer.uploads)
    assert_catalogue(receiver, peer, peer.uploads)


# -------------------------------------------------------- 8. failing or hanging


@pytest.mark.parametrize("status", [500, 404, 503])
def test_a_bundle_answering_an_error_is_not_used(
    receiver: InstanceThread, peer: BundlePeer, status: int
) -> None:
    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        # An error page that is a valid bundle: still not read.
        return Response(bencode.encode(genuine), status_code=status, media_type=TORRENT_BUNDLE_TYPE)

    peer.bundle = answer
    assert_read_singly(receiver, peer, backfill(receiver, peer))


def test_a_bundle_that_never_answers_is_given_up(
    receiver: InstanceThread, peer: BundlePeer
) -> None:
    """The bundle request hangs past the client's timeout (lowered to 2 s here from
    the 10 s default, the hang itself bounded by BundlePeer): each file is then read
    singly."""

    async def answer(after: int, genuine: dict[bytes, bytes]) -> Response:
        await peer.hang()
        return Response(status_code=504)

    peer.bundle = answer
    assert_read_singly(receiver, peer, backfill(receiver, peer, timeout=2.0))
