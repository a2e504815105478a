"""Scraping external trackers as jobs: a real opentracker (fresh per test) whose
peers are real libtorrent clients; removed uploads are not scraped; the tracker's
own failure reason and the kind of failure are kept."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from holdfast.accounts.models import Role
from holdfast.app import create_app
from holdfast.catalogue.models import Status, Upload
from holdfast.catalogue.schemas import UploadIn
from holdfast.jobs import Job, JobRegistry, JobRunner
from holdfast.swarm import history
from holdfast.swarm.jobs import job_key, scrape_all, scrape_tracker, tracker_groups
from holdfast.swarm.models import ScrapeTracker, SwarmTrackerState
from holdfast.swarm.scrape import Scraper
from holdfast.swarm.tracker import SwarmStats
from tests.instance.helpers import User, make_dataset, make_user, set_status
from tests.swarm.helpers import LibtorrentPeer, OpenTracker, Torrent, make_torrent, wait_for


@pytest.fixture
def instance(make_settings: Callable[..., Any]) -> Iterator[Any]:
    app = create_app(make_settings(tracker=False, federation=False))
    yield app.state.instance
    app.state.instance.db.dispose()


def run_jobs(instance: Any) -> int:
    registry = JobRegistry()
    for kind in (scrape_all, scrape_tracker):
        registry.register(kind)
    return JobRunner(instance.db, instance.settings, threads=1, registry=registry).run_once()


def add_upload(instance: Any, owner: User, slug: str, torrent: Torrent) -> Upload:
    upload = instance.catalogue.create_upload(owner.account, UploadIn(dataset=slug), torrent.data)
    set_status(instance, Upload, upload.id, Status.approved)
    return upload


def states(instance: Any, upload_id: int) -> dict[str, SwarmTrackerState]:
    with instance.db.read() as s:
        rows = s.scalars(
            select(SwarmTrackerState).where(SwarmTrackerState.upload_id == upload_id)
        ).all()
    return {row.url: row for row in rows}


def scraped(url: str, hashes: list[bytes]) -> dict[bytes, SwarmStats]:
    import asyncio

    async def go() -> dict[bytes, SwarmStats]:
        async with Scraper(allow_private_addresses=True) as scraper:
            return dict((await scraper.scrape(url, hashes)).stats)

    return asyncio.run(go())


@pytest.mark.interop
def test_scrape_jobs_count_real_clients_and_skip_removed_uploads(
    instance: Any,
    tmp_path: Path,
    opentracker: Callable[[list[bytes]], OpenTracker],
    libtorrent_peers: Callable[[], LibtorrentPeer],
) -> None:
    tracker = opentracker([])
    trackers = [tracker.udp_url, tracker.http_url]
    seeded = make_torrent(tmp_path / "seeded", "hybrid", trackers)
    removed_torrent = make_torrent(tmp_path / "removed", "v1", trackers)
    tracker.allow(seeded.swarms + removed_torrent.swarms)

    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    upload = add_upload(instance, owner, dataset.slug, seeded)
    removed = add_upload(instance, owner, dataset.slug, removed_torrent)
    set_status(instance, Upload, removed.id, Status.removed)

    seeder = libtorrent_peers()
    seeder.add(seeded, seeded.save_path)
    wait_for(
        lambda: (
            all(s.seeders == 1 for s in scraped(tracker.udp_url, seeded.swarms).values())
            and len(scraped(tracker.udp_url, seeded.swarms)) == 2
        ),
        30,
        "the seeder's announces",
    )

    groups = tracker_groups(instance.db, instance.settings.announce_url)
    assert groups == {tracker.udp_url: [upload.id], tracker.http_url: [upload.id]}
    assert run_jobs(instance) == 3  # scrape_all, then one scrape per tracker

    found = states(instance, upload.id)
    assert set(found) == set(trackers)
    for row in found.values():
        assert (row.seeders, row.leechers, row.error_kind, row.failure_reason) == (1, 0, None, None)
        assert row.last_success_at is not None and row.next_attempt_at is not None
    with instance.db.read() as s:
        row = s.get(Upload, upload.id)
        assert (row.seeders, row.leechers) == (1, 0)
        trackers_known = s.scalars(select(ScrapeTracker.url)).all()
        assert sorted(trackers_known) == sorted(trackers)
    assert [
        (seeders, leechers)
        for _at, seeders, leechers in history.samples(instance.db, upload.id, row.created_at)
    ] == [(1, 0)]
    assert states(instance, removed.id) == {}

    # An upload removed after its tracker's job was queued is not scraped either.
    with instance.db.write() as s:
        from holdfast.jobs import enqueue

        enqueue(s, scrape_tracker, {"url": tracker.udp_url, "uploads": [removed.id]})
    assert run_jobs(instance) == 1
    assert states(instance, removed.id) == {}

    # Not due again until the interval has passed: nothing is enqueued.
    with instance.db.write() as s:
        periodic = s.scalars(select(Job).where(Job.kind == "swarm.scrape_all")).one()
        periodic.next_attempt_at = row.created_at
    assert run_jobs(instance) == 1
    with instance.db.read() as s:
        jobs = s.scalars(select(Job).where(Job.key == job_key(tracker.udp_url))).all()
        assert [j.state for j in jobs] == ["done"]


class FailingTracker(http.server.BaseHTTPRequestHandler):
    reason = b"rate limited, try again later"
    body = b"d14:failure reason%d:%se" % (len(reason), reason)
    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def failing_tracker() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailingTracker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FailingTracker.requests = 0
    yield f"http://127.0.0.1:{server.server_address[1]}/announce"
    server.shutdown()
    server.server_close()


def test_failure_reason_and_kind_are_kept_and_retried(
    instance: Any, tmp_path: Path, failing_tracker: str
) -> None:
    torrent = make_torrent(tmp_path / "t", "v1", [failing_tracker, "udp://tracker.invalid:6969"])
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    upload = add_upload(instance, owner, dataset.slug, torrent)

    run_jobs(instance)
    found = states(instance, upload.id)
    failing = found[failing_tracker]
    assert failing.error_kind == "rate_limited"
    assert failing.failure_reason == "rate limited, try again later"  # verbatim
    assert failing.seeders is None and failing.next_attempt_at is not None
    assert found["udp://tracker.invalid:6969"].error_kind == "dns"
    with instance.db.read() as s:
        jobs = {
            j.payload["url"]: j for j in s.scalars(select(Job).where(Job.kind == "swarm.scrape"))
        }
        # Both may pass: the jobs engine retries them at the backoff's time.
        assert {j.state for j in jobs.values()} == {"retrying"}
        tracker_row = s.scalars(
            select(ScrapeTracker).where(ScrapeTracker.url == failing_tracker)
        ).one()
        assert tracker_row.consecutive_failures == 1
        assert jobs[failing_tracker].next_attempt_at == tracker_row.next_attempt_at
        # A rate limit waits longer than the first retry of a timeout would (5 min).
        assert (tracker_row.next_attempt_at - tracker_row.last_attempt_at).total_seconds() > 1500
        assert s.get(Upload, upload.id).seeders is None


def test_private_addresses_are_refused_unless_allowed(
    make_settings: Callable[..., Any], tmp_path: Path, failing_tracker: str
) -> None:
    app = create_app(make_settings(tracker=False, allow_private_addresses=False, federation=False))
    instance = app.state.instance
    torrent = make_torrent(tmp_path / "t", "v1", [failing_tracker])
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    upload = add_upload(instance, owner, dataset.slug, torrent)
    run_jobs(instance)
    row = states(instance, upload.id)[failing_tracker]
    assert row.error_kind == "forbidden_address"
    assert FailingTracker.requests == 0  # no request reached the loopback server
    instance.db.dispose()
