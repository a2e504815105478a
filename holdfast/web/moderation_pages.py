"""Moderation pages: the review queue, decisions, reports and the audit log.

Decisions are plain forms that redirect back; with HTMX the same form swaps just
the decided item, rendered from the same template.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from holdfast.api.deps import InstanceDep
from holdfast.catalogue.models import Dataset, Upload
from holdfast.errors import InvalidInput
from holdfast.moderation.models import ReportKind, ReportStatus
from holdfast.web.forms import (
    AccountDep,
    ModeratorDep,
    PagesDep,
    VisitorDep,
    render_page,
    safe_next,
    see_other,
)
from holdfast.web.lookups import describe_targets

router = APIRouter(include_in_schema=False)

PageNumber = Annotated[int, Query(ge=1, le=100_000)]
PER_PAGE = 25
TargetType = Annotated[str, Form(pattern="^(dataset|upload)$")]
Reason = Annotated[str, Form(max_length=2000)]


@router.get("/moderation")
def queue_page(
    actor: ModeratorDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
) -> Response:
    queue = instance.moderation.queue(visitor.account, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    counts = queue["counts"]
    longest = max(counts["datasets"], counts["uploads"])
    paging = {"total": longest, "offset": (page - 1) * PER_PAGE, "limit": PER_PAGE}
    return render_page(
        request,
        pages,
        visitor,
        "moderation_queue.html",
        {
            "queue": queue,
            "paging": paging,
            "params": {},
            "decided": {},
            "item_errors": {},
        },
    )


def _decide(
    instance: Any, actor: Any, target_type: str, target: str, action: str, reason: str
) -> Dataset | Upload:
    m = instance.moderation
    if action in ("approve", "deny"):
        result: Dataset | Upload = m.decide(
            actor, target_type, target, approve=action == "approve", reason=reason
        )
        return result
    if action == "remove":
        return m.remove(actor, target_type, target, reason=reason)
    if action == "restore":
        return m.restore(actor, target_type, target)
    raise InvalidInput("the action must be approve, deny, remove or restore")


@router.post("/moderation/decide")
def decide(
    actor: ModeratorDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    target_type: TargetType,
    target: Annotated[str, Form(max_length=100)],
    action: Annotated[str, Form(pattern="^(approve|deny|remove|restore)$")],
    reason: Reason = "",
    next: Annotated[str, Form(max_length=2000)] = "/moderation",
) -> Response:
    """Approve, deny, remove or restore a dataset or upload (moderators only)."""
    htmx = request.headers.get("hx-request") == "true"
    try:
        item = _decide(instance, actor, target_type, target, action, reason)
    except InvalidInput as exc:
        if not htmx:
            raise
        error = exc.fields.get("reason") or exc.message
        return _queue_item(request, pages, visitor, instance, target_type, target, error=error)
    if htmx:
        return render_page(
            request,
            pages,
            visitor,
            "_decided.html",
            {"item": item, "target_type": target_type, "action": action},
        )
    return see_other(safe_next(next))


def _queue_item(
    request: Request,
    pages: Any,
    visitor: Any,
    instance: Any,
    target_type: str,
    target: str,
    *,
    error: str,
) -> Response:
    getter = (
        instance.catalogue.get_dataset
        if target_type == "dataset"
        else instance.catalogue.get_upload
    )
    item = getter(visitor.account, target)
    return render_page(
        request,
        pages,
        visitor,
        "_queue_item.html",
        {"item": item, "target_type": target_type, "item_error": error},
        status=422,
    )


@router.post("/report")
def report_submit(
    actor: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    target_type: TargetType,
    target: Annotated[str, Form(max_length=100)],
    kind: Annotated[ReportKind, Form()],
    reason: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Report a dataset or upload to the moderators (any logged-in account)."""
    instance.moderation.report(actor, target_type, target, kind=kind, reason=reason)
    back = f"/datasets/{target}" if target_type == "dataset" else f"/uploads/{target}"
    return render_page(request, pages, visitor, "reported.html", {"back": back})


@router.get("/moderation/reports")
def reports_page(
    actor: ModeratorDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    status: Annotated[str, Query(pattern="^(open|resolved|dismissed|all)$")] = "open",
    page: PageNumber = 1,
) -> Response:
    rows, total = instance.moderation.reports(
        actor,
        status=None if status == "all" else ReportStatus(status),
        offset=(page - 1) * PER_PAGE,
        limit=PER_PAGE,
    )
    targets = describe_targets(instance.db, [(r.target_type, r.target_id) for r in rows])
    return render_page(
        request,
        pages,
        visitor,
        "moderation_reports.html",
        {
            "reports": rows,
            "targets": targets,
            "paging": {"total": total, "offset": (page - 1) * PER_PAGE, "limit": PER_PAGE},
            "params": {"status": status},
            "status": status,
        },
    )


@router.post("/moderation/reports/{report_id}")
def resolve_report(
    report_id: Annotated[int, Path(ge=1)],
    actor: ModeratorDep,
    instance: InstanceDep,
    status: Annotated[str, Form(pattern="^(resolved|dismissed)$")],
    resolution: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    instance.moderation.resolve_report(
        actor, report_id, status=ReportStatus(status), resolution=resolution
    )
    return see_other("/moderation/reports")


@router.get("/moderation/audit")
def audit_page(
    actor: ModeratorDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
) -> Response:
    rows, total = instance.moderation.audit_log(actor, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    targets = describe_targets(instance.db, [(e.target_type, e.target_id) for e in rows])
    return render_page(
        request,
        pages,
        visitor,
        "moderation_audit.html",
        {
            "entries": rows,
            "targets": targets,
            "paging": {"total": total, "offset": (page - 1) * PER_PAGE, "limit": PER_PAGE},
            "params": {},
        },
    )
