"""Shared fixtures for the federation tests: fresh instance keys."""

from __future__ import annotations

import pytest

from holdfast.federation.keys import InstanceKeys


@pytest.fixture(scope="session")
def instance_keys() -> InstanceKeys:
    # RSA generation costs ~50 ms; one set serves the whole session.
    return InstanceKeys.generate()


@pytest.fixture(scope="session")
def other_keys() -> InstanceKeys:
    return InstanceKeys.generate()
