"""Reading arrays an instance seeds, from another process, through its upload URL.

A real instance (uvicorn on 127.0.0.1, its own seeder on) gets a ~110 MB folder from
the real `holdfast publish --align zarr`: a 50 MiB zarr v3 array of 512 KiB chunks, the
same data sharded (20-frame shards of 128 KiB inner chunks), and an HDF5 file. The
publisher's data is linked into the instance's storage, and its seeder seeds it. A
separate Python process then opens the arrays with `holdfast.open_zarr(<upload URL>)`
(zarr.json comes from the instance), reads slices from the instance's seeder, and again
from the instance's /webseed route alone; and reads the HDF5 file lazily with h5py
through the fsspec filesystem.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")
h5py = pytest.importorskip("h5py")

from tests.seeding.live import Live, holdfast, live_instance, publish_env  # noqa: E402
from tests.seeding.test_publish import infohash_of  # noqa: E402
from tests.torrents.clients import wait_until  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.interop]

SHAPE = (100, 512, 512)  # uint16: 50 MiB per array
SHARD = (20, 512, 512)
INNER = (1, 256, 256)
H5_FRAMES = 20
REPO = Path(__file__).resolve().parents[2]

# (array, slice, frames covered) -- every read covers whole frames
PLAIN_READS = [("10:13", [10, 11, 12]), ("50, 0:100", [50]), ("98:100, 7, 9", [98, 99])]
SHARDED_READS = [("25", [25]), ("61:64, 100:400", [61, 62, 63]), ("99", [99])]


def make_folder(root: Path, data: Any) -> Path:
    folder = root / "cortex"
    plain = zarr.create_array(
        folder / "frames.zarr", shape=SHAPE, chunks=(1, 512, 512), dtype="uint16"
    )
    plain[:] = data
    sharded = zarr.create_array(
        folder / "sharded.zarr", shape=SHAPE, chunks=INNER, shards=SHARD, dtype="uint16"
    )
    sharded[:] = data
    with h5py.File(folder / "session.h5", "w") as handle:
        handle.create_dataset("acquisition/frames", data=data[:H5_FRAMES], chunks=(1, 512, 512))
    (folder / "README.txt").write_text("two-photon frames of a mouse visual cortex\n")
    return folder


def inner_chunk_bytes(folder: Path, frame: int) -> int:
    """Bytes of the inner chunks holding `frame` in its shard, from the shard's index."""
    per_shard = SHARD[0] * (SHARD[1] // INNER[1]) * (SHARD[2] // INNER[2])
    shard = folder / "sharded.zarr" / "c" / str(frame // SHARD[0]) / "0" / "0"
    raw = shard.read_bytes()[-(per_shard * 16 + 4) : -4]  # (offset, nbytes) pairs, crc32c
    index = np.frombuffer(raw, dtype="<u8").reshape(SHARD[0], 2, 2, 2)
    return int(index[frame % SHARD[0], :, :, 1].sum())


def shard_index_bytes() -> int:
    per_shard = SHARD[0] * (SHARD[1] // INNER[1]) * (SHARD[2] // INNER[2])
    return per_shard * 16 + 4


def read_in_child(tmp: Path, plan: dict[str, Any]) -> dict[str, Any]:
    out = tmp / f"out-{'peer' if plan['swarm'] else 'webseed'}"
    out.mkdir()
    plan = plan | {"out": str(out)}
    (out / "plan.json").write_text(json.dumps(plan))
    r = subprocess.run(
        [sys.executable, "-m", "tests.arrays.instance_reader", str(out / "plan.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    report: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    report["out"] = out
    return report


def check_reads(folder: Path, data: Any, report: dict[str, Any], source: str) -> int:
    """Each slice equals the source and moved at most 1.25x its chunks; the bytes needed."""
    out: Path = report["out"]
    needed_all = 0
    reads = [("frames", s, f) for s, f in PLAIN_READS] + [
        ("sharded", s, f) for s, f in SHARDED_READS
    ]
    from holdfast.cli.arrays import parse_selection

    seen_shards: set[int] = set()
    for n, (array, selection, frames) in enumerate(reads):
        got = np.load(out / f"{n}.npy")
        np.testing.assert_array_equal(got, data[parse_selection(selection)])
        if array == "frames":
            needed = sum(
                (folder / "frames.zarr" / "c" / str(f) / "0" / "0").stat().st_size for f in frames
            )
        else:
            needed = sum(inner_chunk_bytes(folder, f) for f in frames)
            shards = {f // SHARD[0] for f in frames} - seen_shards
            needed += len(shards) * shard_index_bytes()  # read once per shard
            seen_shards |= shards
        moved = report["reads"][n]
        other = "webseeds" if source == "peers" else "peers"
        assert moved[other] == 0, (array, selection, moved)
        assert needed <= moved[source] <= 1.25 * needed, (array, selection, moved, needed)
        needed_all += needed
    # opening an array moved nothing: its zarr.json came from the instance
    assert all(t == {"peers": 0, "webseeds": 0} for t in report["opened"].values())
    return needed_all


def check_hdf5(folder: Path, data: Any, report: dict[str, Any], source: str) -> None:
    got = np.load(report["out"] / "hdf5.npy")
    np.testing.assert_array_equal(got, data[7, 100:300])
    moved = report["hdf5"][source]
    size = (folder / "session.h5").stat().st_size
    frame = 512 * 512 * 2  # one uncompressed HDF5 chunk
    assert frame <= moved < 0.15 * size, (moved, size)


def publish(live: Live, folder: Path) -> str:
    r = holdfast(
        "publish", str(folder), "--to", live.base_url, "--dataset", live.dataset,
        "--align", "zarr", "--quiet", env=publish_env(live),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "zarr metadata: 2 documents kept" in r.stderr
    return infohash_of(r.stdout)


def test_arrays_the_instance_seeds_are_read_slice_by_slice_from_another_process(
    make_settings: Any, tmp_path: Path
) -> None:
    data = np.random.default_rng(5).integers(0, 1 << 16, size=SHAPE, dtype="uint16")
    folder = make_folder(tmp_path / "src", data)
    with live_instance(make_settings) as live:
        ih = publish(live, folder)
        live.wait_seeding(ih)
        seeder = live.instance.services["seeder"]
        (upload_id,) = seeder.seeding()
        source = f"{live.base_url}/uploads/{ih}"
        plan: dict[str, Any] = {
            "source": source,
            "reads": [{"array": "cortex/frames.zarr", "slice": s} for s, _ in PLAIN_READS]
            + [{"array": "cortex/sharded.zarr", "slice": s} for s, _ in SHARDED_READS],
            "hdf5": {
                "path": "cortex/session.h5",
                "dataset": "acquisition/frames",
                "slice": "7, 100:300",
            },
        }
        uploaded_before = seeder.state(upload_id).uploaded

        # From the instance's seeder: a BitTorrent peer on 127.0.0.1.
        peer = read_in_child(
            tmp_path, plan | {"swarm": True, "peers": [["127.0.0.1", seeder.port]]}
        )
        needed = check_reads(folder, data, peer, "peers")
        check_hdf5(folder, data, peer, "peers")
        # The seeder's own count agrees: it sent what the readers got, a few percent of
        # the upload (HDF5 included).
        received = sum(t["peers"] for t in peer["totals"].values()) + peer["hdf5"]["peers"]
        assert sum(r["peers"] for r in peer["reads"]) == received - peer["hdf5"]["peers"]

        def sent() -> int:
            return int(seeder.state(upload_id).uploaded) - uploaded_before

        wait_until(lambda: sent() >= received, 10, "the seeder's count")  # counted each second
        assert sent() == received, (sent(), received)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        assert needed < received < 0.07 * size, (received, size)

        # From the instance's /webseed route alone: no peers.
        web = read_in_child(tmp_path, plan | {"swarm": False, "peers": []})
        check_reads(folder, data, web, "webseeds")
        check_hdf5(folder, data, web, "webseeds")
        assert sent() == received
