"""The OpenAPI document, fuzzed with schemathesis against the real app: no 5xx, ever,
and every JSON error in the one envelope."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from holdfast.accounts.models import Role
from tests.instance.helpers import make_user

pytestmark = pytest.mark.slow


@pytest.fixture
def api_schema(make_settings):
    from holdfast.app import create_app

    app = create_app(make_settings(auth_rate_limit=100_000))
    user = make_user(app.state.instance, "fuzzer", Role.admin)
    app.state.fuzz_token = user.token
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    token = case.operation.schema.app.state.fuzz_token
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
    if response.status_code >= 400 and response.headers.get("content-type", [""])[0].startswith(
        "application/json"
    ):
        body = response.json()
        assert body["ok"] is False and body["status"] == response.status_code
