"""Names and links for the things reports and audit entries point at (by id).

Only moderators see reports and the audit log, and moderators may see every item,
so these lookups need no visibility filter; they are never used on public pages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from holdfast.accounts.models import Account
from holdfast.catalogue.models import Dataset, Upload
from holdfast.db import Database
from holdfast.moderation.models import Report


@dataclass(frozen=True)
class Target:
    label: str
    url: str | None
    status: str = ""


def describe_targets(
    db: Database, refs: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], Target]:
    """(type, id) -> Target, in one query per type."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for kind, ident in refs:
        wanted[kind].add(ident)
    found: dict[tuple[str, int], Target] = {}
    with db.read() as s:
        if wanted["dataset"]:
            for d_id, slug, title, status in s.execute(
                select(Dataset.id, Dataset.slug, Dataset.title, Dataset.status).where(
                    Dataset.id.in_(wanted["dataset"])
                )
            ):
                found[("dataset", d_id)] = Target(title, f"/datasets/{slug}", status)
        if wanted["upload"]:
            for u_id, name, v1, v2, status in s.execute(
                select(
                    Upload.id, Upload.name, Upload.infohash_v1, Upload.infohash_v2, Upload.status
                ).where(Upload.id.in_(wanted["upload"]))
            ):
                found[("upload", u_id)] = Target(name, f"/uploads/{v2 or v1}", status)
        if wanted["account"]:
            for a_id, name in s.execute(
                select(Account.id, Account.name).where(Account.id.in_(wanted["account"]))
            ):
                found[("account", a_id)] = Target(name, f"/accounts/{name}")
        if wanted["report"]:
            for r_id, kind in s.execute(
                select(Report.id, Report.kind).where(Report.id.in_(wanted["report"]))
            ):
                found[("report", r_id)] = Target(f"report #{r_id} ({kind})", None)
    for ident in wanted.get("instance", ()):
        found[("instance", ident)] = Target("instance settings", "/admin#settings")
    for kind, ids in wanted.items():
        for ident in ids:
            found.setdefault((kind, ident), Target(f"{kind} #{ident} (gone)", None))
    return found
