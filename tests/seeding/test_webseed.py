"""The instance's web seed: Range requests, HEAD, 206/416, approved uploads only, no escape."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from holdfast.catalogue.models import Status, Upload
from tests.instance.helpers import set_status
from tests.seeding.conftest import World
from tests.seeding.helpers import stored_upload


@pytest.fixture
def world(make_world: Any) -> World:
    return make_world(seeder=False)


def first_file(stored: Any) -> tuple[str, bytes]:
    f = stored.torrent.files[0]
    rel = Path(f.path).relative_to(stored.torrent.name) if "/" in f.path else Path()
    return f.path, (
        stored.source / rel
    ).read_bytes() if rel != Path() else stored.source.read_bytes()


def test_whole_file_range_and_head(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    path, content = first_file(stored)
    url = f"/webseed/{stored.upload.infohash}/{path}"
    r = world.client.get(url)
    assert r.status_code == 200 and r.content == content
    assert r.headers["accept-ranges"] == "bytes"

    r = world.client.get(url, headers={"Range": "bytes=100-1099"})
    assert r.status_code == 206
    assert r.content == content[100:1100]
    assert r.headers["content-range"] == f"bytes 100-1099/{len(content)}"

    r = world.client.get(url, headers={"Range": "bytes=-500"})
    assert r.status_code == 206 and r.content == content[-500:]
    r = world.client.get(url, headers={"Range": f"bytes={len(content) - 10}-"})
    assert r.status_code == 206 and r.content == content[-10:]

    r = world.client.get(url, headers={"Range": f"bytes={len(content)}-{len(content) + 10}"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(content)}"

    r = world.client.head(url)
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == len(content)

    # The v1 and truncated v2 hashes name the same upload.
    for other in (stored.upload.infohash_v1, stored.upload.infohash_v2_short):
        r = world.client.get(f"/webseed/{other}/{path}", headers={"Range": "bytes=0-9"})
        assert r.status_code == 206 and r.content == content[:10]


def test_single_file_torrent_urls(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path, files=1)
    content = stored.source.read_bytes()
    ih = stored.upload.infohash
    for url in (f"/webseed/{ih}", f"/webseed/{ih}/{stored.torrent.name}"):
        r = world.client.get(url, headers={"Range": "bytes=5-14"})
        assert r.status_code == 206 and r.content == content[5:15], url
    # A multi-file upload has no file at the bare URL.
    multi = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    assert world.client.get(f"/webseed/{multi.upload.infohash}").status_code == 404


def test_only_approved_uploads(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.member, world.dataset, tmp_path)
    path, _ = first_file(stored)
    url = f"/webseed/{stored.upload.infohash}/{path}"
    assert stored.upload.status == "pending"
    # Not even its submitter or a moderator: web seeds serve the public only.
    for headers in ({}, world.member.headers, world.moderator.headers):
        assert world.client.get(url, headers=headers).status_code == 404
    set_status(world.instance, Upload, stored.upload.id, Status.approved)
    assert world.client.get(url).status_code == 200
    set_status(world.instance, Upload, stored.upload.id, Status.removed)
    assert world.client.get(url).status_code == 404


def test_webseed_setting_off(make_world: Any, tmp_path: Path) -> None:
    world = make_world(seeder=False, webseed=False)
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    path, _ = first_file(stored)
    assert world.client.get(f"/webseed/{stored.upload.infohash}/{path}").status_code == 404


SUFFIXES = [
    "../../holdfast.db",
    "%2e%2e/%2e%2e/holdfast.db",
    "..%2f..%2fholdfast.db",
    "{name}/../../../holdfast.db",
    "{name}/%2e%2e/%2e%2e/%2e%2e/holdfast.db",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "{name}/sub/..%2f..%2f..%2f..%2fsecret",
    "{name}/nothere.bin",
    "{name}",
]


def test_no_path_leaves_the_upload(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    (world.instance.settings.resolved_storage_dir / "secret").write_bytes(b"secret")
    for suffix in SUFFIXES:
        url = f"/webseed/{stored.upload.infohash}/" + suffix.format(name=stored.torrent.name)
        r = world.client.get(url)
        assert r.status_code == 404, url
        assert b"secret" not in r.content and b"SQLite" not in r.content


def test_symlinks_out_of_the_folder_are_refused(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    path, content = first_file(stored)
    folder = world.instance.settings.resolved_storage_dir / stored.key
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * len(content))  # same size: only the location gives it away
    stored_file = folder / path
    stored_file.unlink()
    os.symlink(outside, stored_file)
    assert world.client.get(f"/webseed/{stored.upload.infohash}/{path}").status_code == 404

    # The whole torrent folder as a symlink to a copy elsewhere: refused as well.
    other = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    other_path, _ = first_file(other)
    other_root = world.instance.settings.resolved_storage_dir / other.key / other.torrent.name
    elsewhere = tmp_path / "elsewhere"
    other_root.rename(elsewhere)
    os.symlink(elsewhere, other_root)
    assert world.client.get(f"/webseed/{other.upload.infohash}/{other_path}").status_code == 404

    # A symlink that stays inside the upload's folder is fine.
    third = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    third_path, third_content = first_file(third)
    third_folder = world.instance.settings.resolved_storage_dir / third.key
    moved = third_folder / "kept.bin"
    (third_folder / third_path).rename(moved)
    os.symlink(moved, third_folder / third_path)
    r = world.client.get(f"/webseed/{third.upload.infohash}/{third_path}")
    assert r.status_code == 200 and r.content == third_content


def test_changed_size_is_not_served(world: World, tmp_path: Path) -> None:
    stored = stored_upload(world.instance, world.uploader, world.dataset, tmp_path)
    path, _ = first_file(stored)
    target = world.instance.settings.resolved_storage_dir / stored.key / path
    target.write_bytes(b"short")
    assert world.client.get(f"/webseed/{stored.upload.infohash}/{path}").status_code == 404
