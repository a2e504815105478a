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
    "holdfast.federation.models",
)


def load_models() -> MetaData:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
    return Base.metadata
