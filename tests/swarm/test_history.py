"""The swarm history stays bounded: old samples are thinned out, recent ones kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from holdfast.app import create_app
from holdfast.db.base import utcnow
from holdfast.swarm import history
from holdfast.swarm.models import SwarmSample
from tests.instance.helpers import make_dataset, make_upload, make_user


def test_prune_keeps_recent_samples_and_one_per_hour_or_day_after(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    app = create_app(make_settings(tracker=False, federation=False))
    instance = app.state.instance
    owner = make_user(instance, "owner")
    dataset = make_dataset(instance, owner)
    uploads = [make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(2)]
    now = utcnow().replace(hour=12, minute=59, second=0, microsecond=0)
    ages = (
        [timedelta(minutes=10 * i) for i in range(12)]  # recent: all kept
        + [timedelta(days=3, minutes=10 * i) for i in range(6)]  # one hour's worth: 1 kept
        + [timedelta(days=40, hours=i) for i in range(3)]  # same day: 1 kept
        + [timedelta(days=800)]  # too old: dropped
    )
    with instance.db.write() as s:
        for upload in uploads:
            for n, age in enumerate(ages):
                s.add(
                    SwarmSample(upload_id=upload.id, measured_at=now - age, seeders=n, leechers=1)
                )
    deleted = history.prune(instance.db, now)
    assert deleted == 2 * (5 + 2 + 1)
    assert history.prune(instance.db, now) == 0  # nothing more to thin out
    with instance.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SwarmSample)) == 2 * 14
    points = history.samples(instance.db, uploads[0].id, now - timedelta(days=1000))
    assert len(points) == 14
    assert points == sorted(points)
    assert points[-1] == (now, 0, 1)
    recent = history.samples(instance.db, uploads[0].id, now - timedelta(hours=1))
    assert [seeders for _at, seeders, _l in recent] == [6, 5, 4, 3, 2, 1, 0]
    instance.db.dispose()
