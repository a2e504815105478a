"""RSS 2.0 and Atom feeds: items, enclosures that BitTorrent clients can fetch, ordering."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import libtorrent as lt
import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Upload
from tests.instance.helpers import make_dataset, make_upload, make_user

ATOM = "{http://www.w3.org/2005/Atom}"
EZRSS = "{http://xmlns.ezrss.it/0.1/}"


@pytest.fixture
def catalogue(instance, tmp_path):
    owner = make_user(instance, "feeder", Role.uploader)
    climate = make_dataset(
        instance, owner, title='Ocean <heat> & "salt"', slug="ocean", tags=["climate"]
    )
    census = make_dataset(instance, owner, title="Census", slug="census", tags=["people"])
    uploads = {
        "ocean-1": make_upload(instance, owner, climate.slug, tmp_path, version="v1"),
        "ocean-2": make_upload(instance, owner, climate.slug, tmp_path, version="hybrid"),
        "census-1": make_upload(instance, owner, census.slug, tmp_path, version="v2"),
    }
    return uploads


def rss_items(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/rss+xml")
    root = ET.fromstring(r.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    return root.find("channel"), root.findall("channel/item")


def test_rss_items_enclose_the_original_torrent(client, instance, catalogue):
    channel, items = rss_items(client, "/feeds/uploads.rss")
    assert channel.findtext("title").startswith("New uploads")
    assert channel.find(f"{ATOM}link").get("href") == "http://127.0.0.1:8000/feeds/uploads.rss"
    assert len(items) == 3
    by_link = {item.findtext("link").rsplit("/", 1)[1]: item for item in items}
    assert set(by_link) == {u.infohash for u in catalogue.values()}
    for upload in catalogue.values():
        item = by_link[upload.infohash]
        enclosure = item.find("enclosure")
        assert enclosure.get("type") == "application/x-bittorrent"
        url = enclosure.get("url")
        assert url == f"http://127.0.0.1:8000/api/v1/uploads/{upload.infohash}/torrent"
        torrent = client.get(url.removeprefix("http://127.0.0.1:8000")).content
        assert int(enclosure.get("length")) == len(torrent)
        hashes = lt.torrent_info(lt.bdecode(torrent)).info_hashes()
        expected_v1 = upload.infohash_v1 or upload.infohash_v2[:40]
        assert item.findtext(f"{EZRSS}torrent/{EZRSS}infoHash") == expected_v1
        if upload.infohash_v1:
            assert hashes.v1.to_bytes().hex() == upload.infohash_v1
        if upload.infohash_v2:
            assert hashes.v2.to_bytes().hex() == upload.infohash_v2
        assert parsedate_to_datetime(item.findtext("pubDate")).tzinfo is not None
    ocean = by_link[catalogue["ocean-1"].infohash]
    # Titles with markup characters are escaped and come back intact.
    assert 'Ocean <heat> & "salt"' in ocean.findtext("title")
    assert [c.text for c in ocean.findall("category")] == ["climate"]


def test_newest_first(client, instance, catalogue):
    _channel, items = rss_items(client, "/feeds/uploads.rss")
    dates = [parsedate_to_datetime(i.findtext("pubDate")) for i in items]
    assert dates == sorted(dates, reverse=True)


def test_tag_and_dataset_feeds(client, catalogue):
    _c, items = rss_items(client, "/feeds/tags/climate.rss")
    links = {i.findtext("link").rsplit("/", 1)[1] for i in items}
    assert links == {catalogue["ocean-1"].infohash, catalogue["ocean-2"].infohash}
    _c, items = rss_items(client, "/feeds/datasets/census.rss")
    assert [i.findtext("link").rsplit("/", 1)[1] for i in items] == [catalogue["census-1"].infohash]
    _c, items = rss_items(client, "/feeds/tags/no-such-tag.rss")
    assert items == []
    assert client.get("/feeds/datasets/no-such-dataset.rss").status_code == 404


def test_needs_seeders_lists_fewest_seeders_first(client, instance, catalogue):
    seeders = {"ocean-1": 7, "ocean-2": 0, "census-1": None}
    with instance.db.write() as s:
        for key, count in seeders.items():
            s.get(Upload, catalogue[key].id).seeders = count
    _c, items = rss_items(client, "/feeds/needs-seeders.rss")
    order = [i.findtext("link").rsplit("/", 1)[1] for i in items]
    # Measured swarms first, fewest seeders first; never-measured ones after.
    assert order == [catalogue[k].infohash for k in ("ocean-2", "ocean-1", "census-1")]
    assert "Seeders: 0" in items[0].findtext("description")
    assert "not measured yet" in items[2].findtext("description")


def test_atom_feed(client, catalogue):
    r = client.get("/feeds/uploads.atom?limit=2")
    assert r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id") == "http://127.0.0.1:8000/feeds/uploads.atom"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    for entry in entries:
        links = {link.get("rel"): link for link in entry.findall(f"{ATOM}link")}
        assert links["enclosure"].get("type") == "application/x-bittorrent"
        assert links["enclosure"].get("href").endswith("/torrent")
        assert int(links["enclosure"].get("length")) > 0
        assert links["alternate"].get("href") == entry.findtext(f"{ATOM}id")
        assert entry.findtext(f"{ATOM}updated")


def test_bad_feed_requests(client, catalogue):
    assert client.get("/feeds/uploads.json").status_code == 404
    assert client.get("/feeds/uploads.rss?limit=0").status_code == 422
    assert client.get("/feeds/uploads.rss?limit=101").status_code == 422
    r = client.get("/feeds/tags/<script>.rss")
    assert r.status_code == 200
    ET.fromstring(r.content)  # the tag is escaped, the document well-formed


def test_empty_feeds_are_valid(client):
    for path in ("/feeds/uploads.rss", "/feeds/needs-seeders.atom"):
        r = client.get(path)
        assert r.status_code == 200
        ET.fromstring(r.content)


@pytest.mark.parametrize(("window", "rounds"), [(3, 10), (2, 2), (50, 1)])
def test_newest_first_in_windows_matches_a_plain_sort(
    client, instance, tmp_path, monkeypatch, window, rounds
):
    """Reading the date index a window at a time gives what sorting everything gives,
    with hidden uploads skipped, over several windows and when it gives up early."""
    from datetime import UTC, datetime, timedelta

    from holdfast.catalogue.models import Status
    from holdfast.feeds import service
    from tests.instance.helpers import set_status

    monkeypatch.setattr(service, "NEWEST_WINDOW", window)
    monkeypatch.setattr(service, "NEWEST_ROUNDS", rounds)
    owner = make_user(instance, "windows", Role.uploader)
    dataset = make_dataset(instance, owner, tags=["w"])
    uploads = [make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(9)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with instance.db.write() as s:
        for i, u in enumerate(uploads):
            # Pairs share a timestamp, so the tie-break on id matters.
            s.get(Upload, u.id).created_at = start + timedelta(hours=i // 2)
    for hidden in (uploads[8], uploads[5], uploads[4]):
        set_status(instance, Upload, hidden.id, Status.pending)
    visible = [u for u in uploads if u not in (uploads[8], uploads[5], uploads[4])]
    expected = [u.infohash for u in sorted(visible, key=lambda u: u.id, reverse=True)]
    for path in ("/feeds/uploads.rss?limit=4", "/feeds/tags/w.rss?limit=4"):
        _c, items = rss_items(client, path)
        assert [i.findtext("link").rsplit("/", 1)[1] for i in items] == expected[:4]
    _c, items = rss_items(client, "/feeds/uploads.rss?limit=50")
    assert [i.findtext("link").rsplit("/", 1)[1] for i in items] == expected
