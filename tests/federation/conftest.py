"""Shared helpers for the federation tests: published test vectors and fresh keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from holdfast.federation.keys import InstanceKeys

DATA = Path(__file__).resolve().parent.parent / "data" / "federation"


def load_vector(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def instance_keys() -> InstanceKeys:
    # RSA generation costs ~50 ms; one set serves the whole session.
    return InstanceKeys.generate()


@pytest.fixture(scope="session")
def other_keys() -> InstanceKeys:
    return InstanceKeys.generate()
