"""Instance settings an admin changes while the server runs.

Start-up settings (HOLDFAST_* variables, holdfast.toml) are the defaults; a value an
admin stores (one `InstanceValue` row per setting, its value as JSON) overrides its
default until it is reset. Readers ask `values_of(instance)` for the effective value.

Values are cached for a few seconds: a change made in this process is seen at once;
one made by another process sharing the database (a worker, a second server) within
`CACHE_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from holdfast.accounts.models import Account, InstanceValue, Role
from holdfast.catalogue.text import render_markdown
from holdfast.db import Database
from holdfast.errors import InvalidInput, NotAuthenticated, PermissionDenied
from holdfast.settings import Settings

if TYPE_CHECKING:
    from holdfast.instance import Instance

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
KEY_PREFIX = "setting:"
SERVICE_KEY = "instance_values"
# Audit entries of these changes: target_type "instance", target_id 0 (there is one).
AUDIT_TARGET = ("instance", 0)


@dataclass(frozen=True)
class Editable:
    """One setting an admin may change at run time."""

    name: str
    kind: Literal["text", "markdown", "flag"]
    label: str
    max_length: int = 0


EDITABLE: dict[str, Editable] = {
    e.name: e
    for e in (
        Editable("instance_title", "text", "Title", max_length=120),
        Editable("instance_description", "markdown", "Description", max_length=5000),
        Editable("open_registration", "flag", "Open registration"),
        Editable("federation_auto_accept", "flag", "Accept follows from peers automatically"),
    )
}


@dataclass(frozen=True)
class Effective:
    """The effective values at one moment, and the description rendered once."""

    values: dict[str, Any]
    stored: dict[str, tuple[Any, datetime]]
    _html: dict[str, Markup] = field(default_factory=dict, compare=False)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def instance_title(self) -> str:
        return str(self.values["instance_title"])

    @property
    def instance_description(self) -> str:
        return str(self.values["instance_description"])

    @property
    def open_registration(self) -> bool:
        return bool(self.values["open_registration"])

    @property
    def federation_auto_accept(self) -> bool:
        return bool(self.values["federation_auto_accept"])

    @property
    def description_html(self) -> Markup:
        html = self._html.get("description")
        if html is None:
            html = Markup(render_markdown(self.instance_description))  # noqa: S704 - sanitised
            self._html["description"] = html
        return html


@dataclass(frozen=True)
class Shown:
    """A setting as the admin page shows it."""

    editable: Editable
    value: Any
    default: Any
    stored: bool
    updated_at: datetime | None
    description: str

    @property
    def source(self) -> str:
        return "set by an admin" if self.stored else "start-up setting"


def clean_value(editable: Editable, raw: Any) -> Any:
    """A submitted value checked and normalised, or InvalidInput naming the field."""
    name = editable.name
    if editable.kind == "flag":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "on", "1", "yes"):
            return True
        if text in ("false", "off", "0", "no", ""):
            return False
        raise InvalidInput(f"{name}: choose on or off", fields={name: "choose on or off"})
    if not isinstance(raw, str):
        raise InvalidInput(f"{name}: must be text", fields={name: "must be text"})
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if editable.kind == "text":
        text = " ".join(text.split())
        if not text:
            raise InvalidInput(f"{name} is required", fields={name: "required"})
    if len(text) > editable.max_length:
        message = f"at most {editable.max_length} characters"
        raise InvalidInput(f"{name}: {message}", fields={name: message})
    allowed = "\n\t" if editable.kind == "markdown" else ""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") and c not in allowed for c in text):
        message = "control and invisible formatting characters are not allowed"
        raise InvalidInput(f"{name}: {message}", fields={name: message})
    return text


def _require_admin(actor: Account | None) -> Account:
    if actor is None:
        raise NotAuthenticated("log in to change the instance's settings")
    if not actor.has_role(Role.admin):
        raise PermissionDenied("only admins can change the instance's settings")
    return actor


class InstanceValues:
    """Get, set and reset the run-time settings of one instance."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.settings = settings
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cached: tuple[float, Effective] | None = None
        self._lock = threading.Lock()

    def default(self, name: str) -> Any:
        return getattr(self.settings, EDITABLE[name].name)

    def current(self) -> Effective:
        """The effective values, from the cache while it is fresh."""
        cached = self._cached
        now = self.clock()
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        with self._lock:
            cached = self._cached
            if cached is not None and self.clock() - cached[0] < self.cache_seconds:
                return cached[1]
            try:
                effective = self._load()
            except SQLAlchemyError:
                # Pages (error pages among them) still render when the database is
                # unreachable: with the last values read, or the start-up ones.
                log.exception("could not read the instance's run-time settings")
                return cached[1] if cached is not None else Effective(self._defaults(), {})
            self._cached = (now, effective)
            return effective

    def get(self, name: str) -> Any:
        if name not in EDITABLE:
            raise KeyError(name)
        return self.current()[name]

    def invalidate(self) -> None:
        self._cached = None

    def _load(self) -> Effective:
        keys = [KEY_PREFIX + name for name in EDITABLE]
        stored: dict[str, tuple[Any, datetime]] = {}
        with self.db.read() as s:
            for row in s.scalars(select(InstanceValue).where(InstanceValue.key.in_(keys))):
                name = row.key.removeprefix(KEY_PREFIX)
                try:
                    value = clean_value(EDITABLE[name], json.loads(row.value))
                except (ValueError, InvalidInput):
                    continue  # an unreadable row falls back to the default
                stored[name] = (value, row.updated_at)
        values = self._defaults()
        values.update({name: value for name, (value, _at) in stored.items()})
        return Effective(values=values, stored=stored)

    def _defaults(self) -> dict[str, Any]:
        return {name: self.default(name) for name in EDITABLE}

    def shown(self) -> list[Shown]:
        """Every editable setting with its value, default and where the value comes from."""
        effective = self._load()  # the admin page reads the database, not the cache
        self._cached = (self.clock(), effective)
        fields = type(self.settings).model_fields
        return [
            Shown(
                editable=editable,
                value=effective[name],
                default=self.default(name),
                stored=name in effective.stored,
                updated_at=effective.stored[name][1] if name in effective.stored else None,
                description=fields[name].description or "",
            )
            for name, editable in EDITABLE.items()
        ]

    def set(self, actor: Account | None, changes: dict[str, Any]) -> dict[str, Any]:
        """Store the given values (all checked before any is stored); audited.

        Only values that differ from the effective ones are stored, so saving the whole
        form leaves the settings nobody touched on their start-up defaults. Returns the
        values that changed.
        """
        from holdfast.moderation.service import record

        actor = _require_admin(actor)
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise InvalidInput(f"no run-time setting named {', '.join(unknown)}")
        cleaned: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, raw in changes.items():
            try:
                cleaned[name] = clean_value(EDITABLE[name], raw)
            except InvalidInput as exc:
                problems.update(exc.fields)
        if problems:
            raise InvalidInput("some settings are invalid", fields=problems)
        changed: dict[str, Any] = {}
        with self.db.write() as s:
            for name, value in cleaned.items():
                key = KEY_PREFIX + name
                row = s.get(InstanceValue, key)
                if row is not None:
                    try:
                        before = json.loads(row.value)
                    except ValueError:
                        before = None
                    if before == value:
                        continue
                else:
                    before = self.default(name)
                    if before == value:
                        continue
                if row is None:
                    s.add(InstanceValue(key=key, value=json.dumps(value)))
                else:
                    row.value = json.dumps(value)
                changed[name] = value
                record(
                    s,
                    actor,
                    "setting.update",
                    *AUDIT_TARGET,
                    detail={"setting": name, "before": before, "after": value},
                )
        self.invalidate()
        return changed

    def reset(self, actor: Account | None, name: str) -> bool:
        """Forget the stored value, so the start-up setting applies again; audited.

        Returns whether there was a stored value.
        """
        from holdfast.moderation.service import record

        actor = _require_admin(actor)
        if name not in EDITABLE:
            raise InvalidInput(f"no run-time setting named {name}", fields={"setting": "unknown"})
        with self.db.write() as s:
            row = s.get(InstanceValue, KEY_PREFIX + name)
            if row is None:
                return False
            try:
                before = json.loads(row.value)
            except ValueError:
                before = None
            s.delete(row)
            record(
                s,
                actor,
                "setting.reset",
                *AUDIT_TARGET,
                detail={"setting": name, "before": before, "after": self.default(name)},
            )
        self.invalidate()
        return True


def values_of(instance: Instance) -> InstanceValues:
    """The run-time settings of an instance (one service per instance, made on first use)."""
    found = instance.services.get(SERVICE_KEY)
    if found is None:
        found = instance.services.setdefault(
            SERVICE_KEY, InstanceValues(instance.db, instance.settings)
        )
    if not isinstance(found, InstanceValues):
        raise TypeError(f"instance.services[{SERVICE_KEY!r}] is not an InstanceValues")
    return found
