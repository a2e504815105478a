"""Fixtures for the jobs tests: a migrated database on SQLite and on PostgreSQL.

PostgreSQL tests run against HOLDFAST_TEST_POSTGRES_URL, each in a schema of its
own that is dropped afterwards, so they never collide with other tests using the
same database. Without that variable they are skipped, unless
HOLDFAST_REQUIRE_POSTGRES=1 makes that a failure (as in CI).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from holdfast.db import Database
from holdfast.db.migrate import upgrade
from holdfast.settings import Settings


def postgres_base_url() -> str:
    url = os.environ.get("HOLDFAST_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("HOLDFAST_REQUIRE_POSTGRES") == "1":
        pytest.fail("HOLDFAST_REQUIRE_POSTGRES=1 but HOLDFAST_TEST_POSTGRES_URL is not set")
    pytest.skip("set HOLDFAST_TEST_POSTGRES_URL to run the PostgreSQL variant")


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'holdfast.db'}"


def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped when the test ends."""
    base = postgres_base_url()
    schema = f"holdfast_jobs_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        yield from postgres_schema_url()


@pytest.fixture
def migrated_url(db_url: str) -> str:
    upgrade(db_url)
    return db_url


@pytest.fixture
def db(migrated_url: str) -> Iterator[Database]:
    database = Database(migrated_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=db_url, secret_key="s" * 40, job_lock_seconds=60
    )
