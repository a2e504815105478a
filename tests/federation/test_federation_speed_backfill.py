"""Backfill applies a peer's outbox a page at a time: datasets first, the page's
`.torrent` files fetched together, the page written in one transaction; an upload
whose `.torrent` cannot be fetched is kept unfetched without holding up the page,
and reading the outbox again changes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Upload, UploadFile
from holdfast.federation.models import FedObject, OutboxItem, Peer, SeenActivity
from holdfast.federation.netguard import guarded_client
from holdfast.federation.replication import Receiver, _unavailable, mark_unavailable
from tests.federation.interop.instances import InstanceThread, wait_until
from tests.instance.helpers import make_dataset, make_upload, make_user

pytestmark = pytest.mark.slow
TIMEOUT = 60.0


def uploads_of(node: InstanceThread) -> set[str]:
    with node.instance.db.read() as s:
        return {u.infohash for u in s.scalars(select(Upload).where(Upload.status == "approved"))}


def object_states(node: InstanceThread, origin: str) -> dict[str, str]:
    with node.instance.db.read() as s:
        rows = s.execute(
            select(FedObject.object_id, FedObject.state).where(FedObject.origin == origin)
        ).all()
    return {object_id: state for object_id, state in rows}


def row_counts(node: InstanceThread) -> tuple[int, ...]:
    with node.instance.db.read() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Upload, UploadFile, FedObject, SeenActivity)
        )


def synced(node: InstanceThread, origin: str) -> bool:
    """The peer's outbox has been read to its end (the cursor is saved before this)."""
    with node.instance.db.read() as s:
        return s.scalar(select(Peer.synced_at).where(Peer.actor_id == origin)) is not None


def torrent_link(node: InstanceThread, infohash: str) -> str:
    with node.instance.db.read() as s:
        for text in s.scalars(select(OutboxItem.json)):
            obj = json.loads(text).get("object")
            if isinstance(obj, dict) and infohash in (obj.get("infohashV1"), obj.get("infohashV2")):
                return str(obj["torrent"])
    raise AssertionError(f"no Create of {infohash} in the outbox")


def sync_again(node: InstanceThread, origin: str, *, from_start: bool) -> dict[str, int]:
    with node.instance.db.write() as s:
        peer = s.scalar(select(Peer).where(Peer.actor_id == origin))
        assert peer is not None
        if from_start:
            peer.cursor = 0
        peer_id = peer.id

    async def run() -> dict[str, int]:
        async with guarded_client(allow_private=True) as client:
            counts: dict[str, int] = await Receiver(node.app.state.federation, client).sync_peer(
                peer_id
            )
            return counts

    return asyncio.run(run())


def test_backfill_by_pages_tolerates_an_unfetchable_torrent_and_is_idempotent(
    make_settings: Any, tmp_path: Path
) -> None:
    with (
        InstanceThread(make_settings, name="alpha") as a,
        InstanceThread(make_settings, name="beta") as b,
    ):
        a.app.state.federation.outbox_page_size = 4
        owner = make_user(a.instance, "owner", Role.uploader)
        rivers = make_dataset(a.instance, owner, title="Rivers")
        lakes = make_dataset(a.instance, owner, title="Lakes")
        published = [
            make_upload(a.instance, owner, (rivers, lakes)[n % 2].slug, tmp_path).infohash
            for n in range(9)
        ]
        assert httpx.get(f"{a.base_url}/actor/outbox").json()["totalItems"] == 11
        # One .torrent that B cannot fetch for now (its last fetch just failed).
        stuck = published[4]
        stuck_url = torrent_link(a, stuck)
        mark_unavailable(b.base_url, stuck_url)

        admin = make_user(b.instance, "root", Role.admin).headers
        response = httpx.post(
            f"{b.base_url}/api/v1/federation/follows",
            json={"actor": a.actor_url},
            headers=admin,
            timeout=30,
        )
        assert response.status_code == 202, response.text
        wanted = set(published) - {stuck}
        wait_until(lambda: uploads_of(b) == wanted, timeout=TIMEOUT, what="backfill")
        wait_until(lambda: synced(b, a.actor_url), timeout=TIMEOUT, what="the end of the outbox")
        states = object_states(b, a.actor_url)
        assert sorted(states.values()).count("current") == 2 + 8  # datasets and uploads
        assert list(states.values()).count("unfetched") == 1
        with b.instance.db.read() as s:
            files = s.scalar(
                select(func.count())
                .select_from(UploadFile)
                .join(Upload, Upload.id == UploadFile.upload_id)
            )
            cursor = s.scalar(select(Peer.cursor).where(Peer.actor_id == a.actor_url))
        assert files and files >= 8
        with b.instance.db.read() as s:
            counts = {d.title: d.upload_count for d in s.scalars(select(Dataset))}
        assert counts == {"Rivers": 4, "Lakes": 4}  # the stuck one (a Rivers upload) not yet
        assert cursor == 11  # every page read, the stuck upload did not stop it

        # Reading the whole outbox again adds nothing (idempotent); the stuck upload
        # is still marked unavailable, so it stays unfetched.
        before = row_counts(b)
        again = sync_again(b, a.actor_url, from_start=True)
        assert again["failed"] == 0 and again["items"] == 11 and again["pages"] >= 3
        assert row_counts(b) == before
        assert uploads_of(b) == wanted

        # Once its .torrent can be fetched, the next sync brings it in.
        _unavailable.pop(f"{b.base_url} {stuck_url}", None)
        sync_again(b, a.actor_url, from_start=False)
        assert uploads_of(b) == set(published)
        assert set(object_states(b, a.actor_url).values()) == {"current"}


