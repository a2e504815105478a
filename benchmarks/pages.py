"""Web pages benchmark: time to first byte and page weight with a large catalogue.

    python benchmarks/pages.py [--datasets 10000] [--uploads 100000] [--files 100000]
                               [--requests 20] [--database-url URL]

Builds the catalogue of the instance benchmark (`benchmarks/catalogue.py`: 10,000
datasets and 100,000 uploads by bulk inserts, then one 100,000-file torrent uploaded
through the API), tags a quarter of the datasets, gives half the uploads swarm counts
and every row its own creation time (see `make_realistic`), then starts `holdfast serve`
in its own process on 127.0.0.1 and requests each page over HTTP as an anonymous
visitor. For each page: the time to first byte of the first request (cold caches), the
median and worst over N more, and the page weight: the HTML plus every stylesheet and
script it loads, uncompressed and gzipped. Prints a Markdown table. Targets: under
100 ms server time and 100 KB before images.
"""

from __future__ import annotations

import gzip
import http.client
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text, update

from benchmarks.catalogue import (
    build,
    catalogue_arguments,
    catalogue_settings,
    synthetic_torrent,
)
from holdfast.accounts.models import Role
from holdfast.app import create_app
from holdfast.catalogue.models import Dataset, Tag, Upload, dataset_tags

TTFB_TARGET_MS = 100
WEIGHT_TARGET_KB = 100
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def make_realistic(instance) -> None:
    """A 'climate' tag on every fourth dataset, swarm counts on every other upload, and
    distinct creation times (the bulk insert gives every row the same one), then
    statistics for the query planner as PostgreSQL's autovacuum would gather them."""
    start = datetime.now(UTC) - timedelta(days=400)
    with instance.db.write() as s:
        s.execute(insert(Tag), [{"name": "climate"}, {"name": "ocean"}])
        climate, ocean = s.scalars(select(Tag.id).order_by(Tag.id)).all()
        ids = list(s.scalars(select(Dataset.id)))
        s.execute(
            insert(dataset_tags),
            [{"dataset_id": i, "tag_id": climate} for i in ids if i % 4 == 0]
            + [{"dataset_id": i, "tag_id": ocean} for i in ids if i % 7 == 0],
        )
        s.execute(
            update(Dataset),
            [
                {
                    "id": i,
                    "created_at": start + timedelta(hours=i),
                    "updated_at": start + timedelta(hours=i),
                }
                for i in ids
            ],
        )
        upload_ids = list(s.scalars(select(Upload.id)))
        s.execute(
            update(Upload),
            [{"id": i, "created_at": start + timedelta(minutes=5 * i)} for i in upload_ids],
        )
        s.execute(
            update(Upload)
            .where(Upload.id % 2 == 0)
            .values(seeders=Upload.id % 40, leechers=Upload.id % 5)
        )
        s.execute(update(Dataset).where(Dataset.id % 10 == 0).values(threat="endangered"))
    if instance.db.is_postgres:
        with instance.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def get(port: int, path: str) -> tuple[float, float, int, bytes]:
    """(time to first byte, total time, status, body) for one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("GET", path, headers={"Accept": "text/html", "Accept-Encoding": "identity"})
    response = conn.getresponse()
    first_byte = time.perf_counter() - start
    body = response.read()
    total = time.perf_counter() - start
    conn.close()
    return first_byte, total, response.status, body


def wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("holdfast serve exited")
        try:
            if get(port, "/api/v1/health")[2] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("holdfast serve did not start")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = catalogue_arguments()
    ap.add_argument("--requests", type=int, default=20)
    args = ap.parse_args()
    settings = catalogue_settings("holdfast-pages-", args.database_url)
    tmp = settings.data_dir
    app = create_app(settings)
    instance = app.state.instance
    t0 = time.perf_counter()
    build(instance, args.datasets, args.uploads)
    make_realistic(instance)
    user = instance.accounts.register("uploader", "benchmark password", role=Role.uploader)
    _row, token = instance.accounts.create_token(user)
    with TestClient(app) as client:
        r = client.post(
            "/api/v1/uploads",
            headers={"Authorization": f"Bearer {token}"},
            files={"torrent": ("big.torrent", synthetic_torrent(args.files))},
            data={"dataset": "dataset-0"},
        )
        r.raise_for_status()
        big = r.json()["infohash"]
    instance.db.dispose()
    print(
        f"built {args.datasets} datasets, {args.uploads} uploads and a {args.files}-file "
        f"upload in {time.perf_counter() - t0:.0f} s"
    )

    port = free_port()
    env = dict(os.environ)
    env.update(HOLDFAST_FEDERATION="false", HOLDFAST_TRACKER_UDP_PORT="0", HOLDFAST_SEEDER="false")
    if args.database_url:
        env["HOLDFAST_DATABASE_URL"] = args.database_url
    command = [
        sys.executable, "-m", "holdfast", "serve", "--data-dir", str(tmp), "--port", str(port),
        "--no-run-jobs", "--config-file", str(tmp / "none.toml"), "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    pages = [
        ("home", "/"),
        ("search 'ocean'", "/search?q=ocean"),
        ("search 'sea surface', page 3", "/search?q=sea+surface&page=3"),
        ("dataset list", "/datasets"),
        ("tag page (2,500 datasets)", "/tags/climate"),
        ("dataset (11 uploads)", "/datasets/dataset-0"),
        ("upload, 100,000 files, page 1", f"/uploads/{big}"),
        ("upload, 100,000 files, page 1000", f"/uploads/{big}?page=1000"),
        ("upload, one folder of 2,000", f"/uploads/{big}?prefix=big-survey/region07/"),
        ("feed: needs seeders (RSS)", "/feeds/needs-seeders.rss"),
    ]
    rows = []
    try:
        wait_for(port, server)
        assets: dict[str, bytes] = {}
        for name, path in pages:
            first, _total, status, _body = get(port, path)  # also the warm-up
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            samples = [get(port, path) for _ in range(args.requests)]
            ttfb = sorted(s[0] * 1000 for s in samples)
            html = samples[-1][3]
            for asset in ASSET.findall(html.decode("utf-8", "replace")):
                if asset not in assets:
                    assets[asset] = get(port, asset)[3]
            used = [assets[a] for a in ASSET.findall(html.decode("utf-8", "replace"))]
            raw = len(html) + sum(len(a) for a in used)
            zipped = len(gzip.compress(html)) + sum(len(gzip.compress(a)) for a in used)
            rows.append(
                (name, first * 1000, statistics.median(ttfb), ttfb[-1], len(html), raw, zipped)
            )
    finally:
        server.terminate()
        server.wait(timeout=30)

    db = "PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite"
    print(
        f"\n| {db}: page | TTFB first request | TTFB median | TTFB worst of {args.requests} | "
        "HTML | HTML + CSS + JS | gzipped | within targets |\n|---|---|---|---|---|---|---|---|"
    )
    for name, first_ms, median, worst, html_len, raw, zipped in rows:
        ok = median < TTFB_TARGET_MS and raw < WEIGHT_TARGET_KB * 1024
        print(
            f"| {name} | {first_ms:.1f} ms | {median:.1f} ms | {worst:.1f} ms | "
            f"{html_len / 1024:.1f} KB | "
            f"{raw / 1024:.1f} KB | {zipped / 1024:.1f} KB | {'yes' if ok else 'no'} |"
        )


if __name__ == "__main__":
    main()
