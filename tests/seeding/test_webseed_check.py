"""Submitted web seeds: the API, and the job that samples pieces and checks their hashes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from holdfast.jobs import JobRunner, enqueue
from holdfast.seeding.models import SubmittedWebseed
from tests.arrays.rangeserver import RangeServer
from tests.seeding.conftest import World
from tests.seeding.helpers import stored_upload
from tests.web.live import live_server

pytestmark = pytest.mark.slow


def run_jobs(world: World) -> None:
    JobRunner(world.instance.db, world.instance.settings, threads=1).run_once()


def submit(world: World, infohash: str, url: str, headers: dict[str, str] | None = None) -> Any:
    return world.client.post(
        f"/api/v1/uploads/{infohash}/webseeds",
        json={"url": url},
        headers=world.member.headers if headers is None else headers,
    )


def checked(world: World, infohash: str) -> list[dict[str, Any]]:
    r = world.client.get(f"/api/v1/uploads/{infohash}/webseeds")
    assert r.status_code == 200, r.text
    return list(r.json())


def mirror(stored: Any, root: Path) -> Path:
    """A copy of the upload's files laid out as a BEP 19 server expects them."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / stored.torrent.name
    if stored.source.is_dir():
        shutil.copytree(stored.source, target)
    else:
        shutil.copy2(stored.source, target)
    return target


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_a_good_webseed_passes(
    make_world: Any, make_settings: Any, tmp_path: Path, version: str
) -> None:
    world = make_world(seeder=False)
    stored = stored_upload(
        world.instance, world.uploader, world.dataset, tmp_path, version=version, size=200_000
    )
    mirror(stored, tmp_path / "www")
    with RangeServer(tmp_path / "www") as server:
        r = submit(world, stored.upload.infohash, server.url)
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "pending"
        run_jobs(world)
    [row] = checked(world, stored.upload.infohash)
    assert row["state"] == "ok", row
    assert row["pieces_checked"] == 4 and row["error"] == ""
    assert row["checked_at"] is not None


def test_the_instances_own_webseed_passes(make_world: Any, tmp_path: Path) -> None:
    world = make_world(seeder=False)
    with live_server(lambda **kw: world.instance.settings.model_copy(update=kw)) as (base, app):
        live = app.state.instance
        stored = stored_upload(live, world.uploader, world.dataset, tmp_path, files=1)
        r = submit(world, stored.upload.infohash, f"{base}/webseed/{stored.upload.infohash}/")
        assert r.status_code == 201, r.text
        run_jobs(world)
        [row] = checked(world, stored.upload.infohash)
    assert row["state"] == "ok", row


def test_wrong_data_fails(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    copy = mirror(stored, tmp_path / "www")
    for f in copy.rglob("*.bin"):
        data = bytearray(f.read_bytes())
        data[-1] ^= 0xFF  # the last piece is always sampled
        f.write_bytes(bytes(data))
    with RangeServer(tmp_path / "www") as server:
        assert submit(world, stored.upload.infohash, server.url).status_code == 201
        run_jobs(world)
    [row] = checked(world, stored.upload.infohash)
    assert row["state"] == "failed"
    assert "does not match" in row["error"]


def test_a_server_without_range_support_fails(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    mirror(stored, tmp_path / "www")
    with RangeServer(tmp_path / "www", honour_range=False) as server:
        assert submit(world, stored.upload.infohash, server.url).status_code == 201
        run_jobs(world)
    [row] = checked(world, stored.upload.infohash)
    assert row["state"] == "failed" and "206" in row["error"]


def test_private_addresses_are_refused(make_world: Any, tmp_path: Path) -> None:
    world = make_world(seeder=False, allow_private_addresses=False)
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    mirror(stored, tmp_path / "www")
    ih = stored.upload.infohash
    for url in (
        "http://127.0.0.1:9/x/",
        "http://10.1.2.3/x/",
        "http://[::1]/x/",
        "http://localhost/x/",
        "http://169.254.169.254/latest/",
    ):
        r = submit(world, ih, url)
        assert r.status_code == 422, url
        assert r.json()["ok"] is False
    # Stored earlier (say, while the setting was on): the job refuses it when connecting.
    with RangeServer(tmp_path / "www") as server:
        with world.instance.db.write() as s:
            row = SubmittedWebseed(upload_id=stored.upload.id, url=server.url)
            s.add(row)
            s.flush()
            enqueue(s, "seeding.check_webseed", {"id": row.id})
        run_jobs(world)
        assert server.stats.requests == 0
    [row] = checked(world, ih)
    assert row["state"] == "failed" and row["error"].startswith("refused"), row
    with world.instance.db.read() as s:
        assert s.query(SubmittedWebseed).count() == 1


def test_submission_rules(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    ih = stored.upload.infohash
    assert submit(world, ih, "http://example.org/a/", headers={}).status_code == 401
    assert submit(world, ih, "ftp://example.org/a/").status_code == 422
    assert submit(world, ih, "http://user:pw@example.org/a/").status_code == 422
    assert submit(world, ih, "http://example.org/" + "a" * 3000).status_code == 422
    assert submit(world, ih, "http://example.org/a/").status_code == 201
    assert submit(world, ih, "http://example.org/a/").status_code == 409
    assert submit(world, "0" * 40, "http://example.org/b/").status_code == 404
    # A pending upload of someone else is invisible, so nothing can be attached to it.
    pending = stored_upload(world.instance, world.moderator, world.dataset, tmp_path)
    assert pending.upload.status == "approved"  # moderators publish directly
    other = stored_upload(world.instance, world.member, world.dataset, tmp_path)
    assert other.upload.status == "pending"
    r = submit(
        world, other.upload.infohash, "http://example.org/c/", headers=world.uploader.headers
    )
    assert r.status_code == 404
    assert world.client.get(f"/api/v1/uploads/{other.upload.infohash}/webseeds").status_code == 404
    assert [w["url"] for w in checked(world, ih)] == ["http://example.org/a/"]
