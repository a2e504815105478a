"""The permission matrix: every API route, every role, every item state.

Each route is listed in ROUTES with a rule giving the status each caller must get
for an item in each state. A test fails if the app has an /api/v1 route that is not
in the matrix, so a new route cannot ship without its permissions being decided.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Status
from tests.conftest import DATABASES, create_postgres_database
from tests.instance.helpers import User, make_dataset, make_upload, make_user
from tests.instance.torrents import sample_torrent
from tests.routes import app_routes

ROLES = ["anonymous", "owner", "member", "uploader", "moderator", "admin"]
STATES = ["approved", "pending", "removed"]
MODS = {"moderator", "admin"}


@dataclass
class World:
    client: TestClient
    instance: Any
    users: dict[str, User]
    tmp: Path
    items: dict[str, tuple[Any, Any]]  # state -> (dataset, upload), shared by read-only routes

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else self.users[role].headers

    def fresh(self, state: str) -> tuple[Any, Any]:
        """A new dataset with one upload, both in `state`, submitted by the owner."""
        owner = self.users["owner"]
        ds = make_dataset(self.instance, owner, status=Status.approved)
        up = make_upload(self.instance, owner, ds.slug, self.tmp, status=Status(state))
        from holdfast.catalogue.models import Dataset
        from tests.instance.helpers import set_status

        set_status(self.instance, Dataset, ds.id, Status(state))
        return ds, up


@pytest.fixture(scope="module", params=DATABASES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from holdfast.app import create_app
    from holdfast.settings import Settings

    tmp = tmp_path_factory.mktemp("matrix")
    drop: Callable[[], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'matrix.db'}"
    else:
        url, drop = create_postgres_database()
    app = create_app(
        Settings(
            data_dir=tmp / "data",
            database_url=url,
            run_jobs=False,
            config_file=tmp / "none.toml",
            auth_rate_limit=10_000,
            tracker_udp_port=0,
            seeder_port=0,
        )
    )
    instance = app.state.instance
    users = {
        "owner": make_user(instance, "owner", Role.member),
        "member": make_user(instance, "member", Role.member),
        "uploader": make_user(instance, "uploader", Role.uploader),
        "moderator": make_user(instance, "moderator", Role.moderator),
        "admin": make_user(instance, "admin", Role.admin),
    }
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        w = World(client, instance, users, tmp, {})
        w.items = {state: w.fresh(state) for state in STATES}
        yield w
    instance.db.dispose()
    if drop is not None:
        drop()


# --- expected outcomes ------------------------------------------------------------


def public(role: str, state: str) -> int:
    return 200


def read_item(role: str, state: str) -> int:
    """Approved: everyone. Pending: its submitter and moderators. Removed: a tombstone."""
    if state == "approved" or role in MODS:
        return 200
    if state == "pending":
        return 200 if role == "owner" else 404
    return 410


def edit_item(role: str, state: str) -> int:
    if role == "anonymous":
        return 401
    if state == "removed":
        return 403 if role in MODS else 410
    if role in MODS or role == "owner":
        return 200
    return 403 if state == "approved" else 404


def logged_in(ok: int) -> Callable[[str, str], int]:
    return lambda role, state: 401 if role == "anonymous" else ok


def needs(roles: set[str], ok: int = 200) -> Callable[[str, str], int]:
    def rule(role: str, state: str) -> int:
        if role == "anonymous":
            return 401
        return ok if role in roles else 403

    return rule


def report_item(role: str, state: str) -> int:
    if role == "anonymous":
        return 401
    expected = read_item(role, state)
    return 201 if expected == 200 else (404 if expected == 410 else expected)


def upload_to_dataset(role: str, state: str) -> int:
    if role == "anonymous":
        return 401
    if state == "removed":
        return 410  # nobody adds to a removed dataset, moderators included
    return 201 if read_item(role, state) == 200 else 404


def replace_item(role: str, state: str) -> int:
    expected = edit_item(role, state)
    return 201 if expected == 200 else expected


def decide_item(role: str, state: str) -> int:
    if role == "anonymous":
        return 401
    if role not in MODS:
        return 403
    return 200 if state == "pending" else 422  # only waiting items can be approved


def submit_webseed(role: str, state: str) -> int:
    if role == "anonymous":
        return 401
    if state == "removed":
        return 410  # nothing is added to a removed upload, by moderators either
    expected = read_item(role, state)
    return 201 if expected == 200 else expected


_n = itertools.count()


def unique() -> int:
    return next(_n)


# --- the matrix --------------------------------------------------------------------
# (method, path template) -> (rule, request builder). The builder gets the world and
# the items for the state under test and returns (concrete path, request kwargs).

Builder = Callable[[World, str], tuple[str, dict[str, Any]]]


def shared(path: str, **kwargs: Any) -> Builder:
    def build(w: World, state: str) -> tuple[str, dict[str, Any]]:
        ds, up = w.items[state]
        return path.format(slug=ds.slug, infohash=up.infohash), dict(kwargs)

    return build


def fresh(path: str, body: Callable[[World, Any, Any], dict[str, Any]]) -> Builder:
    def build(w: World, state: str) -> tuple[str, dict[str, Any]]:
        ds, up = w.fresh(state)
        return path.format(slug=ds.slug, infohash=up.infohash), body(w, ds, up)

    return build


def torrent_file(w: World) -> dict[str, Any]:
    data = sample_torrent(w.tmp, f"m{unique()}", seed=str(unique()))
    return {"torrent": ("x.torrent", data, "application/x-bittorrent")}


MATRIX: dict[tuple[str, str], tuple[Callable[[str, str], int], Builder]] = {
    ("GET", "/api/v1/health"): (public, shared("/api/v1/health")),
    ("GET", "/api/v1/openapi.json"): (public, shared("/api/v1/openapi.json")),
    ("GET", "/api/v1/docs"): (public, shared("/api/v1/docs")),
    ("GET", "/api/v1/datasets"): (public, shared("/api/v1/datasets")),
    ("GET", "/api/v1/uploads"): (public, shared("/api/v1/uploads")),
    ("GET", "/api/v1/tags"): (public, shared("/api/v1/tags")),
    ("GET", "/api/v1/search"): (public, shared("/api/v1/search", params={"q": "values"})),
    ("GET", "/api/v1/datasets/{slug}"): (read_item, shared("/api/v1/datasets/{slug}")),
    ("GET", "/api/v1/datasets/{slug}/versions"): (
        read_item,
        shared("/api/v1/datasets/{slug}/versions"),
    ),
    ("GET", "/api/v1/datasets/{slug}/uploads"): (
        read_item,
        shared("/api/v1/datasets/{slug}/uploads"),
    ),
    ("GET", "/api/v1/uploads/{infohash}"): (read_item, shared("/api/v1/uploads/{infohash}")),
    ("GET", "/api/v1/uploads/{infohash}/files"): (
        read_item,
        shared("/api/v1/uploads/{infohash}/files"),
    ),
    ("GET", "/api/v1/uploads/{infohash}/torrent"): (
        read_item,
        shared("/api/v1/uploads/{infohash}/torrent"),
    ),
    ("GET", "/api/v1/uploads/{infohash}/zarr-metadata"): (
        read_item,
        shared("/api/v1/uploads/{infohash}/zarr-metadata"),
    ),
    ("POST", "/api/v1/uploads/{infohash}/zarr-metadata"): (
        edit_item,
        shared("/api/v1/uploads/{infohash}/zarr-metadata", json={"files": []}),
    ),
    ("GET", "/api/v1/uploads/{infohash}/metadata"): (
        read_item,
        shared("/api/v1/uploads/{infohash}/metadata"),
    ),
    ("POST", "/api/v1/uploads/{infohash}/metadata"): (
        edit_item,
        shared("/api/v1/uploads/{infohash}/metadata", json={"content": None}),
    ),
    ("GET", "/api/v1/federation/peers"): (needs({"admin"}), shared("/api/v1/federation/peers")),
    ("POST", "/api/v1/federation/peers"): (
        needs({"admin"}),
        shared(
            "/api/v1/federation/peers",
            json={"actor": "https://peer.example/actor", "trust": "review"},
        ),
    ),
    ("POST", "/api/v1/federation/peers/{peer_id}/sync"): (
        lambda r, s: needs({"admin"})(r, s) if r != "admin" else 404,
        shared("/api/v1/federation/peers/999999/sync"),
    ),
    ("GET", "/api/v1/federation/policy"): (needs({"admin"}), shared("/api/v1/federation/policy")),
    ("GET", "/api/v1/federation/follows"): (
        needs({"admin"}),
        shared("/api/v1/federation/follows"),
    ),
    ("POST", "/api/v1/federation/follows"): (
        lambda r, s: needs({"admin"})(r, s) if r != "admin" else 422,  # loopback actor refused
        shared("/api/v1/federation/follows", json={"actor": "http://127.0.0.1:9/actor"}),
    ),
    ("POST", "/api/v1/federation/follows/{follow_id}"): (
        lambda r, s: needs({"admin"})(r, s) if r != "admin" else 404,
        shared("/api/v1/federation/follows/999999", json={"action": "accept"}),
    ),
    ("DELETE", "/api/v1/federation/follows/{follow_id}"): (
        lambda r, s: needs({"admin"})(r, s) if r != "admin" else 404,
        shared("/api/v1/federation/follows/999999"),
    ),
    ("GET", "/api/v1/federation/forks"): (needs(MODS), shared("/api/v1/federation/forks")),
    ("GET", "/api/v1/federation/provenance/uploads/{infohash}"): (
        read_item,
        shared("/api/v1/federation/provenance/uploads/{infohash}"),
    ),
    ("GET", "/api/v1/federation/provenance/datasets/{slug}"): (
        read_item,
        shared("/api/v1/federation/provenance/datasets/{slug}"),
    ),
    ("POST", "/api/v1/federation/verify"): (
        public,
        shared("/api/v1/federation/verify", json={"document": {"id": "x"}}),
    ),
    ("GET", "/api/v1/uploads/{infohash}/swarm"): (
        read_item,
        shared("/api/v1/uploads/{infohash}/swarm"),
    ),
    ("GET", "/api/v1/uploads/{infohash}/seeding"): (
        read_item,
        shared("/api/v1/uploads/{infohash}/seeding"),
    ),
    ("GET", "/api/v1/uploads/{infohash}/webseeds"): (
        read_item,
        shared("/api/v1/uploads/{infohash}/webseeds"),
    ),
    ("POST", "/api/v1/uploads/{infohash}/webseeds"): (
        submit_webseed,
        shared(
            "/api/v1/uploads/{infohash}/webseeds",
            json_factory=lambda: {"url": f"https://example.org/{unique()}/"},
        ),
    ),
    ("PATCH", "/api/v1/datasets/{slug}"): (
        edit_item,
        shared("/api/v1/datasets/{slug}", json_factory=lambda: {"title": f"Title {unique()}"}),
    ),
    ("POST", "/api/v1/datasets/{slug}/parts"): (
        lambda r, s: 201 if edit_item(r, s) == 200 else edit_item(r, s),
        shared("/api/v1/datasets/{slug}/parts", json_factory=lambda: {"slug": f"p{unique()}"}),
    ),
    ("POST", "/api/v1/uploads/{infohash}/replace"): (
        replace_item,
        fresh("/api/v1/uploads/{infohash}/replace", lambda w, ds, up: {"files": torrent_file(w)}),
    ),
    ("POST", "/api/v1/datasets"): (
        logged_in(201),
        shared("/api/v1/datasets", json_factory=lambda: {"title": f"New {unique()}"}),
    ),
    ("POST", "/api/v1/uploads"): (
        upload_to_dataset,
        fresh(
            "/api/v1/uploads",
            lambda w, ds, up: {"files": torrent_file(w), "data": {"dataset": ds.slug}},
        ),
    ),
    ("POST", "/api/v1/reports"): (
        report_item,
        shared(
            "/api/v1/reports",
            json_factory=None,
        ),
    ),
    ("GET", "/api/v1/account"): (logged_in(200), shared("/api/v1/account")),
    ("GET", "/api/v1/account/tokens"): (logged_in(200), shared("/api/v1/account/tokens")),
    ("POST", "/api/v1/account/tokens"): (
        logged_in(201),
        shared("/api/v1/account/tokens", json={"name": "matrix"}),
    ),
    ("DELETE", "/api/v1/account/tokens/{token_id}"): (
        lambda r, s: 401 if r == "anonymous" else 404,  # nobody may revoke a token not theirs
        shared("/api/v1/account/tokens/999999"),
    ),
    ("GET", "/api/v1/accounts"): (needs({"admin"}), shared("/api/v1/accounts")),
    ("GET", "/api/v1/accounts/{name}"): (public, shared("/api/v1/accounts/owner")),
    ("PATCH", "/api/v1/accounts/{name}"): (
        needs({"admin"}),
        shared("/api/v1/accounts/member", json={"trusted": False}),
    ),
    ("GET", "/api/v1/moderation/queue"): (needs(MODS), shared("/api/v1/moderation/queue")),
    ("GET", "/api/v1/moderation/reports"): (needs(MODS), shared("/api/v1/moderation/reports")),
    ("GET", "/api/v1/moderation/audit"): (needs(MODS), shared("/api/v1/moderation/audit")),
    ("POST", "/api/v1/moderation/decisions"): (
        decide_item,
        fresh(
            "/api/v1/moderation/decisions",
            lambda w, ds, up: {
                "json": {"target_type": "upload", "target": up.infohash, "action": "approve"}
            },
        ),
    ),
    ("POST", "/api/v1/moderation/reports/{report_id}"): (
        lambda r, s: needs(MODS)(r, s) if r not in MODS else 404,
        shared("/api/v1/moderation/reports/999999", json={"status": "dismissed"}),
    ),
}
# Authentication routes are exercised in test_accounts.py (they create sessions).
AUTH_ROUTES = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/setup"),
}


def app_api_routes(app: Any) -> set[tuple[str, str]]:
    """Every /api/v1 route: those in the OpenAPI document, and any left out of it."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/v1")
    }
    found.update((r.method, r.path) for r in app_routes(app) if r.path.startswith("/api/v1"))
    return found


