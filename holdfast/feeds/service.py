"""Which uploads a feed lists.

Feeds are read by programs without a login (feed readers, BitTorrent clients), so
every feed lists exactly what an anonymous reader may see: approved uploads of
approved datasets, never pending, denied or removed ones, whoever asks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from holdfast.catalogue.access import upload_visible
from holdfast.catalogue.models import Dataset, Status, Tag, TorrentBlob, Upload, dataset_tags
from holdfast.db import Database
from holdfast.errors import InvalidInput, NotFound

FEED_KINDS = ("uploads", "tag", "dataset", "needs-seeders")
MAX_ITEMS = 100
# Ranking every upload by seeders is a sort over the whole table; swarm counts change
# only when trackers are scraped, so the ranking (ids only) is kept this long.
RANKING_SECONDS = 60.0
# Ids ranked beyond the limit, so items removed since the ranking still leave a full list.
RANKING_SPARE = 25
# Newest-first lists read the creation-date index a window at a time, then filter.
NEWEST_WINDOW = 200
NEWEST_ROUNDS = 10


@dataclass
class Feed:
    kind: str
    key: str | None
    uploads: list[Upload]
    torrent_sizes: dict[int, int]
    dataset: Dataset | None = None


@dataclass
class PublicCounts:
    datasets: int
    uploads: int


@dataclass
class Feeds:
    db: Database
    _rankings: dict[int, tuple[float, list[int]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _newest_ids(self, s: Session, conditions: list[Any], limit: int) -> list[int] | None:
        """Ids of the newest uploads meeting `conditions`, read from the creation-date
        index a window at a time; None when that finds too few (then a plain sorted
        query is cheaper).

        Filtering first would make the database sort every public upload by date just
        to keep the first few; most uploads are public, so a few windows suffice.
        """
        found: list[int] = []
        after: tuple[Any, int] | None = None
        for _ in range(NEWEST_ROUNDS):
            window = select(Upload.id, Upload.created_at).order_by(
                Upload.created_at.desc(), Upload.id.desc()
            )
            if after is not None:
                window = window.where(
                    or_(
                        Upload.created_at < after[0],
                        and_(Upload.created_at == after[0], Upload.id < after[1]),
                    )
                )
            batch = s.execute(window.limit(NEWEST_WINDOW)).all()
            if not batch:
                return found
            ids = [row.id for row in batch]
            keep = set(
                s.scalars(
                    select(Upload.id)
                    .join(Dataset, Dataset.id == Upload.dataset_id)
                    .where(*conditions, Upload.id.in_(ids))
                )
            )
            found += [i for i in ids if i in keep]
            if len(found) >= limit or len(batch) < NEWEST_WINDOW:
                return found[:limit]
            after = (batch[-1].created_at, batch[-1].id)
        return None

    def counts(self) -> PublicCounts:
        """How many datasets and uploads the public can see.

        Each dataset keeps the number of its approved uploads, so summing those over
        approved datasets avoids joining every upload to its dataset.
        """
        with self.db.read() as s:
            datasets, uploads = s.execute(
                select(
                    func.count(Dataset.id), func.coalesce(func.sum(Dataset.upload_count), 0)
                ).where(Dataset.status == Status.approved.value)
            ).one()
        return PublicCounts(int(datasets), int(uploads))

    def _seeders_ranking(self, limit: int) -> list[int]:
        """Ids of public uploads, fewest seeders first (unmeasured last); cached."""
        now = time.monotonic()
        with self._lock:
            cached = self._rankings.get(limit)
            if cached is not None and now - cached[0] < RANKING_SECONDS:
                return cached[1]
        with self.db.read() as s:
            ids = list(
                s.scalars(
                    select(Upload.id)
                    .join(Dataset, Dataset.id == Upload.dataset_id)
                    .where(upload_visible(None), Upload.status != Status.removed.value)
                    .order_by(
                        Upload.seeders.is_(None),
                        Upload.seeders.asc(),
                        Upload.created_at.desc(),
                        Upload.id.desc(),
                    )
                    .limit(limit + RANKING_SPARE)
                )
            )
        with self._lock:
            self._rankings[limit] = (now, ids)
        return ids

    def uploads(
        self,
        kind: str,
        key: str | None = None,
        *,
        limit: int = 50,
    ) -> Feed:
        """The newest uploads overall, of a tag or of a dataset; or those that need
        seeders, fewest seeders first (uploads whose swarm was never measured last)."""
        if kind not in FEED_KINDS:
            raise InvalidInput(f"no feed kind '{kind}'")
        if not 1 <= limit <= MAX_ITEMS:
            raise InvalidInput(f"a feed lists 1 to {MAX_ITEMS} items")
        conditions: list[Any] = [
            upload_visible(None),
            Upload.status != Status.removed.value,
            Dataset.status != Status.removed.value,
        ]
        order: list[Any] = [Upload.created_at.desc(), Upload.id.desc()]
        dataset: Dataset | None = None
        with self.db.read() as s:
            if kind == "tag":
                if not key:
                    raise NotFound("no such tag")
                conditions.append(
                    Dataset.id.in_(
                        select(dataset_tags.c.dataset_id)
                        .join(Tag, Tag.id == dataset_tags.c.tag_id)
                        .where(Tag.name == key)
                    )
                )
            elif kind == "dataset":
                dataset = s.scalar(select(Dataset).where(Dataset.slug == (key or "")))
                if dataset is None or dataset.status != Status.approved:
                    raise NotFound(f"no dataset '{key}'")
                conditions.append(Upload.dataset_id == dataset.id)
            elif kind == "needs-seeders":
                ranking = self._seeders_ranking(limit)
                # The ranking may be a minute old: the visibility conditions are applied
                # again here, so nothing removed or hidden since then is listed.
                conditions.append(Upload.id.in_(ranking))
                order = []
            query = (
                select(Upload)
                .join(Dataset, Dataset.id == Upload.dataset_id)
                .where(*conditions)
                .order_by(*order)
            )
            if kind != "needs-seeders":
                query = query.limit(limit)
            newest = self._newest_ids(s, conditions, limit) if kind in ("uploads", "tag") else None
            if newest is not None:
                query = query.where(Upload.id.in_(newest))
            rows = list(s.scalars(query))
            if kind == "needs-seeders":
                position = {upload_id: i for i, upload_id in enumerate(ranking)}
                rows = sorted(rows, key=lambda u: position[u.id])[:limit]
            sizes: dict[int, int] = {}
            if rows:
                sizes = {
                    upload_id: int(size or 0)
                    for upload_id, size in s.execute(
                        select(TorrentBlob.upload_id, func.length(TorrentBlob.data)).where(
                            TorrentBlob.upload_id.in_([u.id for u in rows])
                        )
                    )
                }
        return Feed(kind, key, rows, sizes, dataset)
