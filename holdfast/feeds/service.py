"""Which uploads a feed lists.

Feeds are read by programs without a login (feed readers, BitTorrent clients), so
every feed lists exactly what an anonymous reader may see: approved uploads of
approved datasets, never pending, denied or removed ones, whoever asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from holdfast.catalogue.access import upload_visible
from holdfast.catalogue.models import Dataset, Status, Tag, TorrentBlob, Upload, dataset_tags
from holdfast.db import Database
from holdfast.errors import InvalidInput, NotFound

FEED_KINDS = ("uploads", "tag", "dataset", "needs-seeders")
MAX_ITEMS = 100


@dataclass
class Feed:
    kind: str
    key: str | None
    uploads: list[Upload]
    torrent_sizes: dict[int, int]
    dataset: Dataset | None = None


@dataclass
class Feeds:
    db: Database

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
                order = [
                    Upload.seeders.is_(None),
                    Upload.seeders.asc(),
                    Upload.created_at.desc(),
                    Upload.id.desc(),
                ]
            rows = list(
                s.scalars(
                    select(Upload)
                    .join(Dataset, Dataset.id == Upload.dataset_id)
                    .where(*conditions)
                    .order_by(*order)
                    .limit(limit)
                )
            )
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
