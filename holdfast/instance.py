"""One running instance's services, built from its settings. No globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from holdfast.accounts.ratelimit import RateLimiter
from holdfast.accounts.service import Accounts
from holdfast.catalogue.search import Search
from holdfast.catalogue.service import Catalogue
from holdfast.db import Database
from holdfast.moderation.service import Moderation
from holdfast.settings import Settings


@dataclass
class Instance:
    settings: Settings
    db: Database
    accounts: Accounts
    catalogue: Catalogue
    search: Search
    moderation: Moderation
    # Long-running parts started by the app's lifespan (job runner, tracker, seeder).
    services: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Instance:
        db = Database(settings.resolved_database_url)
        limiter = RateLimiter(settings.auth_rate_limit, settings.auth_rate_window_seconds)
        return cls(
            settings=settings,
            db=db,
            accounts=Accounts(db, limiter, session_days=settings.session_days),
            catalogue=Catalogue(db, max_torrent_bytes=settings.max_torrent_bytes),
            search=Search(db),
            moderation=Moderation(db),
        )

    @property
    def base_url(self) -> str:
        return self.settings.base_url
