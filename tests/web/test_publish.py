"""One-step publishing and dataset editing through the forms."""

from __future__ import annotations

import libtorrent as lt
import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Upload
from tests.instance.helpers import make_dataset, make_user
from tests.instance.torrents import make_files, make_torrent, sample_torrent
from tests.web.helpers import Browser, errors_of, text_of


def counts(instance):
    with instance.db.read() as s:
        return s.query(Dataset).count(), s.query(Upload).count()


def torrent_file(data, name="data.torrent"):
    return {"torrent": (name, data, "application/x-bittorrent")}


@pytest.fixture
def member(app, instance):
    make_user(instance, "maria", Role.member)
    b = Browser(app)
    b.login("maria")
    return b


def test_new_dataset_and_torrent_in_one_step(member, instance, tmp_path):
    data = sample_torrent(tmp_path, "sst", seed="one")
    member.get("/publish")
    r = member.post(
        "/publish",
        {
            "mode": "new",
            "title": "Sea surface temperature 1981\u20132025",  # an en dash
            "description": "Daily *SST* grids.",
            "source_urls": "https://example.org/sst\nftp://example.org/sst",
            "tags": "Climate, ocean",
            "threat": "endangered",
            "scarcity": "rare",
            "publisher": "NOAA",
            "license": "public domain",
            "upload_description": "All years",
            "method": "wget -r",
        },
        files=torrent_file(data),
    )
    assert r.status_code == 303, r.text
    infohash = lt.torrent_info(lt.bdecode(data)).info_hashes().v2.to_bytes().hex()
    assert r.headers["location"] == f"/uploads/{infohash}"
    dataset = instance.catalogue.get_dataset(
        member_account(instance), "sea-surface-temperature-1981-2025"
    )
    assert dataset.status == "pending"  # a member's submission waits for review
    assert dataset.tag_names == ["climate", "ocean"]
    assert dataset.source_urls == ["https://example.org/sst", "ftp://example.org/sst"]
    assert dataset.threat == "endangered"
    _upload, stored = instance.catalogue.torrent_bytes(member_account(instance), infohash)
    assert stored == data
    page = member.get(r.headers["location"])
    assert page.status_code == 200
    assert "waiting for a moderator" in page.text
    assert infohash in page.text


def member_account(instance):
    return instance.accounts.get("maria")


def test_invalid_fields_are_shown_next_to_them_and_nothing_is_stored(member, instance, tmp_path):
    data = sample_torrent(tmp_path, "x", seed="bad-fields")
    member.get("/publish")
    r = member.post(
        "/publish",
        {
            "mode": "new",
            "title": "",
            "slug": "Not A Slug!",
            "source_urls": "not a url",
            "threat": "apocalyptic",
        },
        files=torrent_file(data),
    )
    assert r.status_code == 422
    errors = errors_of(r.text)
    assert set(errors) >= {"title", "slug", "source_urls", "threat"}
    assert "item 1" in errors["source_urls"]
    assert "Choose the .torrent file again" in r.text
    assert counts(instance) == (0, 0)


def test_a_broken_torrent_changes_nothing(member, instance):
    member.get("/publish")
    r = member.post(
        "/publish",
        {"mode": "new", "title": "Broken"},
        files=torrent_file(b"d4:infod4:name1:xee", "broken.torrent"),
    )
    assert r.status_code == 422
    assert "torrent" in errors_of(r.text)
    assert "not a valid .torrent" in errors_of(r.text)["torrent"]
    assert counts(instance) == (0, 0)


