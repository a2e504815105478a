"""When a tracker is scraped again, depending on how the last scrape went."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from holdfast.swarm.backoff import (
    DAY,
    HOUR,
    MINUTE,
    BackoffPolicy,
    ScrapeError,
    ScrapeFailure,
    TrackerState,
)
from holdfast.swarm.scrape import ScrapeOutcome
from holdfast.swarm.tracker import SwarmStats

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EXACT = BackoffPolicy(jitter=0.0)


def test_each_kind_of_failure_has_its_own_schedule() -> None:
    first = {kind: EXACT.delay(kind, 1) for kind in ScrapeFailure}
    assert first[ScrapeFailure.TIMEOUT] == 5 * MINUTE
    assert first[ScrapeFailure.REFUSED] == 15 * MINUTE
    assert first[ScrapeFailure.RATE_LIMITED] == 30 * MINUTE
    assert first[ScrapeFailure.DNS] == HOUR
    assert first[ScrapeFailure.TRACKER_FAILURE] == HOUR
    assert first[ScrapeFailure.FORBIDDEN_ADDRESS] == DAY
    assert first[ScrapeFailure.UNSUPPORTED] == 7 * DAY
    # Timeouts are retried soonest, DNS failures later, rate limits in between.
    assert (
        first[ScrapeFailure.TIMEOUT] < first[ScrapeFailure.RATE_LIMITED] < first[ScrapeFailure.DNS]
    )


def test_delays_double_up_to_a_cap() -> None:
    delays = [EXACT.delay(ScrapeFailure.TIMEOUT, n) for n in range(1, 10)]
    assert delays[:4] == [5 * MINUTE, 10 * MINUTE, 20 * MINUTE, 40 * MINUTE]
    assert delays[-1] == 6 * HOUR and max(delays) == 6 * HOUR
    assert EXACT.delay(ScrapeFailure.DNS, 10_000) == DAY  # no overflow


def test_retry_after_is_honoured_within_reason() -> None:
    assert EXACT.delay(ScrapeFailure.RATE_LIMITED, 1, retry_after=3 * HOUR) == 3 * HOUR
    assert EXACT.delay(ScrapeFailure.RATE_LIMITED, 1, retry_after=10.0) == 30 * MINUTE
    assert EXACT.delay(ScrapeFailure.RATE_LIMITED, 1, retry_after=1e12) == 7 * DAY


def test_success_waits_the_interval_or_the_trackers_minimum() -> None:
    assert EXACT.delay(None) == 30 * MINUTE
    assert EXACT.delay(None, min_interval=2 * HOUR) == 2 * HOUR
    assert EXACT.delay(None, min_interval=60.0) == 30 * MINUTE
    assert EXACT.delay(None, min_interval=1e12) == 7 * DAY


def test_jitter_spreads_retries_within_bounds() -> None:
    policy = BackoffPolicy(jitter=0.1)
    rng = random.Random(1)
    delays = {policy.delay(ScrapeFailure.TIMEOUT, 1, rng=rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(270 <= d <= 330 for d in delays)


def test_tracker_state_after_failures_and_success() -> None:
    state = TrackerState("udp://tracker.example:6969/announce")
    timeout = ScrapeOutcome(state.url, error=ScrapeError(ScrapeFailure.TIMEOUT, "no answer"))
    state = state.after(timeout, NOW, EXACT)
    assert state.consecutive_failures == 1 and state.last_failure == ScrapeFailure.TIMEOUT
    assert state.next_attempt_at == NOW + timedelta(minutes=5)
    state = state.after(timeout, NOW, EXACT)
    assert state.next_attempt_at == NOW + timedelta(minutes=10)
    assert state.last_success_at is None

    refusal = ScrapeOutcome(
        state.url,
        error=ScrapeError(ScrapeFailure.TRACKER_FAILURE, "Unregistered torrent"),
        multi_scrape=False,
    )
    state = state.after(refusal, NOW, EXACT)
    assert state.last_message == "Unregistered torrent"
    assert state.consecutive_failures == 3
    assert state.next_attempt_at == NOW + timedelta(hours=4)
    assert state.multi_scrape is False

    success = ScrapeOutcome(state.url, stats={b"a" * 20: SwarmStats(1, 2, 3)}, min_interval=900.0)
    later = NOW + timedelta(hours=5)
    state = state.after(success, later, EXACT)
    assert state.consecutive_failures == 0 and state.last_failure is None
    assert state.last_message is None and state.last_success_at == later
    assert state.next_attempt_at == later + timedelta(minutes=30)
    assert state.multi_scrape is False  # learned earlier, kept


@pytest.mark.parametrize("kind", list(ScrapeFailure))
def test_every_kind_is_scheduled(kind: ScrapeFailure) -> None:
    assert 0 < EXACT.delay(kind, 1) <= EXACT.delay(kind, 30) <= 7 * DAY
