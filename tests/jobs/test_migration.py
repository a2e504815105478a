"""The jobs migration builds exactly the table the model describes, and undoes it."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect

from holdfast.db.migrate import alembic_config, upgrade
from holdfast.jobs.models import Job


def jobs_metadata() -> MetaData:
    metadata = MetaData()
    Job.__table__.to_metadata(metadata)
    return metadata


def test_upgrade_from_empty_matches_the_model(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = [
                d
                for d in compare_metadata(context, jobs_metadata())
                # Only the jobs table is compared; other areas' tables are theirs.
                if not (d[0] == "remove_table" and d[1].name != "jobs")
                and not (d[0] == "remove_index" and d[1].table.name != "jobs")
            ]
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("jobs")}
    finally:
        engine.dispose()
    assert diffs == []
    assert {"ix_jobs_due", "ix_jobs_done"} <= indexes


def test_the_jobs_branch_downgrades_alone(db_url: str) -> None:
    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "jobs@0001_core")
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert "jobs" not in tables
    assert "accounts" in tables  # the core revision stays
