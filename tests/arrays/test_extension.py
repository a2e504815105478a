"""The instance serves an upload's zarr metadata, checked against its torrent, to those who
may see the upload; a reader opening the upload URL then needs nothing from the swarm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")

from holdfast.accounts.models import Role  # noqa: E402
from holdfast.catalogue.models import Status, Upload  # noqa: E402
from holdfast.catalogue.schemas import UploadIn  # noqa: E402
from holdfast.torrents import create_torrent  # noqa: E402
from tests.arrays.rangeserver import RangeServer  # noqa: E402
from tests.instance.helpers import make_dataset, make_user, set_status  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# the parts of an instance these tests do not need stay off
QUIET = {"tracker": False, "seeder": False, "federation": False}


@pytest.fixture
def app(make_settings: Any) -> Any:
    from holdfast.app import create_app

    return create_app(make_settings(**QUIET))


def zarr_folder(root: Path) -> Any:
    data = np.arange(16 * 64 * 64, dtype="uint16").reshape(16, 64, 64)
    array = zarr.create_array(
        root / "ds" / "frames.zarr", shape=data.shape, chunks=(2, 64, 64), dtype="uint16"
    )
    array[:] = data
    zarr.create_group(root / "ds" / "meta.zarr").attrs["subject"] = "mouse 7"
    (root / "ds" / "README.txt").write_text("frames\n")
    return data


def publish(instance: Any, owner: Any, torrent: bytes, status: Status) -> Upload:
    dataset = make_dataset(instance, owner, status=Status.approved)
    upload = instance.catalogue.create_upload(
        owner.account, UploadIn(dataset=dataset.slug), torrent
    )
    set_status(instance, Upload, upload.id, status)
    return upload


def documents(root: Path) -> list[dict[str, str]]:
    return [
        {"path": p.relative_to(root).as_posix(), "content": p.read_text("utf-8")}
        for p in sorted((root / "ds").rglob("zarr.json"))
    ]


def test_documents_are_checked_kept_and_shown_only_to_those_who_may_see(
    client: Any, instance: Any, tmp_path: Path
) -> None:
    zarr_folder(tmp_path)
    torrent = create_torrent(tmp_path / "ds", version="hybrid", align="zarr").data
    owner = make_user(instance, "owner", Role.uploader)
    other = make_user(instance, "other")
    upload = publish(instance, owner, torrent, Status.pending)
    url = f"/api/v1/uploads/{upload.infohash}/zarr-metadata"

    assert client.get(url).status_code == 404  # pending: not for everyone
    assert client.get(url, headers=other.headers).status_code == 404
    got = client.get(url, headers=owner.headers)
    assert got.status_code == 200
    assert got.json() == {"infohash": upload.infohash, "source": "none", "files": []}

    docs = documents(tmp_path)
    assert len(docs) == 2  # an array and a group
    assert client.post(url, json={"files": docs}).status_code == 401
    assert client.post(url, json={"files": docs}, headers=other.headers).status_code == 404
    stored = client.post(url, json={"files": docs}, headers=owner.headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["source"] == "published"
    again = client.get(url, headers=owner.headers).json()
    assert again["files"] == docs  # byte for byte

    # documents that are not the torrent's own are refused, and nothing changes
    tampered = [dict(docs[0], content=docs[0]["content"].replace("uint16", "uint32"))]
    refused = client.post(url, json={"files": tampered}, headers=owner.headers)
    assert refused.status_code == 422
    assert "piece hashes" in refused.json()["fields"]["files[0]"]
    for bad, message in [
        ({"path": "ds/README.txt", "content": "frames\n"}, "only zarr metadata"),
        ({"path": "ds/other.zarr/zarr.json", "content": "{}"}, "not a file of this torrent"),
    ]:
        answer = client.post(url, json={"files": [bad]}, headers=owner.headers)
        assert answer.status_code == 422
        assert message in answer.json()["fields"]["files[0]"]
    twice = client.post(url, json={"files": [docs[0], docs[0]]}, headers=owner.headers)
    assert twice.status_code == 422
    assert client.get(url, headers=owner.headers).json()["files"] == docs

    # approved: everyone reads them; only the uploader and moderators change them
    set_status(instance, Upload, upload.id, Status.approved)
    assert client.get(url).json()["files"] == docs
    assert client.post(url, json={"files": []}, headers=other.headers).status_code == 403
    cleared = client.post(url, json={"files": []}, headers=owner.headers)
    assert cleared.json() == {"infohash": upload.infohash, "source": "none", "files": []}
    assert client.get(url).json()["files"] == []

    # removed: a tombstone for everyone but moderators
    set_status(instance, Upload, upload.id, Status.removed)
    assert client.get(url).status_code in (404, 410)


def test_documents_the_seeder_holds_are_served_when_verified(
    client: Any, instance: Any, tmp_path: Path
) -> None:
    zarr_folder(tmp_path)
    torrent = create_torrent(tmp_path / "ds", version="v2", align="zarr").data
    owner = make_user(instance, "owner", Role.uploader)
    upload = publish(instance, owner, torrent, Status.approved)
    url = f"/api/v1/uploads/{upload.infohash}/zarr-metadata"
    seeded = instance.settings.resolved_storage_dir / upload.infohash
    target = seeded / "ds" / "frames.zarr"
    target.mkdir(parents=True)
    (target / "zarr.json").write_bytes((tmp_path / "ds/frames.zarr/zarr.json").read_bytes())
    (seeded / "ds" / "meta.zarr").mkdir()
    (seeded / "ds" / "meta.zarr" / "zarr.json").write_text('{"not": "the real one"}')
    got = client.get(url).json()
    assert got["source"] == "seeder"
    assert [d["path"] for d in got["files"]] == ["ds/frames.zarr/zarr.json"]


def test_opening_an_upload_url_reads_no_metadata_from_the_swarm(
    make_settings: Any, tmp_path: Path
) -> None:
    from holdfast.arrays import open_zarr
    from tests.web.live import live_server

    data = zarr_folder(tmp_path)
    with (
        RangeServer(tmp_path) as web,
        live_server(make_settings, **QUIET) as (base, app),
    ):
        instance = app.state.instance
        torrent = create_torrent(
            tmp_path / "ds", version="hybrid", align="zarr", webseeds=[web.url]
        ).data
        owner = make_user(instance, "owner", Role.uploader)
        upload = publish(instance, owner, torrent, Status.approved)
        import httpx

        answer = httpx.post(
            f"{base}/api/v1/uploads/{upload.infohash}/zarr-metadata",
            json={"files": documents(tmp_path)},
            headers=owner.headers,
        )
        assert answer.status_code == 200, answer.text
        web.stats.reset()
        array = open_zarr(f"{base}/uploads/{upload.infohash}", "ds/frames.zarr", swarm=False)
        try:
            assert array.shape == (16, 64, 64)
            assert array.store.reader.known_files == 2
            assert web.stats.bytes_sent == 0  # opening moved nothing
            np.testing.assert_array_equal(array[5], data[5])
            assert 0 < web.stats.bytes_sent <= 2 * 64 * 64 * 2 * 1.25
        finally:
            array.store.reader.close()


def test_the_instance_starts_without_the_arrays_extra(tmp_path: Path) -> None:
    script = f"""
import sys
for name in ("numpy", "zarr", "numcodecs", "h5py", "jsonschema", "numpydantic", "fsspec"):
    sys.modules[name] = None  # importing any of them now fails
from fastapi.testclient import TestClient
from holdfast.app import create_app
from holdfast.settings import Settings
settings = Settings(data_dir={str(tmp_path / "data")!r}, run_jobs=False,
                    config_file={str(tmp_path / "none.toml")!r})
with TestClient(create_app(settings)) as client:
    answer = client.get("/api/v1/uploads/{"a" * 40}/zarr-metadata")
    print(answer.status_code)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "404"
