"""Failures seen in the field's reference project, each made impossible here."""

from __future__ import annotations

import pytest

from holdfast.accounts.models import Role
from tests.instance.helpers import make_user
from tests.instance.torrents import sample_torrent


@pytest.fixture
def alice(instance):
    return make_user(instance, "alice", Role.uploader)


@pytest.fixture
def mallory(instance):
    return make_user(instance, "mallory", Role.uploader)


def new_dataset(client, user, title):
    r = client.post("/api/v1/datasets", json={"title": title}, headers=user.headers)
    assert r.status_code == 201
    return r.json()["slug"]


def upload(client, user, slug, torrent):
    return client.post(
        "/api/v1/uploads",
        files={"torrent": ("x.torrent", torrent)},
        data={"dataset": slug, "description": f"by {user.account.name}"},
        headers=user.headers,
    )


def test_reposting_an_infohash_cannot_take_over_the_upload(client, alice, mallory, tmp_path):
    slug = new_dataset(client, alice, "Original")
    torrent = sample_torrent(tmp_path, "orig")
    first = upload(client, alice, slug, torrent).json()
    theirs = new_dataset(client, mallory, "Hijack")
    r = upload(client, mallory, theirs, torrent)
    assert r.status_code == 409
    after = client.get(f"/api/v1/uploads/{first['infohash']}").json()
    assert after["submitted_by"] == "alice"
    assert after["dataset"] == slug
    assert after["description"] == "by alice"
    # Nor can the other account replace it.
    r = client.post(
        f"/api/v1/uploads/{first['infohash']}/replace",
        files={"torrent": ("x.torrent", sample_torrent(tmp_path, "evil"))},
        headers=mallory.headers,
    )
    assert r.status_code == 403
    assert client.get(f"/api/v1/uploads/{first['infohash']}").json()["status"] == "approved"


def test_a_duplicate_of_a_hidden_upload_does_not_reveal_it(client, instance, tmp_path):
    member = make_user(instance, "member", Role.member)
    other = make_user(instance, "other", Role.uploader)
    slug = new_dataset(client, member, "Pending one")
    torrent = sample_torrent(tmp_path, "hidden")
    pending = upload(client, member, slug, torrent).json()
    assert pending["status"] == "pending"
    mine = new_dataset(client, other, "Mine")
    r = upload(client, other, mine, torrent)
    assert r.status_code == 409
    assert pending["infohash"] not in r.json()["error"]


def test_unapproved_items_do_not_leak(client, instance, tmp_path):
    member = make_user(instance, "member", Role.member)
    slug = new_dataset(client, member, "Secret pending data")
    up = upload(client, member, slug, sample_torrent(tmp_path, "secret")).json()
    assert client.get(f"/api/v1/datasets/{slug}").status_code == 404
    assert client.get(f"/api/v1/uploads/{up['infohash']}").status_code == 404
    assert client.get(f"/api/v1/uploads/{up['infohash']}/torrent").status_code == 404
    assert client.get(f"/api/v1/uploads/{up['infohash']}/files").status_code == 404
    assert client.get(f"/api/v1/datasets/{slug}/versions").status_code == 404
    assert client.get("/api/v1/search?q=secret").json()["total"] == 0
    assert client.get("/api/v1/datasets").json()["total"] == 0
    assert client.get("/api/v1/tags").json() == []
    # The submitter sees their own.
    assert client.get(f"/api/v1/datasets/{slug}", headers=member.headers).status_code == 200


HOSTILE = [
    '"',
    '""',
    '"unterminated',
    "(",
    ")",
    "[brackets]",
    "{braces}",
    "col:on",
    "title:sea",
    "sea OR",
    "OR",
    "AND",
    "NOT",
    "NEAR",
    "NEAR(sea ocean)",
    "sea NEAR/2 ocean",
    "*",
    "sea*",
    "^sea",
    "-sea",
    "+sea",
    "'; DROP TABLE datasets; --",
    "\\",
    "%",
    "_",
    "sea & ocean | !land",
    "sea:*",
    "\x00",
    "\u202e\u0000bidi",
    "🌊 ocean",
    "a" * 500,
    "   ",
]


@pytest.mark.parametrize("q", HOSTILE)
def test_search_strings_never_cause_a_server_error(client, alice, q):
    new_dataset(client, alice, "Sea surface temperature")
    r = client.get("/api/v1/search", params={"q": q})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True


def test_search_operators_are_just_words(client, alice):
    new_dataset(client, alice, "Sea surface temperature")
    new_dataset(client, alice, "Land cover")
    # "OR" is a word to find, not an operator: nothing has "or" in it.
    assert client.get("/api/v1/search", params={"q": "sea OR land"}).json()["total"] == 0
    assert client.get("/api/v1/search", params={"q": '"sea" (surface)'}).json()["total"] == 1


def test_rejected_replacement_leaves_the_old_upload_intact(client, alice, tmp_path):
    slug = new_dataset(client, alice, "Replace me")
    original = sample_torrent(tmp_path, "good")
    old = upload(client, alice, slug, original).json()
    for bad in (b"garbage", b"d4:infod4:name1:xee", b""):
        r = client.post(
            f"/api/v1/uploads/{old['infohash']}/replace",
            files={"torrent": ("x.torrent", bad)},
            headers=alice.headers,
        )
        assert r.status_code == 422
    # A replacement that duplicates another upload is refused too, changing nothing.
    other = upload(client, alice, slug, sample_torrent(tmp_path, "other")).json()
    r = client.post(
        f"/api/v1/uploads/{old['infohash']}/replace",
        files={
            "torrent": (
                "x.torrent",
                client.get(f"/api/v1/uploads/{other['infohash']}/torrent").content,
            )
        },
        headers=alice.headers,
    )
    assert r.status_code == 409
    still = client.get(f"/api/v1/uploads/{old['infohash']}")
    assert still.status_code == 200 and still.json()["status"] == "approved"
    assert client.get(f"/api/v1/uploads/{old['infohash']}/torrent").content == original
    # A good replacement removes the old one (a tombstone) and serves the new one.
    r = client.post(
        f"/api/v1/uploads/{old['infohash']}/replace",
        files={"torrent": ("x.torrent", sample_torrent(tmp_path, "fixed"))},
        headers=alice.headers,
    )
    assert r.status_code == 201
    assert client.get(f"/api/v1/uploads/{old['infohash']}").status_code == 410
    assert client.get(f"/api/v1/uploads/{r.json()['infohash']}").status_code == 200
