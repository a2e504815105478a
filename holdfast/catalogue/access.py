"""Who may see and change what. Every query for catalogue items goes through here.

Approved items are public. Pending and denied items are visible to their submitter and
to moderators. Removed items leave a tombstone (410 Gone) for everyone but moderators.
An upload is public only when its dataset is public too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, true

from holdfast.accounts.models import Account, Role
from holdfast.catalogue.models import Dataset, Status, Upload


def is_moderator(viewer: Account | None) -> bool:
    return viewer is not None and viewer.has_role(Role.moderator)


def can_view(viewer: Account | None, status: str, owner_id: int | None) -> bool:
    if status == Status.approved:
        return True
    if viewer is None or viewer.disabled_at is not None:
        return False
    if is_moderator(viewer):
        return True
    return status in (Status.pending, Status.denied) and owner_id == viewer.id


def can_edit(viewer: Account | None, status: str, owner_id: int | None) -> bool:
    if viewer is None or viewer.disabled_at is not None or status == Status.removed:
        return False
    return is_moderator(viewer) or (owner_id is not None and owner_id == viewer.id)


def visible_condition(model: Any, viewer: Account | None) -> ColumnElement[bool]:
    if is_moderator(viewer):
        return true()
    public = model.status == Status.approved.value
    if viewer is None or viewer.disabled_at is not None:
        return public
    own = and_(
        model.account_id == viewer.id,
        model.status.in_([Status.pending.value, Status.denied.value]),
    )
    return or_(public, own)


def dataset_visible(viewer: Account | None) -> ColumnElement[bool]:
    """SQL condition: datasets this viewer may see."""
    return visible_condition(Dataset, viewer)


def upload_visible(viewer: Account | None) -> ColumnElement[bool]:
    """SQL condition: uploads this viewer may see (the query must join Dataset)."""
    return and_(visible_condition(Upload, viewer), visible_condition(Dataset, viewer))


__all__ = [
    "can_edit",
    "can_view",
    "dataset_visible",
    "is_moderator",
    "upload_visible",
    "visible_condition",
]
