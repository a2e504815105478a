"""Federation speed: verifying signed Creates, the inbox, backfill and fan-out.

    python benchmarks/federation.py [--part verify,inbox,backfill,fanout]
        [--verify-count 2000] [--inbox-count 2000] [--uploads 10000] [--followers 200]
        [--database sqlite|postgres] [--jobs process|threads|worker]

Everything runs on 127.0.0.1, every loop is bounded in count and in time.

- verify: one signed, proof-carrying Create (an Upload inside) checked the way an
  inbox checks it: the draft-cavage HTTP signature (with its Digest) and the object
  integrity proofs, by holdfast and, in the same run on the same requests, by bovine
  (PyPI `bovine`, `SignatureChecker` and `CryptographicIdentifier.verify_document`).
- inbox: the same Creates POSTed to a real instance (a child process) from a peer
  actor it follows; inbox throughput is Creates answered 202 (verified and stored)
  per second, and the time until they are all processed into the catalogue.
- backfill: instance A holds N uploads; B follows A; wall time until B's catalogue
  holds all N (A and B are child processes).
- fanout: an instance with F followers on local sink servers publishes one upload;
  time until every sink inbox got the Create, and the instance's event-loop lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from holdfast.federation.documents import InstanceIdentity, UploadInfo, upload_document
from holdfast.federation.httpmessage import HttpRequest
from holdfast.federation.httpsig import sign_request, verify_request
from holdfast.federation.keys import InstanceKeys, ResolvedKey
from holdfast.federation.proofs import create_proof, verify_proof

ACTIVITY_JSON = "application/activity+json"


def machine() -> str:
    cpus = os.cpu_count()
    load = os.getloadavg()[0]
    return f"{cpus} cores, load {load:.2f} at start, Python {platform.python_version()}"


def signed_create(
    identity: InstanceIdentity,
    keys: InstanceKeys,
    n: int,
    *,
    context_in_proof: bool = True,
    dataset_url: str | None = None,
    torrent_url: str | None = None,
    infohash_v1: str | None = None,
) -> dict[str, Any]:
    """A Create of a new Upload, both carrying the origin's eddsa-jcs-2022 proof."""
    token = infohash_v1 or secrets.token_hex(20)
    v2 = None if infohash_v1 else secrets.token_hex(32)
    magnet = f"magnet:?xt=urn:btih:{token}" + (f"&xt=urn:btmh:1220{v2}" if v2 else "")
    upload = UploadInfo(
        url=f"{identity.base_url}/uploads/bench-{n}-{token[:8]}",
        name=f"Benchmark upload {n}",
        dataset_url=dataset_url or f"{identity.base_url}/datasets/bench-{n % 50}",
        dataset_title=f"Benchmark dataset {n % 50}",
        torrent_url=torrent_url or f"{identity.base_url}/uploads/bench-{n}-{token[:8]}.torrent",
        magnet=magnet,
        total_size=1_000_000 + n,
        file_count=3,
        piece_length=262144,
        published=datetime.now(UTC),
        infohash_v1=token,
        infohash_v2=v2,
        description="Sea surface temperature, daily means, 0.25 degree grid.",
        tags=("climate", "ocean"),
    )
    document = create_proof(
        upload_document(identity, upload),
        keys.ed25519_private,
        verification_method=keys.verification_method,
        context_in_proof=context_in_proof,
    )
    activity = {
        "@context": document["@context"],
        "id": f"{document['id']}#create",
        "type": "Create",
        "actor": identity.actor_url,
        "published": document["published"],
        "to": document["to"],
        "cc": document["cc"],
        "object": document,
    }
    return create_proof(
        activity,
        keys.ed25519_private,
        verification_method=keys.verification_method,
        context_in_proof=context_in_proof,
    )


