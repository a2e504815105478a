"""Pages render from the services: home, lists, search, dataset and upload pages, errors."""

from __future__ import annotations

import re
from pathlib import Path

import libtorrent as lt
import pytest
from sqlalchemy import event

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Upload
from holdfast.catalogue.schemas import UploadIn
from holdfast.web.rendering import CONTENT_SECURITY_POLICY, STATIC_DIR
from holdfast.web.sizes import parse_size
from tests.instance.helpers import make_dataset, make_upload, make_user
from tests.instance.torrents import make_files
from tests.web.helpers import HTML, HTMX, errors_of, text_of


@pytest.fixture
def owner(instance):
    return make_user(instance, "paula", Role.uploader)


def test_home_shows_counts_newest_and_most_at_risk(client, instance, owner, tmp_path):
    dataset = make_dataset(instance, owner, title="Arctic sea ice", threat="endangered")
    uploads = [make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(3)]
    with instance.db.write() as s:
        s.get(Upload, uploads[1].id).seeders = 0
        s.get(Upload, uploads[2].id).seeders = 12
    r = client.get("/", headers=HTML)
    assert r.status_code == 200
    text = text_of(r.text)
    assert "1 dataset" in text and "3 uploads" in text
    assert "A federated archive of research data" in text
    newest, risk = r.text.split('id="risk-heading"')
    for u in uploads:
        assert f"/uploads/{u.infohash}" in newest
    at_risk = re.findall(r'href="/uploads/([0-9a-f]+)"', risk)
    assert at_risk[:2] == [uploads[1].infohash, uploads[2].infohash]
    assert "0 seeders" in text_of(risk)
    assert "Endangered at the source" in text


def test_every_page_carries_security_headers(client):
    r = client.get("/", headers=HTML)
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    # No inline scripts or styles that the policy would block.
    assert not re.search(r"<script(?![^>]*(src=|application/ld\+json))", r.text)
    assert "<style" not in r.text and " style=" not in r.text
    assert "hx-on" not in r.text


def test_static_files_are_versioned_and_cached(client):
    page = client.get("/", headers=HTML).text
    css_url = re.search(r'href="(/static/style\.css\?v=[0-9a-f]+)"', page).group(1)
    htmx_url = re.search(r'src="(/static/vendor/htmx-[\d.]+\.min\.js\?v=[0-9a-f]+)"', page).group(1)
    css = client.get(css_url)
    assert css.status_code == 200
    assert "immutable" in css.headers["cache-control"]
    assert "prefers-color-scheme: dark" in css.text
    htmx = client.get(htmx_url)
    assert htmx.content == (STATIC_DIR / "vendor" / "htmx-2.0.11.min.js").read_bytes()
    assert "Zero-Clause BSD" in (STATIC_DIR / "vendor" / "htmx-LICENSE.txt").read_text()
    assert client.get("/static/../settings.py").status_code == 404


def test_errors_are_pages_for_browsers_and_json_for_the_api(client):
    r = client.get("/datasets/nothing-here", headers=HTML)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "no dataset" in text_of(r.text)
    r = client.get("/api/v1/datasets/nothing-here", headers=HTML)
    assert r.json() == {"ok": False, "error": "no dataset 'nothing-here'", "status": 404}
    r = client.get("/datasets?threat=imaginary", headers=HTML)
    assert r.status_code == 422
    assert "threat" in r.text
    r = client.get("/no/such/page", headers=HTML)
    assert r.status_code == 404 and "no such page" in r.text


def test_pages_are_not_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert all(p.startswith("/api/v1/") for p in paths)


