"""Catalogue benchmark: a large catalogue, a 100,000-file torrent, search and listings.

    python benchmarks/catalogue.py [--datasets 10000] [--uploads 100000] [--files 100000]
                                   [--database-url URL]

Builds the catalogue with bulk inserts (datasets, uploads, search documents; the upload
rows describe synthetic torrents), then measures through the real app (in-process ASGI,
no network) what a person waits for: uploading one 100,000-file torrent through the API,
reading that upload's API record and first page of files, search latency over 20 queries,
and the dataset listing. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import insert

from holdfast.accounts.models import Role
from holdfast.app import create_app
from holdfast.catalogue.models import Dataset, SearchDocument, Upload
from holdfast.settings import Settings
from holdfast.torrents import bencode

WORDS = [
    "ocean", "sea", "surface", "temperature", "climate", "satellite", "radar",
    "precipitation", "census", "health", "mortality", "vaccine", "survey", "genome",
    "protein", "forest", "fire", "drought", "glacier", "ice", "arctic", "soil", "river",
    "flood", "coral", "reef", "air", "quality", "ozone", "carbon", "methane", "wind",
    "solar", "energy", "grid",
]  # fmt: skip
QUERIES = [
    "ocean", "sea surface", "temperature", "climate satellite", "health survey", "genome",
    "glacier ice", "air quality", "flood", "carbon methane", "OR", '"quoted', "coral reef",
    "file_000123", "wind solar", "arctic", "precipitation radar", "census", "drought", "forest",
]  # fmt: skip


def synthetic_torrent(files: int, piece_length: int = 1 << 20) -> bytes:
    """A v1 torrent of `files` small files (piece hashes are placeholders)."""
    sizes = [1000 + (i % 977) for i in range(files)]
    total = sum(sizes)
    pieces = (total + piece_length - 1) // piece_length
    info = {
        b"name": b"big-survey",
        b"piece length": piece_length,
        b"pieces": hashlib.sha1(b"x").digest() * pieces,  # placeholder bytes
        b"files": [
            {b"length": size, b"path": [b"region%02d" % (i % 50), b"file_%06d.csv" % i]}
            for i, size in enumerate(sizes)
        ],
    }
    return bencode.encode({b"announce": b"http://127.0.0.1:6969/announce", b"info": info})


def build(instance, n_datasets: int, n_uploads: int) -> None:
    rng = random.Random(1)
    owner = instance.accounts.register("bench", "benchmark password", role=Role.uploader)
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    with instance.db.write() as s:
        rows = []
        for i in range(n_datasets):
            title = " ".join(rng.sample(WORDS, 4)) + f" {i}"
            rows.append(
                {
                    "slug": f"dataset-{i}",
                    "title": title,
                    "description": " ".join(rng.choices(WORDS, k=40)),
                    "description_html": "",
                    "status": "approved",
                    "account_id": owner.id,
                    "created_at": now,
                    "updated_at": now,
                    "upload_count": n_uploads // n_datasets,
                }
            )
        s.execute(insert(Dataset), rows)
        s.execute(
            insert(SearchDocument),
            [
                {
                    "kind": "dataset",
                    "ref_id": i + 1,
                    "dataset_id": i + 1,
                    "title": r["title"],
                    "body": r["description"],
                    "paths": "",
                }
                for i, r in enumerate(rows)
            ],
        )
        batch, docs = [], []
        for i in range(n_uploads):
            h = hashlib.sha256(b"u%d" % i).hexdigest()
            batch.append(
                {
                    "dataset_id": i % n_datasets + 1,
                    "account_id": owner.id,
                    "infohash_v1": hashlib.sha1(b"u%d" % i).hexdigest(),
                    "infohash_v2": h,
                    "infohash_v2_short": h[:40],
                    "torrent_version": "hybrid",
                    "name": f"upload-{i}",
                    "total_size": rng.randrange(1, 1 << 40),
                    "file_count": 10,
                    "piece_length": 1 << 22,
                    "status": "approved",
                    "created_at": now,
                    "updated_at": now,
                    "trackers": [],
                    "webseeds": [],
                }
            )
            docs.append(
                {
                    "kind": "upload",
                    "ref_id": i + 1,
                    "dataset_id": i % n_datasets + 1,
                    "title": f"upload-{i}",
                    "body": " ".join(rng.choices(WORDS, k=8)),
                    "paths": " ".join(rng.choices(WORDS, k=5)),
                }
            )
            if len(batch) == 10_000:
                s.execute(insert(Upload), batch)
                s.execute(insert(SearchDocument), docs)
                batch, docs = [], []
        if batch:
            s.execute(insert(Upload), batch)
            s.execute(insert(SearchDocument), docs)


def timed(fn, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def catalogue_arguments() -> argparse.ArgumentParser:
    """The catalogue's size and database, shared by this benchmark and pages.py."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=int, default=10_000)
    ap.add_argument("--uploads", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--database-url", default=None)
    return ap


def catalogue_settings(prefix: str, database_url: str | None) -> Settings:
    """Settings of a fresh benchmark instance in a new temporary folder."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    return Settings(
        data_dir=tmp,
        database_url=database_url,
        run_jobs=False,
        config_file=tmp / "none.toml",
        max_torrent_bytes=256 << 20,
        # The catalogue alone: no federation deliveries, the tracker on any free port.
        federation=False,
        tracker_udp_port=0,
        seeder=False,
    )


def main() -> None:
    args = catalogue_arguments().parse_args()
    settings = catalogue_settings("holdfast-bench-", args.database_url)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    app = create_app(settings)
    instance = app.state.instance
    t0 = time.perf_counter()
    build(instance, args.datasets, args.uploads)
    built = time.perf_counter() - t0
    print(f"built {args.datasets} datasets, {args.uploads} uploads in {built:.1f} s")
    user = instance.accounts.register("uploader", "benchmark password", role=Role.uploader)
    _row, token = instance.accounts.create_token(user)
    auth = {"Authorization": f"Bearer {token}"}
    torrent = synthetic_torrent(args.files)
    print(f"torrent: {args.files} files, {len(torrent) / 1e6:.1f} MB")

    results: list[tuple[str, str, str]] = []
    with TestClient(app) as client:
        box = {}

        def post() -> None:
            r = client.post(
                "/api/v1/uploads",
                headers=auth,
                files={"torrent": ("big.torrent", torrent)},
                data={"dataset": "dataset-0"},
            )
            r.raise_for_status()
            box["ih"] = r.json()["infohash"]

        upload_s = timed(post)[0]
        ih = box["ih"]
        results.append(
            ("upload the 100k-file torrent (API)", f"{upload_s * 1000:.0f} ms", "< 1500 ms")
        )
        rec = timed(lambda: client.get(f"/api/v1/uploads/{ih}").raise_for_status(), 20)
        results.append(
            ("its API record, median of 20", f"{statistics.median(rec) * 1000:.1f} ms", "< 100 ms")
        )
        files = timed(
            lambda: client.get(
                f"/api/v1/uploads/{ih}/files?page=500&per_page=100"
            ).raise_for_status(),
            20,
        )
        results.append(
            (
                "its file list, page 500 of 1000, median",
                f"{statistics.median(files) * 1000:.1f} ms",
                "< 100 ms",
            )
        )
        page = [p for p in app.routes if getattr(p, "path", "") == "/uploads/{infohash}"]
        if page:
            html = timed(lambda: client.get(f"/uploads/{ih}").raise_for_status(), 20)
            results.append(
                (
                    "its upload page (HTML), median",
                    f"{statistics.median(html) * 1000:.1f} ms",
                    "< 100 ms",
                )
            )
        lat = []
        for q in QUERIES:
            lat += timed(
                lambda q=q: client.get("/api/v1/search", params={"q": q}).raise_for_status()
            )
        lat.sort()
        results.append(("search p50 over 20 queries", f"{lat[len(lat) // 2] * 1000:.1f} ms", ""))
        results.append(
            (
                "search p95 over 20 queries",
                f"{lat[int(len(lat) * 0.95) - 1] * 1000:.1f} ms",
                "< 50 ms",
            )
        )
        listing = timed(lambda: client.get("/api/v1/datasets?per_page=50").raise_for_status(), 20)
        results.append(
            (
                "dataset listing, 50 per page, median",
                f"{statistics.median(listing) * 1000:.1f} ms",
                "< 30 ms",
            )
        )

        for label, path in (
            ("upload listing, newest, 50 per page, median", "/api/v1/uploads?per_page=50"),
            (
                "upload listing, fewest seeders, 50 per page, median",
                "/api/v1/uploads?per_page=50&sort=seeders",
            ),
        ):
            times = timed(lambda path=path: client.get(path).raise_for_status(), 20)
            results.append((label, f"{statistics.median(times) * 1000:.1f} ms", ""))

    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    db = "PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite"
    print(f"\n| {db}: measure | holdfast | target |\n|---|---|---|")
    for name, value, target in results:
        print(f"| {name} | {value} | {target} |")


if __name__ == "__main__":
    main()