def test_a_duplicate_torrent_changes_nothing_and_does_not_take_over(app, instance, tmp_path):
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    data = sample_torrent(tmp_path, "dup", seed="dup")
    from holdfast.catalogue.schemas import UploadIn

    original = instance.catalogue.create_upload(owner.account, UploadIn(dataset=dataset.slug), data)
    make_user(instance, "thief", Role.member)
    b = Browser(app)
    b.login("thief")
    before = counts(instance)
    r = b.post("/publish", {"mode": "new", "title": "Stolen"}, files=torrent_file(data))
    assert r.status_code == 422
    assert "already in the catalogue" in errors_of(r.text)["torrent"]
    assert counts(instance) == before
    r = b.post("/publish", {"mode": "existing", "dataset": dataset.slug}, files=torrent_file(data))
    assert r.status_code == 422
    assert counts(instance) == before
    assert instance.catalogue.get_upload(None, original.infohash).account.name == "owner"


def test_add_a_torrent_to_an_existing_dataset_with_parts(app, instance, tmp_path):
    owner = make_user(instance, "olga", Role.uploader)
    dataset = make_dataset(instance, owner, parts=[{"slug": "y1999", "title": "1999"}])
    b = Browser(app)
    b.login("olga")
    page = b.get(f"/publish?dataset={dataset.slug}")
    assert "Adding to" in page.text
    assert 'value="y1999"' in page.text
    data = sample_torrent(tmp_path, "part", seed="p")
    r = b.post(
        "/publish",
        {"mode": "existing", "dataset": dataset.slug, "parts": ["y1999"]},
        files=torrent_file(data),
    )
    assert r.status_code == 303, r.text
    infohash = r.headers["location"].rsplit("/", 1)[1]
    upload = instance.catalogue.get_upload(None, infohash)
    assert upload.status == "approved"  # uploaders publish directly
    assert [p.slug for p in upload.parts] == ["y1999"]

    r = b.post(
        "/publish", {"mode": "existing", "dataset": "no-such-dataset"}, files=torrent_file(data)
    )
    assert r.status_code == 422
    assert "dataset" in errors_of(r.text)
    r = b.post("/publish", {"mode": "existing", "dataset": dataset.slug})
    assert errors_of(r.text) == {"torrent": "choose the .torrent file to add"}


def test_dataset_without_torrent(member, instance):
    member.get("/publish")
    r = member.post("/publish", {"mode": "new", "title": "Wanted: old census tapes"})
    assert r.status_code == 303
    assert r.headers["location"] == "/datasets/wanted-old-census-tapes"
    r = member.post("/publish", {"mode": "new", "title": "Wanted: old census tapes"})
    assert r.status_code == 409
    assert errors_of(r.text) == {"slug": "taken"}
    assert counts(instance) == (1, 0)


def test_edit_makes_versions_with_diffs(app, instance):
    owner = make_user(instance, "edith", Role.uploader)
    dataset = make_dataset(instance, owner, description="line one\nline two")
    b = Browser(app)
    b.login("edith")
    form = b.get(f"/datasets/{dataset.slug}/edit")
    assert form.status_code == 200
    r = b.post(
        f"/datasets/{dataset.slug}/edit",
        {
            "title": "Renamed",
            "description": "line one\nline 2",
            "source_urls": "",
            "tags": "climate, oceans",
            "threat": "extinct",
            "scarcity": "unknown",
            "summary": "fix typo",
            "base_version": "1",
        },
    )
    assert r.status_code == 303, r.text
    history = b.get(f"/datasets/{dataset.slug}/history")
    text = text_of(history.text)
    assert "Version 2: fix typo" in text
    assert "- line two" in text and "+ line 2" in text
    assert "+ oceans" in text
    assert "- unknown" in text and "+ extinct" in text
    assert "<del>- line two</del>" in history.text

    # An edit from a stale form is refused and changes nothing.
    r = b.post(
        f"/datasets/{dataset.slug}/edit",
        {"title": "Again", "threat": "safe", "scarcity": "unknown", "base_version": "1"},
    )
    assert r.status_code == 409
    assert instance.catalogue.get_dataset(None, dataset.slug).title == "Renamed"
    # Invalid fields are shown next to them.
    r = b.post(
        f"/datasets/{dataset.slug}/edit",
        {"title": "", "threat": "safe", "scarcity": "common", "base_version": "2"},
    )
    assert r.status_code == 422
    assert "title" in errors_of(r.text)
    assert instance.catalogue.get_dataset(None, dataset.slug).version == 2