def test_dataset_list_filters_sorts_and_pages(client, instance, owner):
    for i in range(30):
        make_dataset(
            instance,
            owner,
            title=f"Survey {i:02d}",
            tags=["survey"] if i % 2 else ["other"],
            threat="endangered" if i % 3 == 0 else "unknown",
        )
    r = client.get("/datasets?sort=title", headers=HTML)
    text = text_of(r.text)
    assert "30 datasets" in text and "Page 1 of 2" in text
    titles = re.findall(r'class="title" href="/datasets/[^"]+">(Survey \d+)<', r.text)
    assert titles == sorted(titles) and len(titles) == 25
    r = client.get("/datasets?sort=title&page=2", headers=HTML)
    assert len(re.findall(r'class="title" href="/datasets/', r.text)) == 5
    r = client.get("/datasets?tag=survey&threat=endangered", headers=HTML)
    assert "5 datasets" in text_of(r.text)
    fragment = client.get("/datasets?tag=survey", headers={**HTMX, "hx-target": "dataset-results"})
    assert fragment.text.lstrip().startswith('<section id="dataset-results"')
    assert "15 datasets" in text_of(fragment.text)
    tag_page = client.get("/tags/survey", headers=HTML)
    assert "15 datasets" in text_of(tag_page.text)
    assert 'href="/feeds/tags/survey.rss"' in tag_page.text
    tags = text_of(client.get("/tags", headers=HTML).text)
    assert "survey (15)" in tags and "other (15)" in tags


def test_search_page(client, instance, owner, tmp_path):
    dataset = make_dataset(instance, owner, title="Lake sediment cores")
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    r = client.get("/search?q=sediment&kind=dataset", headers=HTML)
    assert "1 result for" in text_of(r.text)
    assert f"/datasets/{dataset.slug}" in r.text
    # Words inside file paths find the upload.
    r = client.get("/search?q=values&kind=upload", headers=HTML)
    assert f"/uploads/{upload.infohash}" in r.text
    # Anything typed is safe.
    for q in ('"unbalanced', "a OR NEAR(b)", "title:*", "(((", "' OR 1=1 --"):
        assert client.get("/search", params={"q": q}, headers=HTML).status_code == 200
    r = client.get("/search?q=values&min_size=lots", headers=HTML)
    assert r.status_code == 422
    assert "min_size" in errors_of(r.text)
    r = client.get("/search?q=values&min_size=1 GB", headers=HTML)
    assert "0 results" in text_of(r.text)
    r = client.get("/search?q=values&max_size=1 GiB", headers=HTML)
    assert "1 result for" in text_of(r.text)
    fragment = client.get("/search?q=lake", headers={**HTMX, "hx-target": "search-results"})
    assert fragment.text.lstrip().startswith('<section id="search-results"')
    assert "<form" not in fragment.text


def test_parse_size():
    assert parse_size("") is None
    assert parse_size("500") == 500
    assert parse_size("20 MB") == 20_000_000
    assert parse_size("1.5GiB") == 1610612736
    assert parse_size("2 tb") == 2 * 10**12
    for bad in ("lots", "5 XB", "-1", "1 iB", "9" * 30):
        with pytest.raises(Exception, match="size"):
            parse_size(bad)


def many_files_torrent(tmp: Path, count: int) -> bytes:
    files = {f"run{i // 100:02d}/sample_{i:05d}.csv": b"%d" % i for i in range(count)}
    root = make_files(tmp / "many" / "survey", files)
    fs = lt.file_storage()
    lt.add_files(fs, str(root))
    ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    ct.add_tracker("udp://tracker.example:6969/announce", 0)
    ct.add_tracker("https://tracker2.example/announce", 1)
    ct.add_url_seed("https://mirror.example/survey/")
    ct.add_url_seed("javascript:alert(1)")
    lt.set_piece_hashes(ct, str(root.parent))
    return lt.bencode(ct.generate())


