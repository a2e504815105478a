"""Administration: accounts and their roles, and the instance's settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from holdfast.accounts.instance_values import values_of
from holdfast.accounts.models import Role
from holdfast.api.deps import InstanceDep
from holdfast.errors import HoldfastError, PermissionDenied
from holdfast.instance import Instance
from holdfast.web.forms import AdminDep, PagesDep, Visitor, VisitorDep, render_page, see_other
from holdfast.web.rendering import Pages

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
ROLES = [(r.value, r.value) for r in Role]
# Start-up settings shown read-only; secrets and paths to secrets are never shown. The
# run-time settings (holdfast.accounts.instance_values.EDITABLE) have their own form.
SHOWN_SETTINGS = (
    "instance_name",
    "public_url",
    "session_days",
    "auth_rate_limit",
    "auth_rate_window_seconds",
    "max_torrent_bytes",
    "production",
    "allow_private_addresses",
    "run_jobs",
    "job_process",
    "tracker",
    "tracker_open",
    "scrape_interval_minutes",
    "seeder",
    "seeder_upload_rate",
    "webseed",
    "federation",
    "federation_mode",
)
# Generous bounds on what the form may post; the real limits are checked by
# clean_value, whose messages are shown next to the field.
TextField = Annotated[str, Form(max_length=1_000)]
MarkdownField = Annotated[str, Form(max_length=50_000)]
FlagField = Annotated[str, Form(max_length=10)]


def _admin_page(
    request: Request,
    visitor: Visitor,
    pages: Pages,
    instance: Instance,
    page: int,
    *,
    errors: dict[str, str] | None = None,
    setting_errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    accounts, total = instance.accounts.list(offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    settings = instance.settings
    shown: list[tuple[str, Any, str]] = [
        (name, getattr(settings, name), type(settings).model_fields[name].description or "")
        for name in SHOWN_SETTINGS
    ]
    editable = values_of(instance).shown()
    values = {item.editable.name: item.value for item in editable}
    values.update(submitted or {})
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
            "editable": editable,
            "values": values,
            "errors": setting_errors or {},
            "notice": notice,
            "account_errors": errors or {},
        },
        status=status,
    )


NOTICES = {"saved": "Settings saved.", "unchanged": "Nothing changed.", "reset": "Setting reset."}


@router.get("/admin")
def admin_page(
    actor: AdminDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return _admin_page(request, visitor, pages, instance, page, notice=NOTICES.get(done, ""))


@router.post("/admin/settings")
def change_settings(
    actor: AdminDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    instance_title: TextField = "",
    instance_description: MarkdownField = "",
    open_registration: FlagField = "",
    federation_auto_accept: FlagField = "",
) -> Response:
    """Store the run-time settings (admins only; audited). A checkbox left unticked is
    posted as nothing, so an absent flag means off."""
    submitted = {
        "instance_title": instance_title,
        "instance_description": instance_description,
        "open_registration": open_registration,
        "federation_auto_accept": federation_auto_accept,
    }
    try:
        changed = values_of(instance).set(actor, submitted)
    except PermissionDenied:
        raise
    except HoldfastError as exc:
        return _admin_page(
            request,
            visitor,
            pages,
            instance,
            1,
            setting_errors=exc.fields or {"settings": exc.message},
            submitted=submitted,
            status=exc.status,
        )
    return see_other(f"/admin?done={'saved' if changed else 'unchanged'}#settings")


@router.post("/admin/settings/reset")
def reset_setting(
    actor: AdminDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    setting: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Forget a run-time setting's stored value: the start-up setting applies again."""
    try:
        values_of(instance).reset(actor, setting)
    except PermissionDenied:
        raise
    except HoldfastError as exc:
        return _admin_page(
            request,
            visitor,
            pages,
            instance,
            1,
            setting_errors={"settings": exc.message},
            status=exc.status,
        )
    return see_other(f"/admin?done=reset#setting-{setting}")


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
