"""Moderation: the review queue, removal with tombstones, reports, the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from holdfast.accounts.models import Account, Role
from holdfast.catalogue.access import can_view, dataset_visible, upload_visible
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.db import Database
from holdfast.db.base import utcnow
from holdfast.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from holdfast.moderation.models import AuditEntry, Report, ReportKind, ReportStatus

TARGET_TYPES = ("dataset", "upload")


def record(
    session: Session,
    actor: Account | None,
    action: str,
    target_type: str,
    target_id: int,
    *,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit-log entry in the caller's transaction."""
    session.add(
        AuditEntry(
            actor_id=actor.id if actor else None,
            action=action,
            target_type=target_type,
            target_id=target_id,
            reason=reason,
            detail=detail or {},
        )
    )


def require_moderator(actor: Account | None) -> Account:
    if actor is None:
        raise NotAuthenticated("log in to moderate")
    if not actor.has_role(Role.moderator):
        raise PermissionDenied("only moderators can do this")
    return actor


def refresh_upload_counts(session: Session, datasets: Iterable[Dataset]) -> None:
    """`refresh_upload_count` for many loaded datasets, with one query."""
    by_id = {d.id: d for d in datasets}
    if not by_id:
        return
    counts = dict(
        session.execute(
            select(Upload.dataset_id, func.count(Upload.id))
            .where(Upload.dataset_id.in_(by_id), Upload.status == Status.approved.value)
            .group_by(Upload.dataset_id)
        ).all()
    )
    for dataset_id, dataset in by_id.items():
        dataset.upload_count = int(counts.get(dataset_id, 0))


def refresh_upload_count(session: Session, dataset_id: int) -> None:
    count = session.scalar(
        select(func.count(Upload.id)).where(
            Upload.dataset_id == dataset_id, Upload.status == Status.approved.value
        )
    )
    dataset = session.get(Dataset, dataset_id)
    if dataset is not None:
        dataset.upload_count = int(count or 0)


def _load(session: Session, target_type: str, ref: str | int) -> Dataset | Upload:
    """A dataset by slug or id, an upload by infohash or id."""
    from holdfast.catalogue.service import infohash_condition

    item: Dataset | Upload | None
    if target_type == "dataset":
        if isinstance(ref, int):
            item = session.get(Dataset, ref)
        else:
            item = session.scalar(select(Dataset).where(Dataset.slug == ref))
    elif target_type == "upload":
        if isinstance(ref, int):
            item = session.get(Upload, ref)
        else:
            item = session.scalar(select(Upload).where(infohash_condition(ref)))
    else:
        raise InvalidInput(f"unknown target type '{target_type}'")
    if item is None:
        raise NotFound(f"no such {target_type}")
    return item


