"""The JSON API end to end, through the real app and a real database."""

from __future__ import annotations

import hashlib

import libtorrent as lt
import pytest

from holdfast.accounts.models import Role
from tests.instance.helpers import make_user
from tests.instance.torrents import make_files, make_torrent, sample_torrent


@pytest.fixture
def uploader(instance):
    return make_user(instance, "ursula", Role.uploader)


def create_dataset(client, user, **fields):
    body = {"title": "Sea surface temperature", "tags": ["Climate", "ocean"]} | fields
    r = client.post("/api/v1/datasets", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


def post_upload(client, user, dataset, torrent, **fields):
    return client.post(
        "/api/v1/uploads",
        files={"torrent": ("x.torrent", torrent, "application/x-bittorrent")},
        data={"dataset": dataset} | fields,
        headers=user.headers,
    )


def test_health_reports_version(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True
    from holdfast import __version__

    assert body["version"] == __version__


def test_dataset_roundtrip_with_sanitised_markdown(client, uploader):
    made = create_dataset(
        client,
        uploader,
        description="**bold** <script>alert(1)</script> [x](javascript:alert(1))",
        source_urls=["https://example.org/sst"],
        license="CC-BY-4.0",
    )
    assert made["slug"] == "sea-surface-temperature"
    assert made["tags"] == ["climate", "ocean"]
    assert made["status"] == "approved"
    got = client.get("/api/v1/datasets/sea-surface-temperature").json()
    assert "<strong>bold</strong>" in got["description_html"]
    assert "<script" not in got["description_html"]
    assert 'href="javascript' not in got["description_html"]
    assert got["source_urls"] == ["https://example.org/sst"]


def test_duplicate_slug_is_a_conflict(client, uploader):
    create_dataset(client, uploader)
    r = client.post(
        "/api/v1/datasets", json={"title": "Sea surface temperature"}, headers=uploader.headers
    )
    assert r.status_code == 409
    assert r.json() == {
        "ok": False,
        "error": "a dataset with the slug 'sea-surface-temperature' already exists",
        "status": 409,
        "fields": {"slug": "taken"},
    }


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_upload_keeps_bytes_and_hashes_like_libtorrent(client, uploader, tmp_path, version):
    create_dataset(client, uploader)
    torrent = sample_torrent(tmp_path, "sst", version=version)
    r = post_upload(client, uploader, "sea-surface-temperature", torrent, description="*v*")
    assert r.status_code == 201, r.text
    up = r.json()
    info = lt.torrent_info(lt.bdecode(torrent))
    hashes = info.info_hashes()
    v1 = hashes.v1.to_bytes().hex() if hashes.has_v1() else None
    v2 = hashes.v2.to_bytes().hex() if hashes.has_v2() else None
    assert up["infohash_v1"] == v1
    assert up["infohash_v2"] == v2
    assert up["infohash"] == (v2 or v1)
    assert up["file_count"] == info.num_files() - sum(
        1
        for i in range(info.num_files())
        if info.files().file_flags(i) & lt.file_storage.flag_pad_file
    )
    assert up["torrent_version"] == version
    if v1:
        assert f"xt=urn:btih:{v1}" in up["magnet"]
    if v2:
        assert f"xt=urn:btmh:1220{v2}" in up["magnet"]
    served = client.get(f"/api/v1/uploads/{up['infohash']}/torrent")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/x-bittorrent"
    assert served.content == torrent
    # Every hash the upload has finds it, including the truncated v2 hash trackers use.
    for h in filter(None, [v1, v2, v2 and v2[:40]]):
        assert client.get(f"/api/v1/uploads/{h}").json()["infohash"] == up["infohash"]
    ds = client.get("/api/v1/datasets/sea-surface-temperature").json()
    assert ds["upload_count"] == 1


def test_duplicate_torrent_is_refused_and_changes_nothing(client, uploader, instance, tmp_path):
    create_dataset(client, uploader)
    torrent = sample_torrent(tmp_path, "sst")
    assert post_upload(client, uploader, "sea-surface-temperature", torrent).status_code == 201
    r = post_upload(client, uploader, "sea-surface-temperature", torrent)
    assert r.status_code == 409
    assert r.json()["fields"] == {"torrent": "duplicate"}
    assert client.get("/api/v1/uploads").json()["total"] == 1


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "empty"),
        (b"not bencode at all", "not a valid"),
        (b"d4:infoi1ee", "not a valid"),
        (
            b"d8:announce3:abc4:infod6:lengthi-5e4:name1:a12:piece lengthi16384e6:pieces0:ee",
            "not a valid",
        ),
    ],
)
def test_malformed_torrents_get_clear_errors(client, uploader, payload, reason):
    create_dataset(client, uploader)
    r = post_upload(client, uploader, "sea-surface-temperature", payload)
    assert r.status_code == 422
    body = r.json()
    assert body["ok"] is False and body["status"] == 422
    assert reason in body["error"]
    assert "torrent" in body["fields"]
    assert client.get("/api/v1/uploads").json()["total"] == 0


