"""Reads from an instance upload URL in a process of its own, as a user's script would.

    python -m tests.arrays.instance_reader PLAN.json

PLAN: {"source": upload URL, "swarm": bool, "peers": [[host, port]], "out": folder,
"reads": [{"array": path in the torrent, "slice": "10:13, :, :"}],
"hdf5": {"path": ..., "dataset": ..., "slice": ...} or null}.

Opens each array with `holdfast.open_zarr(source, array)`, reads each slice into
`out/<n>.npy`, and prints one JSON line: for each read the bytes the reader fetched
for it (from peers and from web seeds), and the reader's totals.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import holdfast
from holdfast.arrays.peers import PeerOptions
from holdfast.arrays.sources import open_reader
from holdfast.cli.arrays import parse_selection


def totals(reader: Any) -> dict[str, int]:
    fetcher = reader.fetcher
    if hasattr(fetcher, "refresh_stats"):
        t = fetcher.refresh_stats()
        return {"peers": t.from_peers, "webseeds": t.from_webseeds}
    return {"peers": 0, "webseeds": int(fetcher.stats.bytes_fetched)}


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    out = Path(plan["out"])
    options: dict[str, Any] = {"swarm": plan["swarm"]}
    if plan["swarm"]:
        options["peers"] = [tuple(p) for p in plan["peers"]]
        options["peer_options"] = PeerOptions(listen="127.0.0.1:0", grace=3.0, timeout=20.0)
    report: dict[str, Any] = {"reads": [], "opened": {}}
    arrays: dict[str, Any] = {}
    for n, item in enumerate(plan["reads"]):
        name = item["array"]
        if name not in arrays:
            arrays[name] = holdfast.open_zarr(plan["source"], name, **options)
            report["opened"][name] = totals(arrays[name].store.reader)
        reader = arrays[name].store.reader
        before = totals(reader)
        data = arrays[name][parse_selection(item["slice"])]
        after = totals(reader)
        np.save(out / f"{n}.npy", np.asarray(data), allow_pickle=False)
        report["reads"].append({k: after[k] - before[k] for k in after})
    for array in arrays.values():
        report.setdefault("totals", {})[array.store.root] = totals(array.store.reader)
        array.store.reader.close()
    h5 = plan.get("hdf5")
    if h5:
        import h5py

        from holdfast.arrays.fs import TorrentFileSystem

        with open_reader(plan["source"], **options) as reader:
            fs = TorrentFileSystem(reader)
            with fs.open(h5["path"]) as handle, h5py.File(handle, "r") as f:
                data = f[h5["dataset"]][parse_selection(h5["slice"])]
            np.save(out / "hdf5.npy", data, allow_pickle=False)
            report["hdf5"] = totals(reader)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
