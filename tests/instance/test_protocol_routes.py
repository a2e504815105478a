"""Routes for machines rather than people: the tracker, the web seed, ActivityPub.

The API matrix (test_permissions) and the web matrix (tests/web/test_routes) cover
their own routes; this file covers every other route of the app. A new protocol
route fails `test_every_protocol_route_has_a_rule` until its rule is decided here,
and every rule is checked for approved, pending and removed items, anonymously and
with the submitter's and an admin's credentials: a route for peers and clients never
shows an item that is not approved, whoever asks.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.catalogue.schemas import DatasetIn, UploadIn
from holdfast.instance import Instance
from tests.instance.helpers import make_user, set_status
from tests.instance.torrents import make_files, make_torrent
from tests.routes import app_routes

ACTIVITY = {"Accept": "application/activity+json"}

# (method, path) -> what it serves: "public" (instance-level documents, always 200),
# "item" (one catalogue item: 200 only when approved, never for pending or removed
# ones), "signed" (an ActivityPub inbox: refuses unsigned requests with 401),
# "missing" (asked for with an unknown identifier: 404).
PROTOCOL: dict[tuple[str, str], str] = {
    ("GET", "/.well-known/webfinger"): "public",
    ("GET", "/.well-known/nodeinfo"): "public",
    ("GET", "/nodeinfo/2.1"): "public",
    ("GET", "/actor"): "public",
    ("GET", "/actor/outbox"): "public",
    ("GET", "/actor/outbox/torrents"): "public",
    ("GET", "/actor/followers"): "public",
    ("GET", "/actor/following"): "public",
    ("POST", "/actor/inbox"): "signed",
    ("POST", "/inbox"): "signed",
    ("GET", "/ap/activities/{token}"): "missing",
    ("GET", "/ap/datasets/{slug}"): "item",
    ("GET", "/ap/datasets/{slug}/versions/{digest}"): "missing",
    ("GET", "/ap/uploads/{infohash}"): "item",
    ("GET", "/webseed/{infohash}"): "missing",  # a multi-file torrent has no single file
    ("GET", "/webseed/{infohash}/{path:path}"): "item",
    ("GET", "/docs/oauth2-redirect"): "public",
}
STATES = ("approved", "pending", "removed")
WHO = ("anonymous", "owner", "admin")


def protocol_routes(app: Any) -> set[tuple[str, str]]:
    return {
        (r.method, r.path)
        for r in app_routes(app)
        if not r.path.startswith(("/api/", "/static")) and not r.module.startswith("holdfast.web")
    }


class World:
    def __init__(self, client: TestClient, instance: Instance, tmp: Path) -> None:
        self.client = client
        self.instance = instance
        self.owner = make_user(instance, "owner", Role.uploader)
        self.admin = make_user(instance, "admin", Role.admin)
        self.items: dict[str, tuple[Dataset, Upload]] = {}
        for state in STATES:
            self.items[state] = self._item(tmp, state)

    def _item(self, tmp: Path, state: str) -> tuple[Dataset, Upload]:
        cat = self.instance.catalogue
        dataset = cat.create_dataset(self.owner.account, DatasetIn(title=f"Protocol {state}"))
        root = make_files(
            tmp / state / "data", {"readme.txt": state.encode(), "values.csv": b"1,2\n" * 999}
        )
        upload = cat.create_upload(
            self.owner.account, UploadIn(dataset=dataset.slug), make_torrent(root, version="v1")
        )
        # the data is in the instance's storage, so the web seed could serve it
        storage = self.instance.settings.resolved_storage_dir
        shutil.copytree(root, storage / upload.infohash / "data")
        for model, ident in ((Upload, upload.id), (Dataset, dataset.id)):
            set_status(self.instance, model, ident, Status(state))
        return dataset, upload

    def headers(self, who: str) -> dict[str, str]:
        extra = {"anonymous": {}, "owner": self.owner.headers, "admin": self.admin.headers}
        return {**ACTIVITY, **extra[who]}

    def path(self, template: str, state: str) -> str:
        dataset, upload = self.items[state]
        return (
            template.replace("{slug}", dataset.slug)
            .replace("{infohash}", upload.infohash)
            .replace("{path:path}", "data/readme.txt")
            .replace("{token}", "no-such-activity")
            .replace("{digest}", "0" * 64)
        )


@pytest.fixture
def world(make_settings: Any, tmp_path: Path) -> Iterator[World]:
    from holdfast.app import create_app

    app = create_app(make_settings(seeder=False))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield World(client, app.state.instance, tmp_path)


def test_every_protocol_route_has_a_rule(world: World) -> None:
    present = protocol_routes(world.client.app)
    assert present - set(PROTOCOL) == set()
    assert set(PROTOCOL) - present == set()  # and every rule is about a route that exists


QUERIES = {
    "/.well-known/webfinger": {"resource": "acct:holdfast@127.0.0.1:8000"},
    "/actor/outbox": {"after": "0"},
    "/actor/outbox/torrents": {"after": "0"},
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("who", WHO)
def test_protocol_routes_never_show_unapproved_items(world: World, state: str, who: str) -> None:
    present = protocol_routes(world.client.app)
    wrong = []
    for (method, template), rule in sorted(PROTOCOL.items()):
        if (method, template) not in present:
            continue
        path = world.path(template, state)
        response = world.client.request(
            method,
            path,
            headers=world.headers(who),
            params=QUERIES.get(template),
            content=b"{}" if method == "POST" else None,
        )
        if rule == "public":
            expected = {200}
        elif rule == "signed":
            expected = {401}
        elif rule == "missing":
            expected = {404}
        else:  # "item"
            expected = {200} if state == "approved" else {404, 410}
        if response.status_code not in expected:
            wrong.append(f"{method} {path}: {response.status_code}, expected {expected}")
        if state != "approved":
            _, upload = world.items[state]
            assert upload.infohash.encode() not in listed(response.content), f"{method} {path}"
    assert wrong == []


def listed(content: bytes) -> bytes:
    """A response without the Deletes of an outbox page, and nothing of a Tombstone:
    those name what was removed, and say only that."""
    try:
        page = json.loads(content)
    except ValueError:
        return content
    if isinstance(page, dict) and page.get("type") == "Tombstone":
        return b""
    if isinstance(page, dict) and isinstance(page.get("orderedItems"), list):
        page["orderedItems"] = [
            item
            for item in page["orderedItems"]
            if not (isinstance(item, dict) and item.get("type") == "Delete")
        ]
    return json.dumps(page).encode()


def test_item_rules_serve_the_approved_item(world: World) -> None:
    # The "item" routes really serve something when the item is approved, so the
    # refusals above are about state, not about a broken request.
    dataset, upload = world.items["approved"]
    r = world.client.get(world.path("/ap/uploads/{infohash}", "approved"), headers=ACTIVITY)
    assert r.status_code == 200 and upload.infohash_v1 in r.text
    r = world.client.get(world.path("/ap/datasets/{slug}", "approved"), headers=ACTIVITY)
    assert r.status_code == 200 and dataset.slug in r.text
    r = world.client.get(world.path("/webseed/{infohash}/{path:path}", "approved"))
    assert r.status_code == 200 and r.content == b"approved"