def test_every_api_route_is_in_the_matrix(world: World) -> None:
    routes = app_api_routes(world.client.app)
    missing = routes - set(MATRIX) - AUTH_ROUTES
    assert not missing, f"routes without a permission rule: {sorted(missing)}"
    stale = set(MATRIX) - routes
    assert not stale, f"matrix rows for routes that no longer exist: {sorted(stale)}"


def _request(w: World, method: str, template: str, role: str, state: str) -> tuple[int, int]:
    rule, build = MATRIX[(method, template)]
    path, kwargs = build(w, state)
    factory = kwargs.pop("json_factory", "absent")
    if factory is None:  # reports: the body names the shared upload
        kwargs["json"] = {
            "target_type": "upload",
            "target": w.items[state][1].infohash,
            "kind": "incorrect",
            "reason": "matrix",
        }
    elif factory != "absent":
        kwargs["json"] = factory()
    r = w.client.request(method, path, headers=w.headers(role), **kwargs)
    return r.status_code, rule(role, state)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_permission(world: World, route: tuple[str, str], role: str, state: str) -> None:
    got, expected = _request(world, route[0], route[1], role, state)
    assert got == expected, f"{route[0]} {route[1]} as {role} on a {state} item"


@pytest.mark.parametrize("role", ROLES)
def test_listings_never_leak_unapproved_items(world: World, role: str) -> None:
    """Lists, search and tags show pending items only to their submitter and moderators,
    and removed items to nobody."""
    h = world.headers(role)
    pending_ds, pending_up = world.items["pending"]
    removed_ds, removed_up = world.items["removed"]
    datasets = {
        d["slug"]
        for d in world.client.get("/api/v1/datasets?per_page=500", headers=h).json()["items"]
    }
    uploads = {
        u["infohash"]
        for u in world.client.get("/api/v1/uploads?per_page=500", headers=h).json()["items"]
    }
    hits = world.client.get("/api/v1/search?q=values&per_page=500", headers=h).json()["items"]
    hit_uploads = {x["upload"]["infohash"] for x in hits if x["upload"]}
    hit_datasets = {x["dataset"]["slug"] for x in hits}
    sees_pending = role in MODS or role == "owner"
    assert (pending_ds.slug in datasets) == sees_pending
    assert (pending_up.infohash in uploads) == sees_pending
    assert (pending_up.infohash in hit_uploads) == sees_pending
    assert (pending_ds.slug in hit_datasets) == sees_pending
    assert removed_ds.slug not in datasets and removed_up.infohash not in uploads
    assert removed_up.infohash not in hit_uploads and removed_ds.slug not in hit_datasets
    approved_ds, approved_up = world.items["approved"]
    assert approved_ds.slug in datasets and approved_up.infohash in uploads
