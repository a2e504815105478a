"""Shared fixtures: real databases (SQLite always, PostgreSQL when configured) and
real instances built by the app factory.

Set HOLDFAST_TEST_POSTGRES_URL (a role allowed to CREATE DATABASE) to run every
database test on PostgreSQL as well; CI sets it and HOLDFAST_REQUIRE_POSTGRES=1, which
turns its absence into an error instead of a silent SQLite-only run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("HOLDFAST_TEST_POSTGRES_URL", "")
if os.environ.get("HOLDFAST_REQUIRE_POSTGRES") == "1" and not POSTGRES_URL:
    raise RuntimeError("HOLDFAST_REQUIRE_POSTGRES=1 but HOLDFAST_TEST_POSTGRES_URL is not set")

DATABASES = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def create_postgres_database() -> tuple[str, Callable[[], None]]:
    """A fresh, empty PostgreSQL database; returns its URL and a function that drops it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = "hf_test_" + secrets.token_hex(6)
    admin_url = make_url(POSTGRES_URL).set(database="postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, then (when configured) a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'holdfast.db'}"
        return
    url, drop = create_postgres_database()
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Any]:
    """Settings for a test instance; each call gets its own data folder."""
    from holdfast.settings import Settings

    counter = iter(range(1000))

    def make(**overrides: Any) -> Settings:
        n = next(counter)
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"instance{n}",
            "database_url": database_url if n == 0 else f"sqlite:///{tmp_path}/i{n}.db",
            "allow_private_addresses": True,
            # Several instances run at once: let the system pick free ports.
            "tracker_udp_port": 0,
            "seeder_port": 0,
            "run_jobs": False,
            "config_file": tmp_path / "no-config.toml",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def app(make_settings: Callable[..., Any]) -> Any:
    from holdfast.app import create_app

    return create_app(make_settings())


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def instance(app: Any) -> Any:
    return app.state.instance
