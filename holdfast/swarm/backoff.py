"""How scrape failures are classified, and when to try a tracker again.

A scrape job calls `Scraper.scrape`, then `TrackerState.after(outcome, now)` to get
the tracker's new state, including `next_attempt_at` for the job's next run. The
schedule depends on why the last attempt failed: a timeout is usually brief
overload and is retried soon; a name that does not resolve, or a tracker that says
"try later", is left alone for longer; a tracker that refuses us for good is asked
rarely. Every delay grows with consecutive failures, up to a cap, with jitter so
that trackers failed together are not retried together.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from holdfast.swarm.scrape import ScrapeOutcome

MINUTE = 60.0
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class ScrapeFailure(StrEnum):
    """Why a scrape of one tracker failed."""

    TIMEOUT = "timeout"  # no answer in time
    DNS = "dns"  # the tracker's name did not resolve
    REFUSED = "refused"  # connection refused, reset or unreachable
    RATE_LIMITED = "rate_limited"  # HTTP 429/503, or the tracker said to try later
    TRACKER_FAILURE = "tracker_failure"  # the tracker answered with a failure reason
    HTTP_ERROR = "http_error"  # another HTTP error status
    BAD_RESPONSE = "bad_response"  # not a valid answer: garbage, too large, wrong shape
    FORBIDDEN_ADDRESS = "forbidden_address"  # resolves only to private/loopback addresses
    UNSUPPORTED = "unsupported"  # no scrape for this URL (scheme, or no /announce path)


class ScrapeError(Exception):
    """A scrape of one tracker failed; `message` is the tracker's own failure
    reason, verbatim, when it gave one."""

    def __init__(
        self, kind: ScrapeFailure, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


_DEFAULT_SCHEDULE: Mapping[ScrapeFailure, tuple[float, float]] = MappingProxyType(
    {
        # kind: (delay after the first failure, longest delay)
        ScrapeFailure.TIMEOUT: (5 * MINUTE, 6 * HOUR),
        ScrapeFailure.DNS: (1 * HOUR, 1 * DAY),
        ScrapeFailure.REFUSED: (15 * MINUTE, 12 * HOUR),
        ScrapeFailure.RATE_LIMITED: (30 * MINUTE, 1 * DAY),
        ScrapeFailure.TRACKER_FAILURE: (1 * HOUR, 1 * DAY),
        ScrapeFailure.HTTP_ERROR: (1 * HOUR, 1 * DAY),
        ScrapeFailure.BAD_RESPONSE: (1 * HOUR, 1 * DAY),
        ScrapeFailure.FORBIDDEN_ADDRESS: (1 * DAY, 7 * DAY),
        ScrapeFailure.UNSUPPORTED: (7 * DAY, 7 * DAY),
    }
)


@dataclass(frozen=True)
class BackoffPolicy:
    """Delays between scrapes of one tracker.

    `interval` is the wait after a success (never shorter than the tracker's own
    `min_request_interval`). After the n-th consecutive failure of a kind, the wait
    is `first * 2**(n-1)`, capped; a tracker's Retry-After is honoured up to
    `max_retry_after`.
    """

    interval: float = 30 * MINUTE
    schedule: Mapping[ScrapeFailure, tuple[float, float]] = field(
        default_factory=lambda: _DEFAULT_SCHEDULE
    )
    max_retry_after: float = 7 * DAY
    jitter: float = 0.1

    def delay(
        self,
        failure: ScrapeFailure | None,
        consecutive_failures: int = 1,
        *,
        retry_after: float | None = None,
        min_interval: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait before the next scrape of this tracker."""
        if failure is None:
            base = max(self.interval, min(min_interval or 0.0, self.max_retry_after))
        else:
            first, cap = self.schedule[failure]
            exponent = max(0, min(consecutive_failures, 64) - 1)
            base = min(first * 2**exponent, cap)
            if retry_after is not None and retry_after > 0:
                base = max(base, min(retry_after, self.max_retry_after))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return base * (1 + spread)

    def next_attempt_at(
        self,
        now: datetime,
        failure: ScrapeFailure | None,
        consecutive_failures: int = 1,
        *,
        retry_after: float | None = None,
        min_interval: float | None = None,
        rng: random.Random | None = None,
    ) -> datetime:
        seconds = self.delay(
            failure,
            consecutive_failures,
            retry_after=retry_after,
            min_interval=min_interval,
            rng=rng,
        )
        return now + timedelta(seconds=seconds)


DEFAULT_POLICY = BackoffPolicy()


@dataclass(frozen=True)
class TrackerState:
    """What the instance remembers about scraping one external tracker."""

    url: str
    consecutive_failures: int = 0
    last_failure: ScrapeFailure | None = None
    #: the tracker's failure reason verbatim, or what went wrong, for people to read
    last_message: str | None = None
    #: whether the tracker answers multi-hash HTTP scrapes (None: not known yet)
    multi_scrape: bool | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    next_attempt_at: datetime | None = None

    def after(
        self,
        outcome: ScrapeOutcome,
        now: datetime,
        policy: BackoffPolicy = DEFAULT_POLICY,
        rng: random.Random | None = None,
    ) -> TrackerState:
        """The state after one scrape attempt ending in `outcome`."""
        multi = outcome.multi_scrape if outcome.multi_scrape is not None else self.multi_scrape
        error = outcome.error
        if error is None:
            return replace(
                self,
                consecutive_failures=0,
                last_failure=None,
                last_message=None,
                multi_scrape=multi,
                last_attempt_at=now,
                last_success_at=now,
                next_attempt_at=policy.next_attempt_at(
                    now, None, min_interval=outcome.min_interval, rng=rng
                ),
            )
        failures = self.consecutive_failures + 1
        return replace(
            self,
            consecutive_failures=failures,
            last_failure=error.kind,
            last_message=error.message,
            multi_scrape=multi,
            last_attempt_at=now,
            next_attempt_at=policy.next_attempt_at(
                now, error.kind, failures, retry_after=error.retry_after, rng=rng
            ),
        )