def signed_post(
    identity: InstanceIdentity, keys: InstanceKeys, inbox: str, activity: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(activity).encode()
    headers = sign_request(
        "POST", inbox, private_key=keys.rsa_private, key_id=identity.key_id, body=body
    )
    headers["Content-Type"] = ACTIVITY_JSON
    return body, headers


# ---------------------------------------------------------------------------
# verify: holdfast against bovine, same requests, same run


def bench_verify(count: int, seconds: float) -> list[dict[str, Any]]:
    from bovine.crypto.signature_checker import SignatureChecker
    from bovine.crypto.types import CryptographicIdentifier

    keys = InstanceKeys.generate()
    identity = InstanceIdentity(base_url="https://a.example", name="alpha", title="Alpha")
    inbox = "https://b.example/actor/inbox"
    # bovine 0.5 mishandles a proof's own "@context"; proofs without one verify in both.
    requests = []
    for n in range(count):
        activity = signed_create(identity, keys, n, context_in_proof=False)
        body, headers = signed_post(identity, keys, inbox, activity)
        requests.append((body, headers))

    ours_key = ResolvedKey(identity.key_id, identity.actor_url, keys.rsa_public)

    async def resolve(key_id: str, *, refresh: bool) -> ResolvedKey | None:
        return ours_key if key_id == identity.key_id else None

    async def ours() -> int:
        done = 0
        deadline = time.perf_counter() + seconds
        for body, headers in requests:
            request = HttpRequest.build("POST", inbox, headers, body)
            verified = await verify_request(request, resolve)
            activity = json.loads(body)
            if verified.owner != identity.actor_url:
                raise RuntimeError("holdfast did not verify the signature")
            verify_proof(activity)
            verify_proof(activity["object"])
            done += 1
            if time.perf_counter() > deadline:
                break
        return done

    bovine_key = CryptographicIdentifier.from_pem(keys.rsa_public_pem, identity.actor_url)
    proof_key = CryptographicIdentifier(
        controller=identity.actor_url, public_key=keys.ed25519_public
    )

    async def retrieve(key_id: str) -> CryptographicIdentifier | None:
        return bovine_key if key_id == identity.key_id else None

    checker = SignatureChecker(retrieve)

    async def theirs() -> int:
        done = 0
        deadline = time.perf_counter() + seconds
        for body, headers in requests:
            lowered = {name.lower(): value for name, value in headers.items()}

            async def read_body(body: bytes = body) -> bytes:
                return body

            owner = await checker.validate_signature("post", inbox, lowered, read_body)
            activity = json.loads(body)
            if owner != identity.actor_url:
                raise RuntimeError("bovine did not verify the signature")
            if proof_key.verify_document(activity) is None:
                raise RuntimeError("bovine did not verify the Create's proof")
            if proof_key.verify_document(activity["object"]) is None:
                raise RuntimeError("bovine did not verify the Upload's proof")
            done += 1
            if time.perf_counter() > deadline:
                break
        return done

    rows = []
    for name, run in (("holdfast", ours), ("bovine 0.5", theirs), ("holdfast (again)", ours)):
        start = time.perf_counter()
        done = asyncio.run(run())
        elapsed = time.perf_counter() - start
        rows.append({"verifier": name, "count": done, "seconds": elapsed, "per_s": done / elapsed})
    return rows


def print_verify(rows: list[dict[str, Any]]) -> None:
    print("\n| verifier: HTTP signature + Digest + 2 proofs per Create | Creates | s | per s |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['verifier']} | {row['count']} | {row['seconds']:.2f} | {row['per_s']:.0f} |")


# ---------------------------------------------------------------------------
# helpers for the parts with real instances


def parent_view(proc: Any) -> Any:
    """The `Instance` of a child-served instance, opened from this process (same data
    folder and database, same public URL), with the federation hooks installed: what it
    writes is published and delivered by the child's job runner."""
    from holdfast.app import create_app
    from holdfast.settings import Settings

    port = int(proc.base_url.rsplit(":", 1)[1])
    settings = Settings(**proc.settings_values, port=port, public_url=proc.base_url)
    app = create_app(settings, migrate=False)
    instance = app.state.instance
    instance.services.setdefault("bench_app", app)
    return instance


def federation_of(instance: Any) -> Any:
    from holdfast.federation.service import Federation

    app = instance.services.get("bench_app")
    service = getattr(app.state, "federation", None) if app is not None else None
    if service is not None:
        return service
    return instance.services.get("federation") or Federation(instance.db, instance.settings)


def follow(instance: Any, actor_id: str) -> dict[str, Any]:
    from holdfast.federation.netguard import guarded_client

    fed = federation_of(instance)

    async def run() -> dict[str, Any]:
        async with guarded_client(allow_private=True) as client:
            result: dict[str, Any] = await fed.follow(client, actor_id)
            return result

    return asyncio.run(run())


def follow_state(instance: Any, actor_id: str, direction: str) -> str | None:
    for row in federation_of(instance).follows(direction):
        if actor_id in (row.get("actor"), row.get("actor_id")):
            return str(row.get("state"))
    return None


def wait(check: Any, seconds: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {seconds:.0f} s: {what}")
        time.sleep(interval)


def tiny_torrent(n: int) -> bytes:
    """A small, valid v1 torrent unique to `n` (piece hashes are placeholders)."""
    import hashlib

    from holdfast.torrents import bencode

    length = 40_000 + n
    pieces = (length + 16383) // 16384
    info = {
        b"name": b"bench-%06d.csv" % n,
        b"piece length": 16384,
        b"pieces": hashlib.sha1(b"%d" % n).digest() * pieces,
        b"length": length,
    }
    return bencode.encode({b"info": info})


def populate(instance: Any, uploads: int, datasets: int, deadline: float) -> int:
    """`uploads` approved uploads over `datasets` approved datasets, made through the
    catalogue (so each is published: a signed Upload and its Create in the outbox)."""
    from holdfast.accounts.models import Role
    from holdfast.catalogue.models import Dataset, Status, Upload
    from holdfast.catalogue.schemas import DatasetIn, UploadIn

    owner = instance.accounts.register(
        f"bench{secrets.token_hex(3)}", "benchmark password", role=Role.uploader, trusted=True
    )
    slugs = []
    for d in range(datasets):
        dataset = instance.catalogue.create_dataset(
            owner, DatasetIn(title=f"Benchmark dataset {d}", slug=f"bench-{d}", tags=["bench"])
        )
        slugs.append(dataset.slug)
    with instance.db.write() as s:
        for row in s.query(Dataset).filter(Dataset.slug.in_(slugs)):
            row.status = Status.approved.value
    made = 0
    batch: list[int] = []

    def approve(ids: list[int]) -> None:
        with instance.db.write() as s:
            for row in s.query(Upload).filter(Upload.id.in_(ids)):
                row.status = Status.approved.value

    for n in range(uploads):
        upload = instance.catalogue.create_upload(
            owner, UploadIn(dataset=slugs[n % datasets]), tiny_torrent(n)
        )
        batch.append(upload.id)
        made += 1
        if len(batch) == 200:
            approve(batch)
            batch = []
        if time.monotonic() > deadline:
            break
    if batch:
        approve(batch)
    return made


def mirrored_uploads(instance: Any, origin: str) -> int:
    from sqlalchemy import func, select

    from holdfast.federation.models import FedObject

    with instance.db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(FedObject)
                .where(
                    FedObject.kind == "upload",
                    FedObject.origin == origin,
                    FedObject.upload_id.is_not(None),  # in the catalogue, not just seen
                )
            )
            or 0
        )