@pytest.mark.parametrize("bundles", [True, False], ids=["bundles", "one-by-one"])
def test_later_pages_torrents_are_read_early_once_each(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundles: bool
) -> None:
    """While a page is applied the next page's `.torrent` files are read: all of a
    page's in one request when the peer offers them together (`holdfast:torrents`),
    else one request each (here the peer's bundles have room for none); each file is
    fetched exactly once, and a second read of the outbox from the start (every item
    known) reads none of them again."""
    if not bundles:
        monkeypatch.setattr("holdfast.federation.service.MAX_TORRENT_BUNDLE", 1)
    with (
        InstanceThread(make_settings, name="alpha") as a,
        InstanceThread(make_settings, name="beta", run_jobs=False) as b,
    ):
        a.app.state.federation.outbox_page_size = 3
        owner = make_user(a.instance, "owner", Role.uploader)
        rivers = make_dataset(a.instance, owner, title="Rivers")
        published = [make_upload(a.instance, owner, rivers.slug, tmp_path) for _ in range(8)]
        links = {torrent_link(a, u.infohash) for u in published}
        with b.instance.db.write() as s:
            s.add(Peer(actor_id=a.actor_url, host=a.host))
        fetched: list[str] = []
        together: list[str] = []

        async def count(request: httpx.Request) -> None:
            if str(request.url) in links:
                fetched.append(str(request.url))
            elif request.url.path.endswith("/outbox/torrents"):
                together.append(str(request.url))

        def sync() -> tuple[dict[str, int], Receiver]:
            with b.instance.db.read() as s:
                peer_id = s.scalar(select(Peer.id).where(Peer.actor_id == a.actor_url))
            assert peer_id is not None

            async def run() -> tuple[dict[str, int], Receiver]:
                async with guarded_client(allow_private=True) as client:
                    client.event_hooks["request"].append(count)
                    receiver = Receiver(b.app.state.federation, client)
                    return await receiver.sync_peer(peer_id), receiver

            return asyncio.run(run())

        counts, receiver = sync()
        assert counts["pages"] >= 4 and counts["failed"] == 0
        assert uploads_of(b) == {u.infohash for u in published}
        # The dataset's Create, then the 8 uploads' Creates, 3 to a page: 3 pages hold uploads.
        assert len(together) == len(set(together)) == 3
        if bundles:
            assert fetched == []
        else:
            assert sorted(fetched) == sorted(links)  # each once: early or when applied
        assert receiver._prefetched == {}
        with b.instance.db.write() as s:
            peer = s.scalar(select(Peer).where(Peer.actor_id == a.actor_url))
            assert peer is not None
            peer.cursor = 0
        before = row_counts(b)
        fetched.clear()
        together.clear()
        counts, _ = sync()
        assert fetched == [] and together == [] and counts["failed"] == 0
        assert row_counts(b) == before
