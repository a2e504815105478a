"""Moderation API: the review queue, decisions, removal, reports and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from holdfast.api.deps import InstanceDep, PagingDep, RequireAccount, RequireModerator
from holdfast.api.schemas import (
    AuditOut,
    DatasetOut,
    Ok,
    PageOut,
    ReportOut,
    UploadOut,
    audit_out,
    dataset_out,
    page_out,
    report_out,
    upload_out,
)
from holdfast.catalogue.models import Dataset
from holdfast.moderation.models import ReportKind, ReportStatus

router = APIRouter(tags=["moderation"])

TargetType = Literal["dataset", "upload"]


class QueueOut(BaseModel):
    ok: bool = True
    datasets: list[DatasetOut]
    uploads: list[UploadOut]
    counts: dict[str, int]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_type: TargetType
    target: str = Field(max_length=100, description="A dataset's slug or an upload's infohash.")
    action: Literal["approve", "deny", "remove", "restore"]
    reason: str = Field(default="", max_length=2000)


class DecisionOut(BaseModel):
    ok: bool = True
    target_type: TargetType
    target: str
    status: str


class NewReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_type: TargetType
    target: str = Field(max_length=100)
    kind: ReportKind
    reason: str = Field(default="", max_length=5000)


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["resolved", "dismissed"]
    resolution: str = Field(default="", max_length=5000)


@router.get("/moderation/queue", response_model=QueueOut)
def queue(actor: RequireModerator, instance: InstanceDep, paging: PagingDep) -> QueueOut:
    """Datasets and uploads waiting for review, oldest first."""
    q = instance.moderation.queue(actor, offset=paging.offset, limit=paging.limit)
    return QueueOut(
        datasets=[dataset_out(d, instance.base_url) for d in q["datasets"]],
        uploads=[upload_out(u, instance.base_url) for u in q["uploads"]],
        counts=q["counts"],
    )


@router.post("/moderation/decisions", response_model=DecisionOut)
def decide(body: Decision, actor: RequireModerator, instance: InstanceDep) -> DecisionOut:
    """Approve, deny (with a reason), remove (soft delete, with a reason) or restore an item."""
    m = instance.moderation
    if body.action in ("approve", "deny"):
        item = m.decide(
            actor,
            body.target_type,
            body.target,
            approve=body.action == "approve",
            reason=body.reason,
        )
    elif body.action == "remove":
        item = m.remove(actor, body.target_type, body.target, reason=body.reason)
    else:
        item = m.restore(actor, body.target_type, body.target)
    ref = item.slug if isinstance(item, Dataset) else item.infohash
    return DecisionOut(target_type=body.target_type, target=ref, status=item.status)


@router.post("/reports", response_model=Ok, status_code=201)
def report(body: NewReport, actor: RequireAccount, instance: InstanceDep) -> Ok:
    """Report a dataset or upload to the moderators."""
    instance.moderation.report(
        actor, body.target_type, body.target, kind=body.kind, reason=body.reason
    )
    return Ok()


@router.get("/moderation/reports", response_model=PageOut[ReportOut])
def reports(
    actor: RequireModerator,
    instance: InstanceDep,
    paging: PagingDep,
    status: Annotated[ReportStatus | None, Query()] = ReportStatus.open,
) -> dict[str, Any]:
    rows, total = instance.moderation.reports(
        actor, status=status, offset=paging.offset, limit=paging.limit
    )
    return page_out([report_out(r) for r in rows], total, paging.offset, paging.limit)


@router.post("/moderation/reports/{report_id}", response_model=ReportOut)
def resolve_report(
    report_id: int, body: Resolution, actor: RequireModerator, instance: InstanceDep
) -> ReportOut:
    row = instance.moderation.resolve_report(
        actor, report_id, status=ReportStatus(body.status), resolution=body.resolution
    )
    return report_out(row)


@router.get("/moderation/audit", response_model=PageOut[AuditOut])
def audit(actor: RequireModerator, instance: InstanceDep, paging: PagingDep) -> dict[str, Any]:
    rows, total = instance.moderation.audit_log(actor, offset=paging.offset, limit=paging.limit)
    return page_out([audit_out(e) for e in rows], total, paging.offset, paging.limit)
