"""A NUL character in any text field is refused with 422 and changes nothing.

PostgreSQL text cannot store NUL; a request carrying one must be a clear client error
on both databases, never a server error or a half-written row.
"""

from __future__ import annotations

import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset
from tests.instance.helpers import make_dataset, make_user


@pytest.fixture
def alice(instance):
    return make_user(instance, "alice", Role.uploader)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/account/tokens", {"name": "\x00"}),
        ("POST", "/api/v1/datasets", {"title": "Sea\x00 ice"}),
        ("POST", "/api/v1/datasets", {"title": "Sea ice", "description": "a\x00b"}),
        ("POST", "/api/v1/datasets", {"title": "Sea ice", "license": "CC0\x00"}),
        ("PATCH", "/api/v1/datasets/{slug}", {"title": "x\x00"}),
        ("PATCH", "/api/v1/datasets/{slug}", {"description": "\x00"}),
    ],
)
def test_nul_is_refused_and_nothing_changes(client, instance, alice, method, path, body):
    dataset = make_dataset(instance, alice, title="Before")
    with instance.db.read() as s:
        before = s.query(Dataset).count()
    r = client.request(method, path.format(slug=dataset.slug), json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["ok"] is False
    with instance.db.read() as s:
        assert s.query(Dataset).count() == before
        assert s.get(Dataset, dataset.id).title == "Before"
    tokens = client.get("/api/v1/account/tokens", headers=alice.headers).json()
    assert all("\x00" not in t["name"] for t in tokens)
