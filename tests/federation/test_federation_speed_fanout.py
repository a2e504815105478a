"""Fan-out: one outbox item delivered to many inboxes from one job, one HTTP client,
a bounded number of signed POSTs in flight; every inbox that fails gets its own
`federation.deliver` job (nothing is lost), one that refuses gets none, a blocked
host gets nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update

from holdfast.app import create_app
from holdfast.federation.delivery import FANOUT_BATCH, fanout_job
from holdfast.federation.jobs import deliver_job
from holdfast.federation.models import OutboxItem
from holdfast.federation.service import Federation
from holdfast.jobs import Job, JobRegistry, JobRunner


class Sink:
    """An HTTP server on 127.0.0.1 whose inboxes answer by their name: `ok-*` 202,
    `busy` 503 with Retry-After 120, `flaky` 500 until `heal()`, `refuse` 403."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.healed = False
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.posts.append((self.path, dict(self.headers.items()), body))
                name = self.path.split("/")[2]  # /users/NAME/inbox
                status, extra = 202, {}
                if name == "busy":
                    status, extra = 503, {"Retry-After": "120"}
                elif name == "flaky" and not sink.healed:
                    status = 500
                elif name == "refuse":
                    status = 403
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the fan-out opens dozens of connections at once
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def heal(self) -> None:
        self.healed = True

    def inbox(self, name: str) -> str:
        return f"{self.base}/users/{name}/inbox"

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _, _ in self.posts]


@pytest.fixture
def fed(make_settings: Any) -> Iterator[Federation]:
    app = create_app(make_settings(federation=True, tracker=False))
    instance = app.state.instance
    yield Federation(instance.db, instance.settings)
    instance.db.dispose()


def run_jobs(fed: Federation) -> int:
    registry = JobRegistry()
    for kind in (fanout_job, deliver_job):
        registry.register(kind)
    return JobRunner(fed.db, fed.settings, threads=1, registry=registry).run_once()


def publish(fed: Federation, inboxes: list[str]) -> OutboxItem:
    with fed.db.write() as s:
        item = fed.add_outbox(
            s, fed.activity("Create", {"id": "https://x.test/o", "type": "Note"}), inboxes=inboxes
        )
        s.expunge(item)
    return item


def jobs(fed: Federation, kind: str) -> list[Job]:
    with fed.db.read() as s:
        rows = list(s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))
        for row in rows:
            s.expunge(row)
    return rows


def test_one_job_delivers_to_every_inbox_and_failures_get_their_own_retry(
    fed: Federation,
) -> None:
    with Sink() as sink, Sink() as blocked:
        oks = [sink.inbox(f"ok-{n}") for n in range(40)]
        others = [sink.inbox(n) for n in ("busy", "flaky", "refuse")]
        unreachable = "http://127.0.0.1:9/users/nobody/inbox"  # discard port: refused
        barred = blocked.inbox("ok-barred")
        fed.set_peer(f"{blocked.base}/users/ok-barred", blocked=True)
        item = publish(fed, [*oks, *others, unreachable, barred, oks[0]])

        queued = jobs(fed, "federation.fanout")
        assert len(queued) == 1 and jobs(fed, "federation.deliver") == []
        assert queued[0].payload["item"] == item.id
        assert len(queued[0].payload["inboxes"]) == len(oks) + len(others) + 2  # deduplicated

        started = datetime.now(UTC)
        assert run_jobs(fed) == 1
        (done,) = jobs(fed, "federation.fanout")
        assert done.state == "done", done.last_error

        # Every inbox that took it got it exactly once, signed, with the stored body.
        paths = sink.paths()
        for inbox in oks:
            assert paths.count(inbox.removeprefix(sink.base)) == 1
        for _, headers, body in sink.posts:
            assert body == item.json.encode("utf-8")
            lowered = {k.lower(): v for k, v in headers.items()}
            assert 'algorithm="rsa-sha256"' in lowered["signature"]
            assert lowered["digest"].startswith("SHA-256=")
            assert lowered["content-type"] == "application/activity+json"
        assert blocked.paths() == []  # a blocked host gets nothing

        # Each inbox that may take it later has its own deliver job; the refusing one none.
        retries = {j.payload["inbox"]: j for j in jobs(fed, "federation.deliver")}
        assert set(retries) == {sink.inbox("busy"), sink.inbox("flaky"), unreachable}
        assert all(j.payload["item"] == item.id and j.state == "queued" for j in retries.values())
        busy_at = retries[sink.inbox("busy")].next_attempt_at.replace(tzinfo=UTC)
        flaky_at = retries[sink.inbox("flaky")].next_attempt_at.replace(tzinfo=UTC)
        assert busy_at >= started + timedelta(seconds=110)  # the inbox's Retry-After
        assert started + timedelta(seconds=5) <= flaky_at <= started + timedelta(seconds=60)

        # The flaky inbox recovers: its retry delivers the item (never lost).
        sink.heal()
        with fed.db.write() as s:
            s.execute(
                update(Job)
                .where(Job.id == retries[sink.inbox("flaky")].id)
                .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert run_jobs(fed) == 1
        assert sink.paths().count("/users/flaky/inbox") == 2
        states = {j.payload["inbox"]: j.state for j in jobs(fed, "federation.deliver")}
        assert states[sink.inbox("flaky")] == "done"
        assert states[sink.inbox("busy")] == "queued"


def test_many_inboxes_are_split_into_batches_and_one_inbox_is_one_delivery(
    fed: Federation,
) -> None:
    inboxes = [f"http://127.0.0.1:9/users/u{n}/inbox" for n in range(2 * FANOUT_BATCH + 7)]
    item = publish(fed, inboxes)
    batches = jobs(fed, "federation.fanout")
    assert [len(j.payload["inboxes"]) for j in batches] == [FANOUT_BATCH, FANOUT_BATCH, 7]
    assert [i for j in batches for i in j.payload["inboxes"]] == sorted(inboxes)
    assert {j.payload["item"] for j in batches} == {item.id}

    single = publish(fed, ["http://127.0.0.1:9/users/only/inbox"])
    (one,) = jobs(fed, "federation.deliver")
    assert one.payload == {"item": single.id, "inbox": "http://127.0.0.1:9/users/only/inbox"}
    assert len(jobs(fed, "federation.fanout")) == 3


def test_a_fanout_of_a_vanished_item_fails_without_posting(fed: Federation) -> None:
    with Sink() as sink:
        item = publish(fed, [sink.inbox("ok-1"), sink.inbox("ok-2")])
        with fed.db.write() as s:
            s.execute(OutboxItem.__table__.delete().where(OutboxItem.id == item.id))
        run_jobs(fed)
        (dead,) = jobs(fed, "federation.fanout")
        assert dead.state == "dead" and "gone" in (dead.last_error or "")
        assert sink.paths() == []
        assert json.loads(item.json)["type"] == "Create"