def test_edit_is_refused_to_others(app, instance):
    owner = make_user(instance, "olive", Role.uploader)
    dataset = make_dataset(instance, owner)
    make_user(instance, "mallory", Role.member)
    b = Browser(app)
    b.login("mallory")
    assert b.get(f"/datasets/{dataset.slug}/edit").status_code == 403
    r = b.post(
        f"/datasets/{dataset.slug}/edit",
        {"title": "Hijacked", "threat": "safe", "scarcity": "common", "base_version": "1"},
    )
    assert r.status_code == 403
    assert instance.catalogue.get_dataset(None, dataset.slug).title != "Hijacked"
    assert "Edit</a>" not in b.get(f"/datasets/{dataset.slug}").text


def test_add_part_from_the_edit_page(app, instance):
    owner = make_user(instance, "pat", Role.uploader)
    dataset = make_dataset(instance, owner)
    b = Browser(app)
    b.login("pat")
    b.get(f"/datasets/{dataset.slug}/edit")
    r = b.post(f"/datasets/{dataset.slug}/parts", {"part_slug": "Bad Slug"})
    assert r.status_code == 422
    assert "part_slug" in errors_of(r.text)
    r = b.post(f"/datasets/{dataset.slug}/parts", {"part_slug": "y2020", "part_title": "2020"})
    assert r.status_code == 303
    assert [p.slug for p in instance.catalogue.get_dataset(None, dataset.slug).parts] == ["y2020"]
    r = b.post(f"/datasets/{dataset.slug}/parts", {"part_slug": "y2020"})
    assert r.status_code == 422
    assert errors_of(r.text) == {"part_slug": "taken"}


def test_too_large_torrent_is_refused(make_settings, tmp_path):
    from holdfast.app import create_app

    app = create_app(make_settings(max_torrent_bytes=1024))
    instance = app.state.instance
    make_user(instance, "tess", Role.uploader)
    b = Browser(app)
    b.login("tess")
    root = make_files(
        tmp_path / "big" / "big", {f"f{i}.bin": bytes([i]) * 65536 for i in range(20)}
    )
    big = make_torrent(root, version="v1")
    assert len(big) > 1024
    r = b.post("/publish", {"mode": "new", "title": "Big"}, files=torrent_file(big))
    assert r.status_code == 422
    assert "larger than" in errors_of(r.text)["torrent"]
    assert counts(instance) == (0, 0)


def test_history_is_paginated_and_each_page_diffs_against_the_version_before(client, instance):
    from holdfast.catalogue.schemas import DatasetEdit

    owner = make_user(instance, "hilda", Role.uploader)
    dataset = make_dataset(instance, owner, title="Edit 0")
    for n in range(1, 25):
        instance.catalogue.edit_dataset(
            owner.account, dataset.slug, DatasetEdit(title=f"Edit {n}", summary=f"step {n}")
        )
    first = text_of(client.get(f"/datasets/{dataset.slug}/history").text)
    assert "Version 25: step 24" in first and "Version 6: step 5" in first
    assert "Version 5:" not in first and "Page 1 of 2" in first
    second = client.get(f"/datasets/{dataset.slug}/history?page=2").text
    text = text_of(second)
    assert "Version 5: step 4" in text and "Version 1: created" in text
    # Version 5 is diffed against version 4, which is on no page of its own here.
    assert "<del>- Edit 3</del>" in second and "<ins>+ Edit 4</ins>" in second
    page = text_of(client.get(f"/datasets/{dataset.slug}").text)
    assert "Version 25: step 24" in page and "Version 22" not in page
    assert "All 25 versions" in page
