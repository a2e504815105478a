"""Pages of a large catalogue: capped counts shown as such, the next page still linked,
and the upload page's swarm chart drawn from the stored swarm history."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

import holdfast.catalogue.search as search_module
import holdfast.catalogue.service as service_module
from holdfast.accounts.models import Role
from holdfast.catalogue.models import Upload
from holdfast.db.base import utcnow
from holdfast.swarm.models import SwarmSample
from tests.instance.helpers import make_dataset, make_upload, make_user
from tests.web.helpers import HTML, text_of

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def owner(instance):
    return make_user(instance, "petra", Role.uploader)


def test_capped_counts_say_more_and_link_the_next_page(client, instance, owner, monkeypatch):
    for i in range(5):
        make_dataset(instance, owner, title=f"Glacier survey {i}")
    monkeypatch.setattr(service_module, "COUNT_CAP", 2)
    monkeypatch.setattr("holdfast.web.catalogue_pages.DATASETS_PER_PAGE", 2)
    page = client.get("/datasets", headers=HTML)
    text = text_of(page.text)
    assert "2+ datasets" in text and "more than 2 in all" in text
    assert 'rel="next"' in page.text and "page=2" in page.text
    last = client.get("/datasets?page=3", headers=HTML)
    assert "5 datasets" in text_of(last.text) and 'rel="next"' not in last.text
    assert "Page 3 of 3" in text_of(last.text)

    monkeypatch.setattr(search_module, "SEARCH_COUNT_CAP", 2)
    monkeypatch.setattr("holdfast.web.catalogue_pages.SEARCH_PER_PAGE", 1)
    found = client.get("/search?q=glacier", headers=HTML)
    assert "2+ results" in text_of(found.text) and 'rel="next"' in found.text
    if instance.db.is_sqlite:
        monkeypatch.setattr(search_module, "RANK_POOL", 3)
        common = text_of(client.get("/search?q=survey", headers=HTML).text)
        assert "these are the best of the newest 3" in common


def chart_of(html: str) -> ET.Element:
    start = html.index("<svg")
    end = html.index("</svg>", start) + len("</svg>")
    return ET.fromstring(html[start:end])


def test_upload_chart_draws_the_swarm_history(client, instance, owner, tmp_path):
    dataset = make_dataset(instance, owner)
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    now = utcnow()
    with instance.db.write() as s:
        s.add_all(
            [
                SwarmSample(upload_id=upload.id, measured_at=now - timedelta(days=200), seeders=9),
                SwarmSample(upload_id=upload.id, measured_at=now - timedelta(days=3), seeders=1),
                SwarmSample(
                    upload_id=upload.id, measured_at=now - timedelta(days=1), seeders=4, leechers=2
                ),
            ]
        )
        row = s.get(Upload, upload.id)
        row.seeders, row.leechers, row.swarm_checked_at = 6, 1, now
    root = chart_of(client.get(f"/uploads/{upload.infohash}", headers=HTML).text)
    desc = root.findtext(f"{SVG}desc")
    # The sample older than the chart's period is left out; the latest check closes it.
    assert desc.startswith("3 measurements")
    assert "Latest: 6 seeders, 1 leechers" in desc and "Most seeders: 6" in desc
    line = root.find(f"{SVG}polyline[@class='chart-seeders']")
    assert line is not None and len(line.get("points").split()) == 3


def test_upload_chart_without_history_shows_the_latest_check(client, instance, owner, tmp_path):
    dataset = make_dataset(instance, owner)
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    root = chart_of(client.get(f"/uploads/{upload.infohash}", headers=HTML).text)
    assert root.findtext(f"{SVG}desc") == "No swarm measurements yet."
    with instance.db.write() as s:
        row = s.get(Upload, upload.id)
        row.seeders, row.leechers, row.swarm_checked_at = 2, 0, utcnow()
    root = chart_of(client.get(f"/uploads/{upload.infohash}", headers=HTML).text)
    assert root.findtext(f"{SVG}desc").startswith("1 measurement from")
    assert root.find(f"{SVG}circle[@class='chart-dot-seeders']") is not None


def test_admin_page_shows_swarm_seeding_and_federation_settings(app, instance):
    from tests.web.helpers import Browser

    make_user(instance, "ada", Role.admin)
    browser = Browser(app)
    browser.login("ada")
    page = text_of(browser.get("/admin").text)
    for name in ("tracker", "seeder", "webseed", "federation_mode", "scrape_interval_minutes"):
        assert name in page
    assert str(instance.settings.federation_mode) in page
