"""Migrations: upgrade from empty, and the models match the migrated schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from holdfast.db.migrate import is_current, upgrade
from holdfast.db.registry import include_object, load_models


def test_upgrade_from_empty_matches_models(database_url):
    assert not is_current(database_url)
    upgrade(database_url)
    assert is_current(database_url)
    upgrade(database_url)  # idempotent
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            diff = compare_metadata(context, load_models())
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {"datasets", "uploads", "accounts", "search_documents"} <= tables
