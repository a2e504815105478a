"""Administration: accounts and their roles, and the instance's settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from holdfast.accounts.models import Role
from holdfast.api.deps import InstanceDep
from holdfast.errors import HoldfastError, PermissionDenied
from holdfast.instance import Instance
from holdfast.web.forms import AdminDep, PagesDep, Visitor, VisitorDep, render_page, see_other
from holdfast.web.rendering import Pages

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
ROLES = [(r.value, r.value) for r in Role]
# Settings shown to admins; secrets and paths to secrets are never shown.
SHOWN_SETTINGS = (
    "instance_name",
    "instance_title",
    "public_url",
    "open_registration",
    "session_days",
    "auth_rate_limit",
    "auth_rate_window_seconds",
    "max_torrent_bytes",
    "production",
    "allow_private_addresses",
    "run_jobs",
    "tracker",
    "tracker_open",
    "scrape_interval_minutes",
    "seeder",
    "seeder_upload_rate",
    "webseed",
    "federation",
    "federation_mode",
    "federation_auto_accept",
)


def _admin_page(
    request: Request,
    visitor: Visitor,
    pages: Pages,
    instance: Instance,
    page: int,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    accounts, total = instance.accounts.list(offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    settings = instance.settings
    shown: list[tuple[str, Any, str]] = [
        (name, getattr(settings, name), type(settings).model_fields[name].description or "")
        for name in SHOWN_SETTINGS
    ]
    return render_page(
        request,
        pages,
        visitor,
        "admin.html",
        {
            "accounts": accounts,
            "paging": {"total": total, "offset": (page - 1) * PER_PAGE, "limit": PER_PAGE},
            "params": {},
            "page": page,
            "roles": ROLES,
            "settings": shown,
            "account_errors": errors or {},
        },
        status=status,
    )


@router.get("/admin")
def admin_page(
    actor: AdminDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    return _admin_page(request, visitor, pages, instance, page)


@router.post("/admin/accounts/{name}")
def change_account(
    name: Annotated[str, Path(max_length=64)],
    actor: AdminDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    role: Annotated[Role, Form()],
    trusted: Annotated[bool, Form()] = False,
    disabled: Annotated[bool, Form()] = False,
    page: Annotated[int, Form(ge=1, le=100_000)] = 1,
) -> Response:
    """Change an account's role, trust and disabled state (admins only; audited)."""
    try:
        instance.accounts.set_role(actor, name, role=role, trusted=trusted, disabled=disabled)
    except PermissionDenied:
        raise
    except HoldfastError as exc:
        return _admin_page(
            request,
            visitor,
            pages,
            instance,
            page,
            errors={name: exc.message},
            status=exc.status,
        )
    return see_other(f"/admin?page={page}#account-{name}")