def test_upload_page_with_a_paginated_file_tree(client, instance, owner, tmp_path):
    dataset = make_dataset(instance, owner, title="Survey runs")
    data = many_files_torrent(tmp_path, 250)
    upload = instance.catalogue.create_upload(
        owner.account, UploadIn(dataset=dataset.slug, method="`rsync -a`"), data
    )
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(instance.db.engine, "before_cursor_execute", record)
    try:
        r = client.get(f"/uploads/{upload.infohash}", headers=HTML)
    finally:
        event.remove(instance.db.engine, "before_cursor_execute", record)
    assert r.status_code == 200
    # File rows are only ever read a page at a time.
    file_queries = [s for s in statements if "FROM upload_files" in s]
    assert file_queries
    assert all("LIMIT" in s or "count(" in s.lower() for s in file_queries), file_queries
    text = text_of(r.text)
    assert "250 files." in text and "Page 1 of 3" in text
    assert len(re.findall(r'<td class="path">', r.text)) == 100 + 2  # files + trackers
    assert upload.infohash_v1 in text
    assert "16.0 KiB" in text  # piece size
    assert "magnet:?xt=urn:btih:" in r.text
    assert f'href="/api/v1/uploads/{upload.infohash}/torrent"' in r.text
    assert "udp://tracker.example:6969/announce" in text
    assert 'href="https://mirror.example/survey/"' in r.text
    assert "javascript:alert(1)" in text and 'href="javascript:' not in r.text
    assert "<code>rsync -a</code>" in r.text
    assert "No swarm measurements yet" in r.text

    page3 = client.get(f"/uploads/{upload.infohash}?page=3", headers=HTML)
    api_page = client.get(f"/api/v1/uploads/{upload.infohash}/files?page=3&per_page=100").json()
    names = [f["path"].rsplit("/", 1)[1] for f in api_page["items"]]
    assert len(names) == 50
    assert all(name in page3.text for name in names)
    first_page = client.get(f"/api/v1/uploads/{upload.infohash}/files?per_page=100").json()
    assert first_page["items"][0]["path"].rsplit("/", 1)[1] not in page3.text
    folder = client.get(f"/uploads/{upload.infohash}?prefix=survey/run01/", headers=HTML)
    folder_text = text_of(folder.text)
    assert "100 files in survey/run01/" in folder_text
    assert "Page 1 of" not in folder_text
    assert 'href="?prefix=survey%2Frun01%2F#files"' in folder.text
    fragment = client.get(
        f"/uploads/{upload.infohash}?page=2", headers={**HTMX, "hx-target": "files"}
    )
    assert fragment.text.lstrip().startswith('<section id="files"')
    second = client.get(f"/api/v1/uploads/{upload.infohash}/files?page=2&per_page=100").json()
    assert second["items"][0]["path"].rsplit("/", 1)[1] in fragment.text
    assert "<html" not in fragment.text


def test_swarm_health_is_shown(client, instance, owner, tmp_path):
    from datetime import UTC, datetime

    dataset = make_dataset(instance, owner)
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    with instance.db.write() as s:
        row = s.get(Upload, upload.id)
        row.seeders, row.leechers, row.completed = 4, 2, 9
        row.swarm_checked_at = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    text = text_of(client.get(f"/uploads/{upload.infohash}", headers=HTML).text)
    assert "4 seeders, 2 leechers" in text
    assert "9 completed downloads" in text
    assert "Latest: 4 seeders, 2 leechers" in client.get(f"/uploads/{upload.infohash}").text


def test_dataset_page(client, instance, owner, tmp_path):
    dataset = make_dataset(
        instance,
        owner,
        title="Tide gauges",
        description="Hourly **sea level**.\n\n<script>alert(1)</script>",
        source_urls=["https://tides.example/"],
        parts=[{"slug": "pacific", "title": "Pacific"}],
    )
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    r = client.get(f"/datasets/{dataset.slug}", headers=HTML)
    assert r.status_code == 200
    assert "<strong>sea level</strong>" in r.text
    assert "<script>alert" not in r.text
    text = text_of(r.text)
    assert "Pacific" in text and "Version 1: created" in text
    assert f"/uploads/{upload.infohash}" in r.text
    assert 'href="/feeds/datasets/' + dataset.slug + '.rss"' in r.text
    profile = client.get("/accounts/paula", headers=HTML)
    assert f"/datasets/{dataset.slug}" in profile.text
    assert client.get("/accounts/nobody-here", headers=HTML).status_code == 404
