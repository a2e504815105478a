"""Pages, HTMX fragments, feeds and JSON-LD show exactly what the API shows a viewer.

Items waiting for review (or denied) are visible to their submitter and moderators
only; removed ones leave a tombstone. None of them may leak to anyone else through
any page, fragment, feed, search result, tag page or linked-data document.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Status
from tests.instance.helpers import make_dataset, make_upload, make_user, set_status
from tests.web.helpers import BASE_URL, HTML, HTMX

SECRET_WORD = "zanzibarhidden"


@pytest.fixture
def world(app, instance, tmp_path):
    owner = make_user(instance, "owner", Role.member)
    users = {
        "owner": owner,
        "member": make_user(instance, "member", Role.member),
        "moderator": make_user(instance, "moderator", Role.moderator),
    }
    public = make_dataset(instance, owner, title="Public dataset", tags=["shared"])
    visible_upload = make_upload(instance, owner, public.slug, tmp_path)
    items = {"public": (public, visible_upload)}
    for state in (Status.pending, Status.denied, Status.removed):
        ds = make_dataset(
            instance,
            owner,
            title=f"{SECRET_WORD}{state.value} dataset",
            tags=["shared", f"only-{state.value}"],
            status=Status.approved,
        )
        up = make_upload(instance, owner, ds.slug, tmp_path, status=state)
        set_status(instance, Dataset, ds.id, state)
        # An unapproved upload inside the public dataset, too.
        hidden_up = make_upload(instance, owner, public.slug, tmp_path, status=state)
        items[state.value] = (ds, up, hidden_up)
    return users, items


def client_for(app, users, who):
    headers = dict(HTML)
    if who != "anonymous":
        headers["authorization"] = f"Bearer {users[who].token}"
    return TestClient(app, base_url=BASE_URL, headers=headers, follow_redirects=False)


VIEWERS = ["anonymous", "member", "owner", "moderator"]


def can_see(who, state):
    if state == "removed":
        return who == "moderator"
    return who in ("owner", "moderator")


@pytest.mark.parametrize("who", VIEWERS)
def test_item_pages(app, world, who):
    users, items = world
    c = client_for(app, users, who)
    for state in ("pending", "denied", "removed"):
        ds, up, hidden_up = items[state]
        for path in (
            f"/datasets/{ds.slug}",
            f"/uploads/{up.infohash}",
            f"/uploads/{hidden_up.infohash}",
            f"/datasets/{ds.slug}/history",
        ):
            r = c.get(path)
            if can_see(who, state):
                assert r.status_code == 200, (who, state, path)
            else:
                assert r.status_code in (404, 410), (who, state, path, r.status_code)
                assert SECRET_WORD not in r.text
                assert hidden_up.name not in r.text
                if state == "removed":
                    assert r.status_code == 410
        # Fragments and JSON-LD go through the same checks.
        r = c.get(f"/uploads/{hidden_up.infohash}", headers={**HTMX, "hx-target": "files"})
        assert (r.status_code == 200) == can_see(who, state)
        r = c.get(f"/datasets/{ds.slug}", headers={"accept": "application/ld+json"})
        assert (r.status_code == 200) == can_see(who, state)
        if not can_see(who, state):
            assert SECRET_WORD not in r.text


@pytest.mark.parametrize("who", VIEWERS)
def test_listings_search_tags_and_fragments(app, world, who):
    users, items = world
    c = client_for(app, users, who)
    pages = {
        "/": c.get("/"),
        "/datasets": c.get("/datasets"),
        "/datasets fragment": c.get(
            "/datasets?tag=shared", headers={**HTMX, "hx-target": "dataset-results"}
        ),
        "/search": c.get(f"/search?q={SECRET_WORD}"),
        "/search fragment": c.get(
            f"/search?q={SECRET_WORD}", headers={**HTMX, "hx-target": "search-results"}
        ),
        "/search files": c.get("/search?q=readme&kind=upload"),
        "/tags": c.get("/tags"),
        "/tags/shared": c.get("/tags/shared"),
        "public dataset": c.get(f"/datasets/{items['public'][0].slug}"),
        "profile": c.get("/accounts/owner"),
    }
    for name, r in pages.items():
        assert r.status_code == 200, name
    for state in ("pending", "denied", "removed"):
        ds, _up, hidden_up = items[state]
        for name, r in pages.items():
            shown = f'/datasets/{ds.slug}"' in r.text or f'/uploads/{hidden_up.infohash}"' in r.text
            expected = can_see(who, state) and state != "removed"  # removed leaves listings
            if name in ("/search files",):
                continue  # checked below: file-name search finds uploads, not datasets
            if name in ("/tags",):
                assert (f"only-{state}" in r.text) == expected, (who, state, name)
                continue
            if not expected:
                assert not shown, (who, state, name)
                assert f"{SECRET_WORD}{state}" not in r.text, (who, state, name)
        files = pages["/search files"].text
        assert (f'/uploads/{hidden_up.infohash}"' in files) == (
            can_see(who, state) and state != "removed"
        )
    # The search page repeats the query in its form, but lists nothing hidden.
    results = pages["/search fragment"].text
    if who in ("anonymous", "member"):
        assert "0 results" in results


def test_feeds_never_show_unapproved_items_even_to_moderators(app, world):
    users, items = world
    for who in VIEWERS:
        c = client_for(app, users, who)
        for path in (
            "/feeds/uploads.rss",
            "/feeds/needs-seeders.atom",
            "/feeds/tags/shared.rss",
            f"/feeds/datasets/{items['public'][0].slug}.rss",
        ):
            r = c.get(path)
            assert r.status_code == 200
            assert items["public"][1].infohash in r.text
            for state in ("pending", "denied", "removed"):
                ds, up, hidden_up = items[state]
                assert up.infohash not in r.text
                assert hidden_up.infohash not in r.text
                assert SECRET_WORD not in r.text
        for state in ("pending", "denied", "removed"):
            ds = items[state][0]
            assert c.get(f"/feeds/datasets/{ds.slug}.rss").status_code == 404


def test_public_dataset_jsonld_lists_only_approved_uploads(app, world):
    users, items = world
    public, visible_upload = items["public"]
    for who in VIEWERS:
        c = client_for(app, users, who)
        doc = c.get(f"/datasets/{public.slug}", headers={"accept": "application/ld+json"}).json()
        ids = {d["@id"].rsplit("/", 1)[1] for d in doc["distribution"]}
        assert ids == {visible_upload.infohash}, who
