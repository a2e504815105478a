"""Imports every module that defines tables, so `Base.metadata` is complete.

Alembic and the schema tests use this; add new model modules here.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from holdfast.db.base import Base

MODEL_MODULES = (
    "holdfast.accounts.models",
    "holdfast.catalogue.models",
    "holdfast.moderation.models",
    "holdfast.jobs.models",
    "holdfast.swarm.models",
    "holdfast.seeding.models",
    "holdfast.federation.models",
    "holdfast.arrays.models",
)


def load_models() -> MetaData:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
    return Base.metadata


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Schema objects the models describe (for autogenerate and the schema test).

    The search index internals are made by hand in the migrations (FTS5 tables on
    SQLite, a generated tsvector column and its index on PostgreSQL).
    """
    if type_ == "table" and name and name.startswith("search_fts"):
        return False
    if type_ == "column" and name == "search_vector":
        return False
    return not (type_ == "index" and name and name.startswith("ix_search_documents_vector"))