def outbox_size(instance: Any) -> int:
    from sqlalchemy import func, select

    from holdfast.federation.models import OutboxItem

    with instance.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(OutboxItem)) or 0)


def database_settings(work: Path, name: str, database: str) -> dict[str, Any]:
    if database == "sqlite":
        return {}
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.conftest import POSTGRES_URL, create_postgres_database

    if not POSTGRES_URL:
        raise SystemExit("--database postgres needs HOLDFAST_TEST_POSTGRES_URL")
    url, drop = create_postgres_database()
    DROPS.append(drop)
    return {"database_url": url}


DROPS: list[Any] = []


# ---------------------------------------------------------------------------
# (a) backfill


def bench_backfill(
    work: Path, uploads: int, seconds: float, database: str, jobs: str = "process"
) -> dict[str, Any]:
    from tests.federation.interop.instances import InstanceProcess

    a = InstanceProcess(
        work / "a", name="alpha", **database_settings(work, "a", database), **jobs_settings(jobs)
    )
    b = InstanceProcess(
        work / "b", name="beta", **database_settings(work, "b", database), **jobs_settings(jobs)
    )
    with a, b:
        view_a, view_b = parent_view(a), parent_view(b)
        start = time.monotonic()
        made = populate(view_a, uploads, max(1, uploads // 100), start + seconds * 4)
        wait(lambda: outbox_size(view_a) >= made, seconds, "A's outbox to hold every Create")
        populate_s = time.monotonic() - start
        start = time.perf_counter()
        follow(view_b, a.actor_url)
        wait(
            lambda: follow_state(view_b, a.actor_url, "outbound") == "accepted",
            60,
            "A to accept B's follow",
            interval=0.05,
        )
        accepted_s = time.perf_counter() - start
        deadline = time.monotonic() + seconds
        got = 0
        while time.monotonic() < deadline:
            got = mirrored_uploads(view_b, a.actor_url)
            if got >= made:
                break
            time.sleep(0.25)
        wall = time.perf_counter() - start
    return {
        "uploads": made,
        "mirrored": got,
        "populate_s": populate_s,
        "accept_s": accepted_s,
        "wall_s": wall,
        "per_s": got / wall,
        "complete": got >= made,
    }


# ---------------------------------------------------------------------------
# (b) inbox, end to end


def origin_catalogue(
    identity: InstanceIdentity, keys: InstanceKeys, folder: Path, count: int, datasets: int = 20
) -> list[dict[str, Any]]:
    """`count` signed Creates whose datasets and .torrent files the origin serves (from
    its `static/` folder), as a real peer would, so the inbox can apply each one."""
    from holdfast.federation.documents import DatasetVersionInfo, dataset_document
    from holdfast.torrents import parse_torrent

    static = folder / "static"
    (static / "datasets").mkdir(parents=True, exist_ok=True)
    (static / "torrents").mkdir(parents=True, exist_ok=True)
    base = f"{identity.base_url}/static"
    for d in range(datasets):
        version = DatasetVersionInfo(
            dataset_url=f"{base}/datasets/bench-{d}",
            slug=f"bench-{d}",
            title=f"Benchmark dataset {d}",
            published=datetime.now(UTC),
            description="Daily means.",
            tags=("climate",),
        )
        document = create_proof(
            dataset_document(identity, version),
            keys.ed25519_private,
            verification_method=keys.verification_method,
        )
        (static / "datasets" / f"bench-{d}").write_text(json.dumps(document), encoding="utf-8")
    creates = []
    for n in range(count):
        data = tiny_torrent(n)
        (static / "torrents" / f"{n}.torrent").write_bytes(data)
        creates.append(
            signed_create(
                identity,
                keys,
                n,
                dataset_url=f"{base}/datasets/bench-{n % datasets}",
                torrent_url=f"{base}/torrents/{n}.torrent",
                infohash_v1=parse_torrent(data).infohash_v1,
            )
        )
    return creates


def worker_process(node: Any) -> Any:
    """`holdfast worker` for `node` (served with run_jobs off), in a child process."""
    env = {
        **os.environ,
        **{f"HOLDFAST_{k.upper()}": str(v) for k, v in node.settings_values.items()},
        "HOLDFAST_PUBLIC_URL": node.base_url,
        "HOLDFAST_PORT": node.base_url.rsplit(":", 1)[1],
    }
    return subprocess.Popen(
        [sys.executable, "-m", "holdfast", "worker", "--grace", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(node.workdir / "worker.log").open("w"),
    )


def jobs_settings(jobs: str) -> dict[str, Any]:
    """Where an instance runs its jobs: "process" (a child process, as `holdfast serve`
    does by default), "threads" (threads of the server), "worker" (none: a separate
    `holdfast worker` runs them, started by the benchmark)."""
    return {
        "process": {"job_process": True},
        "threads": {"job_process": False},
        "worker": {"run_jobs": False},
    }[jobs]


def bench_inbox(
    work: Path, count: int, seconds: float, database: str, jobs: str = "process"
) -> dict[str, Any]:
    import httpx

    from tests.federation.interop.instances import InstanceProcess
    from tests.federation.interop.sinks import SinkServers

    worker = jobs == "worker"
    node = InstanceProcess(
        work / "inbox",
        name="gamma",
        **database_settings(work, "i", database),
        **jobs_settings(jobs),
    )
    with (
        node,
        SinkServers(work / "origin", servers=1, per_server=1, layout="instance") as origin,
        contextlib.ExitStack() as stack,
    ):
        if worker:
            child = worker_process(node)
            stack.callback(child.wait, 30)
            stack.callback(child.terminate)
        view = parent_view(node)
        sender = origin.actors[0]
        base = sender.rsplit("/actor", 1)[0]
        identity = InstanceIdentity(base_url=base, name="sink0", title="Origin")
        follow(view, sender)
        follow_activity = wait(
            lambda: next(
                (a for a in origin.received(sender) if (a or {}).get("type") == "Follow"), None
            ),
            60,
            "our Follow to reach the origin",
        )
        inbox = f"{node.base_url}/actor/inbox"
        accept = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{sender}#accepts/{secrets.token_hex(6)}",
            "type": "Accept",
            "actor": sender,
            "object": follow_activity,
        }
        body, headers = signed_post(identity, origin.keys, inbox, accept)
        status = httpx.post(inbox, content=body, headers=headers, timeout=30).status_code
        if status >= 300:
            raise RuntimeError(f"the Accept was refused: {status}")
        wait(lambda: follow_state(view, sender, "outbound") == "accepted", 60, "accepted")
        creates = origin_catalogue(identity, origin.keys, origin.workdir / "sink0", count)
        posts = [signed_post(identity, origin.keys, inbox, c) for c in creates]

        async def send_all() -> tuple[int, dict[int, int]]:
            statuses: dict[int, int] = {}
            limit = asyncio.Semaphore(8)
            deadline = time.monotonic() + seconds
            async with httpx.AsyncClient(timeout=60) as client:

                async def one(body: bytes, headers: dict[str, str]) -> None:
                    if time.monotonic() > deadline:
                        return
                    async with limit:
                        response = await client.post(inbox, content=body, headers=headers)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

                await asyncio.gather(*(one(b, h) for b, h in posts))
            return sum(statuses.values()), statuses

        start = time.perf_counter()
        sent, statuses = asyncio.run(send_all())
        answered = time.perf_counter() - start
        accepted = statuses.get(202, 0) + statuses.get(200, 0)
        stored = wait(
            lambda: (n := mirrored_uploads(view, sender)) >= accepted and n,
            seconds,
            "every Create to be processed",
            interval=0.25,
        )
        processed = time.perf_counter() - start
        lag = None
        try:
            from tests.federation.interop.looplag import lag_between

            lag = lag_between(node.looplag_path, time.time() - processed, time.time())
        except (OSError, ValueError):
            pass
    return {
        "sent": sent,
        "statuses": statuses,
        "answer_s": answered,
        "per_s": accepted / answered,
        "stored": stored,
        "processed_s": processed,
        "processed_per_s": stored / processed,
        "lag": lag,
    }


# ---------------------------------------------------------------------------
# (c) fan-out


def bench_fanout(
    work: Path, followers: int, seconds: float, database: str, jobs: str = "process"
) -> dict[str, Any]:
    from tests.federation.interop.instances import InstanceProcess
    from tests.federation.interop.looplag import lag_between
    from tests.federation.interop.sinks import SinkServers

    servers = max(1, min(4, followers // 50))
    per_server = (followers + servers - 1) // servers
    node = InstanceProcess(
        work / "fanout",
        name="delta",
        federation_auto_accept=True,
        **jobs_settings(jobs),
        **database_settings(work, "f", database),
    )
    with node, SinkServers(work / "sinks", servers=servers, per_server=per_server) as sinks:
        view = parent_view(node)
        actors = sinks.actors[:followers]
        statuses = sinks.follow_all(node.actor_url, f"{node.base_url}/actor/inbox")
        if any(code >= 300 for code in statuses):
            raise RuntimeError(f"follows refused: {sorted(set(statuses))}")

        def accepted() -> bool:
            arrivals = sinks.arrivals()
            return all(any(k == "Accept" for _, k in arrivals[a]) for a in actors)

        wait(accepted, seconds, "every follower to get our Accept", interval=0.5)
        time.sleep(1.0)
        start_wall = time.time()
        start = time.perf_counter()
        populate(view, 1, 1, time.monotonic() + seconds)

        def creates() -> dict[str, float] | None:
            arrivals = sinks.arrivals()
            firsts = {}
            for actor in actors:
                times = [
                    at for at, kind in arrivals[actor] if kind == "Create" and at >= start_wall
                ]
                if not times:
                    return None
                firsts[actor] = min(times)
            return firsts

        firsts = wait(creates, seconds, "every follower to get the Create", interval=0.1)
        detected = time.perf_counter() - start
        last = max(firsts.values())
        time.sleep(0.6)  # the lag monitor writes its samples every 0.25 s
        lag = lag_between(node.looplag_path, start_wall, last)
    return {
        "followers": len(actors),
        "servers": servers,
        "last_s": last - start_wall,
        "first_s": min(firsts.values()) - start_wall,
        "median_s": sorted(firsts.values())[len(firsts) // 2] - start_wall,
        "detected_s": detected,
        "lag": lag,
    }


def print_inbox(row: dict[str, Any], database: str) -> None:
    lag = row.get("lag") or {}
    print(f"\n| inbox, {database} | value | target |")
    print("|---|---:|---:|")
    print(f"| signed Creates POSTed (8 at a time) | {row['sent']} | |")
    print(f"| answered 202 (verified and stored) per s | {row['per_s']:.0f} | >= 200 |")
    print(f"| processed into the catalogue per s | {row['processed_per_s']:.0f} | |")
    print(f"| event-loop lag max / p99 (ms) | {lag.get('max_ms')} / {lag.get('p99_ms')} | |")


def print_backfill(row: dict[str, Any], database: str) -> None:
    print(f"\n| backfill, {database} | value | target |")
    print("|---|---:|---:|")
    print(f"| uploads on A | {row['uploads']} | |")
    print(f"| follow accepted after (s) | {row['accept_s']:.2f} | |")
    if row["complete"]:
        print(f"| B holds all of them after (s) | {row['wall_s']:.1f} | < 60 |")
    else:
        print(f"| B holds {row['mirrored']} after the time bound (s) | {row['wall_s']:.1f} | |")
    print(f"| items per s | {row['per_s']:.0f} | |")


def print_fanout(row: dict[str, Any], database: str) -> None:
    lag = row["lag"]
    print(f"\n| fan-out, {database} | value | target |")
    print("|---|---:|---:|")
    print(f"| follower inboxes ({row['servers']} sink servers) | {row['followers']} | |")
    print(
        f"| first / median / last Create arrived (s) | {row['first_s']:.2f} / "
        f"{row['median_s']:.2f} / {row['last_s']:.2f} | last < 10 |"
    )
    print(f"| event-loop lag max / p99 (ms) | {lag['max_ms']} / {lag['p99_ms']} | no stalls |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", default="verify,inbox,backfill,fanout")
    parser.add_argument("--verify-count", type=int, default=2000)
    parser.add_argument("--inbox-count", type=int, default=2000)
    parser.add_argument("--uploads", type=int, default=10_000)
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120.0, help="time bound of each part")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--jobs",
        choices=["process", "threads", "worker"],
        default="process",
        help="where the instances run their jobs: a child process (as `holdfast serve` "
        "does), threads of the server, or (inbox only) a separate `holdfast worker`",
    )
    args = parser.parse_args()
    parts = set(args.part.split(","))
    print(f"# federation benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    with tempfile.TemporaryDirectory(prefix="hf-fedbench-") as tmp:
        work = Path(tmp)
        try:
            if "verify" in parts:
                print_verify(bench_verify(args.verify_count, args.seconds))
            if "inbox" in parts:
                row = bench_inbox(work, args.inbox_count, args.seconds, args.database, args.jobs)
                print(f"\ninbox ({args.database}): {json.dumps(row, default=str)}")
                print_inbox(row, f"{args.database}, jobs: {args.jobs}")
            if "backfill" in parts:
                row = bench_backfill(work, args.uploads, args.seconds, args.database, args.jobs)
                print(f"\nbackfill ({args.database}): {json.dumps(row)}")
                print_backfill(row, f"{args.database}, jobs: {args.jobs}")
            if "fanout" in parts:
                row = bench_fanout(work, args.followers, args.seconds, args.database, args.jobs)
                print(f"\nfanout ({args.database}): {json.dumps(row)}")
                print_fanout(row, f"{args.database}, jobs: {args.jobs}")
        finally:
            for drop in DROPS:
                drop()


if __name__ == "__main__":
    main()
