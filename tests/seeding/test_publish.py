"""`holdfast publish` against a real instance: torrent, upload, hand-over to the seeder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from holdfast.seeding.storage import upload_folder
from holdfast.torrents import parse_torrent
from tests.seeding.helpers import make_data
from tests.seeding.live import holdfast, live_instance, publish_env, same_tree

pytestmark = pytest.mark.slow


def infohash_of(output: str) -> str:
    for line in output.splitlines():
        if line.strip().startswith("infohash"):
            return line.split()[-1]
    raise AssertionError(f"no infohash in output:\n{output}")


def test_publish_to_the_local_instance(make_settings: Any, tmp_path: Path) -> None:
    source = make_data(tmp_path / "src" / "records", seed="local")
    with live_instance(make_settings) as live:
        r = holdfast(
            "publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
            "--description", "first batch", "--torrent-out", str(tmp_path / "out.torrent"),
            env=publish_env(live),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "hashing" in r.stderr and "uploading" in r.stderr  # the progress bars
        ih = infohash_of(r.stdout)
        upload = live.api(f"/api/v1/uploads/{ih}")
        assert upload["status"] == "approved"
        assert upload["description"] == "first batch"
        torrent = parse_torrent((tmp_path / "out.torrent").read_bytes())
        assert torrent.infohash == ih and torrent.version == "hybrid"
        assert torrent.trackers == [[f"{live.base_url}/announce"]]
        assert torrent.webseeds == [f"{live.base_url}/webseed/{ih}/"]
        # The data sits in the storage folder (hard links: the same inodes).
        stored = upload_folder(live.instance.settings.resolved_storage_dir, ih) / "records"
        same_tree(source, stored)
        first = next(source.rglob("*.bin"))
        assert first.stat().st_ino == (stored / first.relative_to(source)).stat().st_ino
        live.wait_seeding(ih)

        # Publishing the same data again is refused, and the storage is left as it was.
        again = holdfast(
            "publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
            "--storage-dir", str(tmp_path / "other-storage"), env=publish_env(live),
        )  # fmt: skip
        assert again.returncode == 1
        assert "already in the catalogue" in again.stderr
        assert not (tmp_path / "other-storage" / ih / "records").exists()


def test_publish_with_a_new_dataset_and_move(make_settings: Any, tmp_path: Path) -> None:
    source = make_data(tmp_path / "src" / "moved", seed="move", files=1)
    with live_instance(make_settings) as live:
        r = holdfast(
            "publish", str(source), "--to", live.base_url, "--title", "Ocean floats",
            "--tag", "ocean", "--move", "--version", "v1", "--quiet", env=publish_env(live),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        ih = infohash_of(r.stdout)
        upload = live.api(f"/api/v1/uploads/{ih}")
        dataset = live.api(f"/api/v1/datasets/{upload['dataset']}")
        assert dataset["title"] == "Ocean floats" and dataset["tags"] == ["ocean"]
        assert not source.exists()
        stored = upload_folder(live.instance.settings.resolved_storage_dir, ih) / "moved"
        assert stored.is_dir()
        live.wait_seeding(ih)


def test_clear_errors(make_settings: Any, tmp_path: Path) -> None:
    source = make_data(tmp_path / "src" / "bad", seed="errors")
    with live_instance(make_settings) as live:
        env = publish_env(live, token="not-a-real-token")
        r = holdfast("publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
                     env=env)  # fmt: skip
        assert r.returncode == 1 and "refused the token" in r.stderr

        r = holdfast("publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
                     env=publish_env(live, token=""))  # fmt: skip
        assert r.returncode == 1 and "API token is needed" in r.stderr

        r = holdfast("publish", str(source), "--to", live.base_url, "--dataset", "no-such",
                     env=publish_env(live))  # fmt: skip
        assert r.returncode == 1 and "dataset 'no-such'" in r.stderr

        r = holdfast("publish", str(source), "--to", live.base_url, env=publish_env(live))
        assert r.returncode == 2 and "--dataset" in r.stderr

        (source / "holdfast.yaml").write_text("title: [unclosed\n")
        r = holdfast("publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
                     env=publish_env(live))  # fmt: skip
        assert r.returncode == 1 and "holdfast.yaml" in r.stderr
        assert live.api("/api/v1/uploads")["total"] == 0
        assert not any(live.instance.settings.resolved_storage_dir.glob("*/bad"))
        (source / "holdfast.yaml").unlink()

    # The instance is gone: its address no longer answers.
    r = holdfast("publish", str(source), "--to", live.base_url, "--dataset", "x",
                 env=publish_env(live))  # fmt: skip
    assert r.returncode == 1 and "cannot reach the instance" in r.stderr


def test_publish_to_another_instance_without_seeding(make_settings: Any, tmp_path: Path) -> None:
    source = make_data(tmp_path / "src" / "remote", seed="remote")
    with live_instance(make_settings) as live:
        env = publish_env(live)
        env["HOLDFAST_DATA_DIR"] = str(tmp_path / "my-own-instance")  # not the instance's
        out = tmp_path / "remote.torrent"
        r = holdfast("publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
                     "--no-seed", "--torrent-out", str(out), env=env)  # fmt: skip
        assert r.returncode == 0, r.stderr
        ih = infohash_of(r.stdout)
        assert "holdfast seed" in r.stdout
        assert not upload_folder(live.instance.settings.resolved_storage_dir, ih).exists()
        assert live.api(f"/api/v1/uploads/{ih}/seeding")["state"] == "no_data"
        # `holdfast seed` checks the data and seeds it for a while.
        r = holdfast("seed", str(out), str(source.parent), "--host", "127.0.0.1", "--port", "0",
                     "--duration", "3", "--quiet")  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "stopped: seeding, 100.0%" in r.stdout
        assert Path(str(out) + ".resume").is_file()