@dataclass
class Moderation:
    db: Database

    # --- the review queue

    def queue(self, actor: Account | None, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        require_moderator(actor)
        with self.db.read() as s:
            datasets = list(
                s.scalars(
                    select(Dataset)
                    .where(Dataset.status == Status.pending.value)
                    .order_by(Dataset.created_at)
                    .offset(offset)
                    .limit(limit)
                )
            )
            uploads = list(
                s.scalars(
                    select(Upload)
                    .where(Upload.status == Status.pending.value)
                    .order_by(Upload.created_at)
                    .offset(offset)
                    .limit(limit)
                )
            )
            counts = {
                "datasets": s.scalar(
                    select(func.count(Dataset.id)).where(Dataset.status == Status.pending.value)
                )
                or 0,
                "uploads": s.scalar(
                    select(func.count(Upload.id)).where(Upload.status == Status.pending.value)
                )
                or 0,
            }
        return {"datasets": datasets, "uploads": uploads, "counts": counts}

    def decide(
        self,
        actor: Account | None,
        target_type: str,
        target: str | int,
        *,
        approve: bool,
        reason: str = "",
    ) -> Dataset | Upload:
        """Approve or deny a pending (or previously denied) item."""
        moderator = require_moderator(actor)
        if not approve and not reason.strip():
            raise InvalidInput("give a reason for denying", fields={"reason": "required"})
        with self.db.write() as s:
            item = _load(s, target_type, target)
            if item.status not in (Status.pending, Status.denied):
                raise InvalidInput(f"this {target_type} is {item.status}, not waiting for review")
            item.status = (Status.approved if approve else Status.denied).value
            item.moderation_note = reason.strip()[:2000]
            record(
                s,
                moderator,
                f"{target_type}.{'approve' if approve else 'deny'}",
                target_type,
                item.id,
                reason=reason.strip(),
            )
            if isinstance(item, Upload):
                refresh_upload_count(s, item.dataset_id)
            s.flush()
            return item

    def remove(
        self, actor: Account | None, target_type: str, target: str | int, *, reason: str
    ) -> Dataset | Upload:
        """Soft delete: the item becomes a tombstone (410) and leaves every listing."""
        moderator = require_moderator(actor)
        if not reason.strip():
            raise InvalidInput("give a reason for removing", fields={"reason": "required"})
        with self.db.write() as s:
            item = _load(s, target_type, target)
            if item.status == Status.removed:
                raise InvalidInput(f"this {target_type} is already removed")
            previous = item.status
            item.status = Status.removed.value
            item.removed_at = utcnow()
            item.moderation_note = reason.strip()[:2000]
            record(
                s,
                moderator,
                f"{target_type}.remove",
                target_type,
                item.id,
                reason=reason.strip(),
                detail={"previous_status": previous},
            )
            if isinstance(item, Upload):
                refresh_upload_count(s, item.dataset_id)
            s.flush()
            return item

    def restore(
        self, actor: Account | None, target_type: str, target: str | int
    ) -> Dataset | Upload:
        moderator = require_moderator(actor)
        with self.db.write() as s:
            item = _load(s, target_type, target)
            if item.status != Status.removed:
                raise InvalidInput(f"this {target_type} is not removed")
            item.status = Status.approved.value
            item.removed_at = None
            record(s, moderator, f"{target_type}.restore", target_type, item.id)
            if isinstance(item, Upload):
                refresh_upload_count(s, item.dataset_id)
            s.flush()
            return item

    # --- reports

    def report(
        self,
        actor: Account | None,
        target_type: str,
        target: str | int,
        *,
        kind: ReportKind,
        reason: str,
    ) -> Report:
        if actor is None:
            raise NotAuthenticated("log in to report")
        if target_type not in TARGET_TYPES:
            raise InvalidInput(f"unknown target type '{target_type}'")
        if len(reason) > 5000:
            raise InvalidInput(
                "the reason is too long", fields={"reason": "at most 5000 characters"}
            )
        with self.db.write() as s:
            item = _load(s, target_type, target)
            if not can_view(actor, item.status, item.account_id):
                raise NotFound(f"no such {target_type}")
            report = Report(
                target_type=target_type,
                target_id=item.id,
                kind=kind.value,
                reason=reason.strip(),
                account_id=actor.id,
            )
            s.add(report)
            s.flush()
            return report

    def reports(
        self,
        actor: Account | None,
        *,
        status: ReportStatus | None = ReportStatus.open,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Report], int]:
        require_moderator(actor)
        with self.db.read() as s:
            query = select(Report)
            count = select(func.count(Report.id))
            if status is not None:
                query = query.where(Report.status == status.value)
                count = count.where(Report.status == status.value)
            rows = list(s.scalars(query.order_by(Report.id.desc()).offset(offset).limit(limit)))
            return rows, int(s.scalar(count) or 0)

    def resolve_report(
        self, actor: Account | None, report_id: int, *, status: ReportStatus, resolution: str
    ) -> Report:
        moderator = require_moderator(actor)
        if status == ReportStatus.open:
            raise InvalidInput("a report is resolved or dismissed, not reopened")
        with self.db.write() as s:
            report = s.get(Report, report_id)
            if report is None:
                raise NotFound("no such report")
            if report.status != ReportStatus.open:
                raise InvalidInput("this report was already handled")
            report.status = status.value
            report.resolution = resolution.strip()[:5000]
            report.resolved_by_id = moderator.id
            report.resolved_at = utcnow()
            record(
                s,
                moderator,
                f"report.{status.value}",
                "report",
                report.id,
                reason=resolution.strip(),
                detail={"target_type": report.target_type, "target_id": report.target_id},
            )
            s.flush()
            s.refresh(report)  # load resolved_by for the caller
            return report

    # --- the audit log

    def audit_log(
        self, actor: Account | None, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[AuditEntry], int]:
        require_moderator(actor)
        with self.db.read() as s:
            rows = list(
                s.scalars(
                    select(AuditEntry).order_by(AuditEntry.id.desc()).offset(offset).limit(limit)
                )
            )
            return rows, int(s.scalar(select(func.count(AuditEntry.id))) or 0)


__all__ = ["Moderation", "dataset_visible", "record", "upload_visible"]
