"""What the instance remembers about swarms: per-tracker state and a bounded history.

- `ScrapeTracker`: one row per external tracker URL: when to scrape it next and why
  (the backoff of `backoff.TrackerState`), and whether it answers multi-hash scrapes.
- `SwarmTrackerState`: one row per (upload, tracker): that tracker's last counts for
  the upload and, when it failed, the tracker's own failure reason and the kind of
  error. The embedded tracker has a row of its own under the URL `EMBEDDED`.
- `SwarmSample`: the upload's counts over time (what the catalogue showed), thinned
  out as samples age (see `history.prune`).

The catalogue's `Upload.seeders/leechers/completed` is the largest count any
tracker reports: clients announce to several trackers, so the counts overlap and
adding them up would count the same peers more than once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from holdfast.db.base import Base, utcnow

# The URL under which the embedded tracker's own counts are kept.
EMBEDDED = "embedded"

MAX_URL_LENGTH = 2048


class SampleSource:
    TRACKER = "tracker"  # the embedded tracker's counts changed
    SCRAPE = "scrape"  # an external tracker was scraped


class ScrapeTracker(Base):
    __tablename__ = "scrape_trackers"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH), unique=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_failure: Mapped[str | None] = mapped_column(String(32), default=None)
    last_message: Mapped[str | None] = mapped_column(Text, default=None)
    multi_scrape: Mapped[bool | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)


class SwarmTrackerState(Base):
    __tablename__ = "swarm_tracker_states"
    __table_args__ = (Index("ix_swarm_tracker_states_upload_url", "upload_id", "url", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    last_scrape_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    seeders: Mapped[int | None] = mapped_column(default=None)
    leechers: Mapped[int | None] = mapped_column(default=None)
    completed: Mapped[int | None] = mapped_column(default=None)
    #: the tracker's own failure reason (verbatim), or what went wrong
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    #: a `backoff.ScrapeFailure` value, None after a success
    error_kind: Mapped[str | None] = mapped_column(String(32), default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)


class SwarmSample(Base):
    __tablename__ = "swarm_samples"
    __table_args__ = (Index("ix_swarm_samples_upload_time", "upload_id", "measured_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    measured_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    seeders: Mapped[int] = mapped_column(default=0)
    leechers: Mapped[int] = mapped_column(default=0)
    completed: Mapped[int] = mapped_column(default=0)
    source: Mapped[str] = mapped_column(String(16), default=SampleSource.TRACKER)
