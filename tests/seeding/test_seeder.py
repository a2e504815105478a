"""The instance's seeder: what it seeds, status, approvals and removals, resume data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.seeding.storage import resume_file
from tests.instance.helpers import set_status
from tests.seeding.conftest import World
from tests.seeding.helpers import stored_upload
from tests.torrents.clients import LibtorrentSession, wait_until

pytestmark = pytest.mark.slow


def seeding(world: World, upload_id: int) -> bool:
    state = world.seeder.state(upload_id)
    return state is not None and state.state == "seeding"


def wait_seeding(world: World, upload_id: int, timeout: float = 30) -> None:
    world.seeder.wait_idle()
    wait_until(lambda: seeding(world, upload_id), timeout, "the seeder to seed the upload")


def test_seeds_approved_upload_with_stored_data(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    assert stored.upload.status == "approved"
    wait_seeding(world, stored.upload.id)
    r = world.client.get(f"/api/v1/uploads/{stored.upload.infohash}/seeding")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["seeding"] is True and body["state"] == "seeding"
    assert body["progress"] == 1.0
    assert body["webseed"] is True
    assert body["webseed_url"].endswith(f"/webseed/{stored.upload.infohash}/")


def test_upload_without_stored_data_is_not_seeded(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path, store=False)
    world.seeder.wait_idle()
    assert world.seeder.state(stored.upload.id) is None
    body = world.client.get(f"/api/v1/uploads/{stored.upload.infohash}/seeding").json()
    assert body["seeding"] is False and body["state"] == "no_data"
    assert body["webseed"] is False and body["webseed_url"] is None


def test_approval_starts_and_removal_stops_seeding(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.member, world.dataset, tmp_path)
    assert stored.upload.status == "pending"
    world.seeder.wait_idle()
    assert world.seeder.state(stored.upload.id) is None
    # The submitter sees its own pending upload's status; others get 404.
    r = world.client.get(
        f"/api/v1/uploads/{stored.upload.infohash}/seeding", headers=world.member.headers
    )
    assert r.status_code == 200 and r.json()["state"] == "not_public"
    assert world.client.get(f"/api/v1/uploads/{stored.upload.infohash}/seeding").status_code == 404

    set_status(world.instance, Upload, stored.upload.id, Status.approved)
    wait_seeding(world, stored.upload.id)
    wait_until(
        lambda: resume_file(world.instance.settings.resolved_storage_dir, stored.key).exists(),
        20,
        "resume data after the check",
    )

    set_status(world.instance, Upload, stored.upload.id, Status.removed)
    world.seeder.wait_idle()
    assert world.seeder.state(stored.upload.id) is None
    assert stored.upload.id not in world.seeder.seeding()
    assert not resume_file(world.instance.settings.resolved_storage_dir, stored.key).exists()
    assert world.client.get(f"/api/v1/uploads/{stored.upload.infohash}/seeding").status_code == 410


def test_removing_the_dataset_stops_its_uploads(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    wait_seeding(world, stored.upload.id)
    set_status(world.instance, Dataset, stored.upload.dataset_id, Status.removed)
    world.seeder.wait_idle()
    assert world.seeder.state(stored.upload.id) is None


def test_restart_resumes_without_hashing_again(
    make_world: Any, make_settings: Any, tmp_path: Path
) -> None:
    world = make_world()
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    wait_seeding(world, stored.upload.id)
    assert world.seeder.state(stored.upload.id).rechecked is True  # first time: hashed
    storage = world.instance.settings.resolved_storage_dir
    wait_until(lambda: resume_file(storage, stored.key).exists(), 20, "resume data")
    settings = world.instance.settings
    world.client.__exit__(None, None, None)  # stops the seeder (saves resume data)

    # Change one byte of the data, keeping size and time: a re-hash would notice.
    victim = next(p for p in (storage / stored.key).rglob("*.bin"))
    info = victim.stat()
    with open(victim, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))

    from fastapi.testclient import TestClient

    from holdfast.app import create_app

    app = create_app(settings.model_copy(update={"seeder_port": 0}))
    with TestClient(app, base_url=settings.base_url):
        seeder = app.state.instance.services["seeder"]
        seeder.wait_idle()
        wait_until(
            lambda: (s := seeder.state(stored.upload.id)) is not None and s.state == "seeding",
            20,
            "the restarted seeder to seed",
        )
        state = seeder.state(stored.upload.id)
        assert state.rechecked is False
        assert state.progress == 1.0

    # Without its resume data the same restart hashes everything and finds the bad piece.
    resume_file(storage, stored.key).unlink()
    app = create_app(settings.model_copy(update={"seeder_port": 0}))
    with TestClient(app, base_url=settings.base_url):
        seeder = app.state.instance.services["seeder"]
        seeder.wait_idle()
        # The check is reported by an alert the seeder handles in its own thread:
        # wait for both the alert and the end of the check.
        wait_until(
            lambda: (
                (s := seeder.state(stored.upload.id)) is not None
                and s.rechecked
                and s.state not in ("checking_files", "checking_resume_data")
            ),
            30,
            "a full check of the data",
        )
        state = seeder.state(stored.upload.id)
        assert state.progress < 1.0


def test_settings_reach_the_session(make_world: Any) -> None:
    world = make_world(seeder_max_connections=17, seeder_upload_rate=123456)
    pack = world.seeder.session.get_settings()
    assert pack["connections_limit"] == 17
    assert pack["upload_rate_limit"] == 123456
    assert pack["enable_dht"] is False and pack["enable_outgoing_utp"] is False
    assert world.seeder.port > 0
    assert pack["listen_interfaces"].startswith("127.0.0.1:")


def test_seeder_off(make_world: Any, tmp_path: Path) -> None:
    world = make_world(seeder=False)
    assert "seeder" not in world.instance.services
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    body = world.client.get(f"/api/v1/uploads/{stored.upload.infohash}/seeding").json()
    assert body["state"] == "off" and body["seeding"] is False
    assert body["webseed"] is True  # the web seed serves stored data all the same


def test_a_peer_downloads_from_the_seeder(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path, version="v2")
    wait_seeding(world, stored.upload.id)
    with LibtorrentSession() as peer:
        peer.add(stored.data, tmp_path / "down")
        world.seeder.connect_peer(stored.upload.id, "127.0.0.1", peer.port)
        peer.wait_complete(stored.data, timeout=60)
    for path in stored.source.rglob("*.bin"):
        rel = path.relative_to(stored.source.parent)
        assert (tmp_path / "down" / rel).read_bytes() == path.read_bytes()
    wait_until(lambda: world.seeder.state(stored.upload.id).uploaded > 0, 10, "upload stats")
    state = world.seeder.state(stored.upload.id)
    assert state.ratio > 0.9


def _nodelay_of(peer: tuple[str, int]) -> bool | None:
    """TCP_NODELAY of this process's socket connected to `peer` (None if there is none)."""
    import socket

    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=int(name))
        except (OSError, ValueError):
            continue
        try:
            if sock.type == socket.SOCK_STREAM and sock.getpeername()[:2] == peer:
                return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        except OSError:
            continue
        finally:
            sock.detach()
    return None


def test_peer_connections_get_tcp_nodelay(world: World, tmp_path: Path) -> None:
    """A reader's small requests and the seeder's unchoke must not wait for a delayed
    ACK: the seeder turns Nagle's algorithm off on each peer connection it accepts, and
    on no other socket."""
    import socket

    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    wait_seeding(world, stored.upload.id)
    with socket.create_connection(("127.0.0.1", world.seeder.port), timeout=5) as peer:
        here = peer.getsockname()[:2]
        wait_until(lambda: _nodelay_of(here) is True, 10, "TCP_NODELAY on the connection")
        # the connecting side is a socket of this process too, not a seeder's peer
        assert not peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_session_keeps_finished_readers_and_unchokes_at_once() -> None:
    from holdfast.seeding.seeder import session_settings

    pack = session_settings(host="127.0.0.1", port=0)
    assert pack["close_redundant_connections"] is False
    assert pack["unchoke_slots_limit"] == -1