def test_oversized_torrent_is_refused(make_settings, tmp_path):
    from fastapi.testclient import TestClient

    from holdfast.app import create_app

    app = create_app(make_settings(max_torrent_bytes=2048))
    user = make_user(app.state.instance, "ursula", Role.uploader)
    with TestClient(app) as client:
        create_dataset(client, user)
        root = make_files(tmp_path / "big" / "big", {f"f{i}.bin": b"x" * 10 for i in range(200)})
        r = post_upload(client, user, "sea-surface-temperature", make_torrent(root, version="v1"))
    assert r.status_code == 413
    assert r.json()["status"] == 413


def test_file_list_is_paginated(client, uploader, tmp_path):
    create_dataset(client, uploader)
    root = make_files(
        tmp_path / "many" / "many", {f"d/{i:03}.txt": str(i).encode() for i in range(120)}
    )
    up = post_upload(
        client, uploader, "sea-surface-temperature", make_torrent(root, version="v2")
    ).json()
    first = client.get(f"/api/v1/uploads/{up['infohash']}/files?per_page=50").json()
    assert first["total"] == 120 and first["pages"] == 3 and len(first["items"]) == 50
    last = client.get(f"/api/v1/uploads/{up['infohash']}/files?per_page=50&page=3").json()
    assert len(last["items"]) == 20
    paths = [f["path"] for f in first["items"] + last["items"]]
    assert len(set(paths)) == 70
    prefixed = client.get(f"/api/v1/uploads/{up['infohash']}/files?prefix=many/d/11").json()
    assert sorted(f["path"] for f in prefixed["items"]) == [f"many/d/11{i}.txt" for i in range(10)]


def test_edits_are_versioned_with_hash_chain(client, uploader):
    create_dataset(client, uploader)
    r = client.patch(
        "/api/v1/datasets/sea-surface-temperature",
        json={"title": "SST, daily", "summary": "clearer title", "base_version": 1},
        headers=uploader.headers,
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    stale = client.patch(
        "/api/v1/datasets/sea-surface-temperature",
        json={"title": "Something else", "base_version": 1},
        headers=uploader.headers,
    )
    assert stale.status_code == 409
    page = client.get("/api/v1/datasets/sea-surface-temperature/versions").json()
    assert page["total"] == 2 and page["total_exact"] and not page["has_next"]
    versions = page["items"]
    assert [v["number"] for v in versions] == [2, 1]
    assert versions[0]["parent_hash"] == versions[1]["content_hash"]
    assert versions[0]["data"]["title"] == "SST, daily"
    assert versions[1]["data"]["title"] == "Sea surface temperature"
    import json

    data = json.dumps(
        versions[0]["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    expected = hashlib.sha256((versions[0]["parent_hash"] + data).encode()).hexdigest()
    assert versions[0]["content_hash"] == expected


def test_parts_and_uploads_attached_to_them(client, uploader, tmp_path):
    create_dataset(client, uploader, parts=[{"slug": "1981", "title": "Year 1981"}])
    r = client.post(
        "/api/v1/datasets/sea-surface-temperature/parts",
        json={"slug": "1982", "title": "Year 1982"},
        headers=uploader.headers,
    )
    assert r.status_code == 201
    torrent = sample_torrent(tmp_path, "y1982")
    up = post_upload(client, uploader, "sea-surface-temperature", torrent, parts="1982").json()
    assert up["parts"] == ["1982"]
    bad = post_upload(
        client, uploader, "sea-surface-temperature", sample_torrent(tmp_path, "z"), parts="1999"
    )
    assert bad.status_code == 422 and bad.json()["fields"] == {"parts": "unknown"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"title": ""}, "title"),
        ({"title": "x", "slug": "Not A Slug"}, "slug"),
        ({"title": "x", "source_urls": ["javascript:alert(1)"]}, "source_urls.0"),
        ({"title": "x", "threat": "apocalyptic"}, "threat"),
        ({"title": "x", "unknown": 1}, "unknown"),
    ],
)
def test_invalid_dataset_fields_are_named(client, uploader, body, field):
    r = client.post("/api/v1/datasets", json=body, headers=uploader.headers)
    assert r.status_code == 422
    assert field in r.json()["fields"]
    assert client.get("/api/v1/datasets").json()["total"] == 0


def test_unknown_route_uses_the_envelope(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"ok": False, "error": "no such page", "status": 404}


def test_listing_is_paginated_and_filtered(client, uploader):
    for i in range(7):
        create_dataset(client, uploader, title=f"Set {i}", tags=["even" if i % 2 == 0 else "odd"])
    page = client.get("/api/v1/datasets?per_page=3&page=3").json()
    assert page["total"] == 7 and page["pages"] == 3 and len(page["items"]) == 1
    odd = client.get("/api/v1/datasets?tag=odd").json()
    assert odd["total"] == 3 and all("odd" in d["tags"] for d in odd["items"])
    titles = [d["title"] for d in client.get("/api/v1/datasets?sort=title").json()["items"]]
    assert titles == sorted(titles)
    tags = {t["name"]: t["datasets"] for t in client.get("/api/v1/tags").json()}
    assert tags == {"even": 4, "odd": 3}
    first = client.get("/api/v1/tags?per_page=1")
    assert first.json() == [{"name": "even", "datasets": 4}]
    assert first.headers["link"].endswith('/api/v1/tags?page=2&per_page=1>; rel="next"')
    last = client.get("/api/v1/tags?per_page=1&page=2")
    assert last.json() == [{"name": "odd", "datasets": 3}] and "link" not in last.headers
