"""The embedded tracker as the instance runs it: its allow-list follows the
catalogue, the UDP listener runs per instance, counts reach the catalogue."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from holdfast.accounts.models import Role
from holdfast.app import create_app
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.catalogue.schemas import UploadIn
from holdfast.swarm.extension import TrackerService
from holdfast.swarm.models import EMBEDDED, SwarmSample, SwarmTrackerState
from holdfast.swarm.tracker import SwarmStats, pack_ip
from holdfast.swarm.udp_tracker import PROTOCOL_ID
from tests.instance.helpers import make_dataset, make_upload, make_user, set_status
from tests.swarm.helpers import LibtorrentPeer, make_torrent, tracker_address, wait_for

CLIENT = ("127.0.0.1", 50000)  # the tracker needs an IP address


@pytest.fixture
def running(make_settings: Callable[..., Any]) -> Iterator[tuple[TestClient, Any]]:
    app = create_app(make_settings(tracker_udp_port=0, federation=False))
    with TestClient(app, base_url="http://127.0.0.1:8000", client=CLIENT) as client:
        yield client, app.state.instance


def service(instance: Any) -> TrackerService:
    found = instance.services["tracker"]
    assert isinstance(found, TrackerService)
    return found


def keys(upload: Upload) -> list[bytes]:
    return [bytes.fromhex(h) for h in (upload.infohash_v1, upload.infohash_v2_short) if h]


def http_announce(client: TestClient, infohash: bytes, port: int, left: int = 0) -> bytes:
    query = (
        f"info_hash={quote_from_bytes(infohash, safe='')}&peer_id={'-HF0001-' + 'x' * 12}"
        f"&port={port}&uploaded=0&downloaded=0&left={left}&compact=1"
    )
    r = client.get(f"/announce?{query}")
    assert r.status_code == 200
    return r.content


def udp_announce(port: int, infohash: bytes, peer_port: int, left: int = 0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(struct.pack(">QII", PROTOCOL_ID, 0, 1), ("127.0.0.1", port))
        cid = sock.recv(100)[8:16]
        packet = cid + struct.pack(
            ">II20s20sQQQIIIiH", 1, 2, infohash, os.urandom(20), 0, left, 0, 2, 0, 0, 50, peer_port
        )
        sock.sendto(packet, ("127.0.0.1", port))
        return sock.recv(2048)


def test_allow_list_follows_the_catalogue(running: tuple[TestClient, Any], tmp_path: Path) -> None:
    client, instance = running
    owner = make_user(instance, "owner")
    dataset = make_dataset(instance, owner)
    approved = make_upload(instance, owner, dataset.slug, tmp_path, version="hybrid")
    pending = make_upload(
        instance, owner, dataset.slug, tmp_path, status=Status.pending, version="v2"
    )
    tracker = service(instance)

    # Both swarms of the hybrid are tracked; the pending upload is not.
    for key in keys(approved):
        assert b"failure reason" not in http_announce(client, key, 6001)
    assert b"unregistered torrent" in http_announce(client, keys(pending)[0], 6001)
    assert tracker.udp_port
    answer = udp_announce(tracker.udp_port, keys(pending)[0], 6002)
    assert struct.unpack_from(">I", answer)[0] == 3 and b"unregistered" in answer

    # Approved: tracked at once (commit listener), no refresh needed.
    set_status(instance, Upload, pending.id, Status.approved)
    answer = udp_announce(tracker.udp_port, keys(pending)[0], 6002)
    assert struct.unpack_from(">I", answer)[0] == 1

    # Removed: untracked at once and its swarm dropped.
    set_status(instance, Upload, approved.id, Status.removed)
    for key in keys(approved):
        assert not tracker.is_tracked(key)
        assert tracker.tracker.stats(key) == SwarmStats(0, 0, 0)
    assert b"unregistered torrent" in http_announce(client, keys(approved)[0], 6001)

    # A dataset taken down takes its uploads with it; a full refresh agrees.
    set_status(instance, Dataset, dataset.id, Status.pending)
    assert not tracker.is_tracked(keys(pending)[0])
    assert tracker.refresh() == 0
    set_status(instance, Dataset, dataset.id, Status.approved)
    assert tracker.is_tracked(keys(pending)[0])
    assert tracker.refresh() == 1


def test_counts_reach_the_catalogue_and_the_api(
    running: tuple[TestClient, Any], tmp_path: Path
) -> None:
    client, instance = running
    owner = make_user(instance, "owner")
    dataset = make_dataset(instance, owner)
    upload = make_upload(instance, owner, dataset.slug, tmp_path, version="hybrid")
    v1, v2 = keys(upload)
    tracker = service(instance)
    ip = pack_ip("127.0.0.1")

    # One hybrid-aware seeder in both swarms, one leecher in the v1 swarm only.
    with tracker.tracker.lock:
        tracker.tracker.announce(v1, ip, 7001, left=0)
        tracker.tracker.announce(v2, ip, 7001, left=0)
        tracker.tracker.announce(v1, ip, 7002, left=10)
    assert tracker.store_stats() == 1
    with instance.db.read() as s:
        row = s.get(Upload, upload.id)
        assert (row.seeders, row.leechers, row.completed) == (1, 1, 0)
        assert row.swarm_checked_at is not None

    # The leecher completes, reporting it to both swarms: one completion.
    with tracker.tracker.lock:
        tracker.tracker.announce(v1, ip, 7002, left=0, event=tracker_event("COMPLETED"))
        tracker.tracker.announce(v2, ip, 7002, left=0, event=tracker_event("COMPLETED"))
    tracker.store_stats()
    assert tracker.store_stats() == 0  # nothing changed since
    with instance.db.read() as s:
        row = s.get(Upload, upload.id)
        assert (row.seeders, row.leechers, row.completed) == (2, 0, 1)
        assert (
            len(s.scalars(select(SwarmSample).where(SwarmSample.upload_id == upload.id)).all()) == 2
        )
        state = s.scalars(
            select(SwarmTrackerState).where(SwarmTrackerState.upload_id == upload.id)
        ).one()
        assert state.url == EMBEDDED

    body = client.get(f"/api/v1/uploads/{upload.infohash}/swarm").json()
    assert (body["seeders"], body["leechers"], body["completed"]) == (2, 0, 1)
    assert body["trackers"][0]["embedded"] is True
    assert body["trackers"][0]["url"] == instance.settings.announce_url
    assert [(p["seeders"], p["leechers"]) for p in body["history"]] == [(1, 1), (2, 0)]


def tracker_event(name: str) -> Any:
    from holdfast.swarm.tracker import Event

    return Event[name]


def test_swarm_route_hides_what_the_viewer_may_not_see(
    running: tuple[TestClient, Any], tmp_path: Path
) -> None:
    client, instance = running
    owner = make_user(instance, "owner")
    other = make_user(instance, "other")
    moderator = make_user(instance, "mod", Role.moderator)
    dataset = make_dataset(instance, owner)
    pending = make_upload(instance, owner, dataset.slug, tmp_path, status=Status.pending)
    removed = make_upload(instance, owner, dataset.slug, tmp_path, status=Status.removed)
    url = f"/api/v1/uploads/{pending.infohash}/swarm"
    assert client.get(url).status_code == 404
    assert client.get(url, headers=other.headers).status_code == 404
    assert client.get(url, headers=owner.headers).status_code == 200
    assert client.get(url, headers=moderator.headers).status_code == 200
    gone = client.get(f"/api/v1/uploads/{removed.infohash}/swarm")
    assert gone.status_code == 410 and gone.json()["ok"] is False
    assert client.get(f"/api/v1/uploads/{'ab' * 20}/swarm").status_code == 404
    approved = make_upload(instance, owner, dataset.slug, tmp_path)
    assert client.get(f"/api/v1/uploads/{approved.infohash}/swarm?days=0").status_code == 422


def test_instances_in_one_process_have_their_own_ports(
    make_settings: Callable[..., Any],
) -> None:
    apps = [
        create_app(make_settings(tracker_udp_port=0, tracker_http_port=0, federation=False))
        for _ in range(2)
    ]
    ports: list[int] = []
    with TestClient(apps[0], client=CLIENT) as first, TestClient(apps[1], client=CLIENT) as second:
        for client in (first, second):
            tracker = service(client.app.state.instance)  # type: ignore[attr-defined]
            assert tracker.udp_port and tracker.http_port
            ports += [tracker.udp_port, tracker.http_port]
        assert len(set(ports)) == 4
    # Stopped cleanly: every port can be bound again, nothing left in services.
    for port in ports[0::2]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))
    for port in ports[1::2]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
    assert "tracker" not in apps[0].state.instance.services


def test_a_busy_udp_port_leaves_http_announces_working(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        app = create_app(make_settings(tracker_udp_port=taken.getsockname()[1], federation=False))
        with TestClient(app, client=CLIENT) as client:
            instance = app.state.instance
            assert service(instance).udp_port is None
            owner = make_user(instance, "owner")
            dataset = make_dataset(instance, owner)
            upload = make_upload(instance, owner, dataset.slug, tmp_path, version="v1")
            assert b"failure reason" not in http_announce(client, keys(upload)[0], 6001)


def test_open_tracker_tracks_anything(make_settings: Callable[..., Any]) -> None:
    app = create_app(make_settings(tracker_udp_port=0, tracker_open=True, federation=False))
    with TestClient(app, client=CLIENT) as client:
        assert b"failure reason" not in http_announce(client, os.urandom(20), 6001)
    closed = create_app(make_settings(tracker_udp_port=0, federation=False))
    with TestClient(closed, client=CLIENT) as client:
        assert b"unregistered torrent" in http_announce(client, os.urandom(20), 6001)


def test_tracker_off(make_settings: Callable[..., Any]) -> None:
    app = create_app(make_settings(tracker=False, federation=False))
    with TestClient(app, client=CLIENT) as client:
        assert "tracker" not in app.state.instance.services
        assert client.get("/announce").status_code == 404


@pytest.mark.interop
def test_libtorrent_seeder_and_leecher_counted_once_per_hybrid(
    make_settings: Callable[..., Any],
    tmp_path: Path,
    libtorrent_peers: Callable[[], LibtorrentPeer],
) -> None:
    """Real clients announce a hybrid torrent to both its swarms over UDP; the
    catalogue counts each client once."""
    # An address of its own: libtorrent keeps UDP connection ids per tracker IP for
    # the whole process, so an earlier instance's ids would be sent to this one.
    host = tracker_address()
    app = create_app(make_settings(host=host, tracker_udp_port=0, federation=False))
    with TestClient(app, client=CLIENT):
        instance = app.state.instance
        count_a_hybrid(instance, host, tmp_path, libtorrent_peers)


def count_a_hybrid(
    instance: Any, host: str, tmp_path: Path, libtorrent_peers: Callable[[], LibtorrentPeer]
) -> None:
    tracker = service(instance)
    torrent = make_torrent(
        tmp_path / "seed", "hybrid", [f"udp://{host}:{tracker.udp_port}/announce"]
    )
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    upload = instance.catalogue.create_upload(
        owner.account, UploadIn(dataset=dataset.slug), torrent.data
    )
    set_status(instance, Upload, upload.id, Status.approved)

    seeder, leecher = libtorrent_peers(), libtorrent_peers()
    seeder.add(torrent, torrent.save_path)
    wait_for(
        lambda: all(tracker.tracker.stats(k).seeders == 1 for k in torrent.swarms),
        30,
        "the seeder in both swarms",
    )
    downloading = leecher.add(torrent, tmp_path / "download")
    wait_for(lambda: downloading.status().is_seeding, 60, "the download to complete")

    def counted() -> bool:
        tracker.store_stats()
        with instance.db.read() as s:
            row = s.get(Upload, upload.id)
            return (row.seeders, row.leechers, row.completed) == (2, 0, 1)

    wait_for(counted, 30, "both clients counted once as seeders, one completion")
    # Each swarm on its own also has both: the sum would have said 4.
    assert all(tracker.tracker.stats(k).seeders == 2 for k in torrent.swarms)
