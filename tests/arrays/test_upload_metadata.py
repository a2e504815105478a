"""An upload's holdfast.yaml kept by the instance: the API, the pages and search.

The file must be the torrent's own (checked against its piece hashes) and valid; then
the upload page and the dataset page show it as a structured section (every value
escaped), and search finds the upload by its words.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from holdfast.accounts.models import Role
from holdfast.arrays.models import UploadMetadata
from holdfast.catalogue.models import Status, Upload
from holdfast.catalogue.schemas import UploadIn
from holdfast.torrents import create_torrent
from tests.instance.helpers import User, make_dataset, make_user, set_status

pytest.importorskip("jsonschema")

YAML = """\
title: Glacier melt <script>alert(1)</script> survey
description: |
  Daily **melt** rates <img src=x onerror=alert(2)> at the snout.
creators:
  - name: Marie <b>Tharp</b>
    orcid: 0000-0002-1825-0097
    affiliation: Lamont
keywords: [glaciology, ablation stakes]
license: CC-BY-4.0
temporal_coverage:
  start: "2021-06-01"
  end: "2021-09-30"
spatial_coverage:
  places: [Vatnajokull]
related_identifiers:
  - identifier: 10.5281/zenodo.1234567
    identifier_type: DOI
    relation_type: IsSupplementTo
files:
  - path: melt.zarr
    format: zarr
    shape: ["* day", 40]
    dtype: float32
    units: millimetres per day
    description: Melt at each stake (sublimation excluded).
  - path: session.h5
    format: hdf5
    arrays:
      - array_path: /acquisition/stakes
        shape: ["* reading", 3]
        dtype: int32
        units: centimetres
  - path: notes.txt
    format: text
"""

_n = itertools.count()


def described_upload(
    instance: Any, owner: User, dataset: str, tmp: Path, text: str = YAML
) -> tuple[Upload, str]:
    """An upload of a folder holding `text` as holdfast.yaml (no arrays checked here)."""
    folder = tmp / f"src{next(_n)}" / "glacier"
    (folder / "melt.zarr").mkdir(parents=True)
    (folder / "melt.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    (folder / "notes.txt").write_text("stake readings\n")
    (folder / "holdfast.yaml").write_text(text)
    created = create_torrent(folder, version="hybrid")
    upload = instance.catalogue.create_upload(
        owner.account, UploadIn(dataset=dataset), created.data
    )
    return upload, text


@pytest.fixture
def people(instance: Any) -> dict[str, User]:
    return {
        "owner": make_user(instance, "owner", Role.uploader),
        "other": make_user(instance, "other", Role.uploader),
        "moderator": make_user(instance, "mod", Role.moderator),
    }


def search_hits(client: Any, q: str) -> list[str]:
    r = client.get("/api/v1/search", params={"q": q})
    assert r.status_code == 200, r.text
    return [h["upload"]["infohash"] for h in r.json()["items"] if h.get("upload")]


def test_kept_shown_escaped_and_found(
    client: Any, instance: Any, people: dict[str, User], tmp_path: Path
) -> None:
    owner = people["owner"]
    dataset = make_dataset(instance, owner, title="Glacier records")
    upload, text = described_upload(instance, owner, dataset.slug, tmp_path)
    url = f"/api/v1/uploads/{upload.infohash}/metadata"
    assert client.get(url).json()["metadata"] is None
    assert search_hits(client, "ablation") == []

    r = client.post(url, json={"content": text}, headers=owner.headers)
    assert r.status_code == 200, r.text
    meta = r.json()["metadata"]
    assert meta["creators"][0]["orcid_url"] == "https://orcid.org/0000-0002-1825-0097"
    assert meta["files"][0]["dtype"] == "float32"
    assert client.get(url).json()["metadata"] == meta

    # The upload page: a structured section, every value escaped.
    page = client.get(f"/uploads/{upload.infohash}").text
    assert 'id="metadata"' in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "<b>Tharp</b>" not in page and "Marie &lt;b&gt;Tharp&lt;/b&gt;" in page
    section = page.split('id="metadata"')[1].split("</section>")[0]
    assert "<img" not in section and "&lt;img src=x onerror=alert(2)&gt;" in section
    assert "<strong>melt</strong>" in page  # the description's Markdown, sanitised
    assert 'href="https://orcid.org/0000-0002-1825-0097"' in page
    assert 'href="https://spdx.org/licenses/CC-BY-4.0.html"' in page
    assert 'href="https://doi.org/10.5281/zenodo.1234567"' in page
    assert "glaciology, ablation stakes" in page and "Vatnajokull" in page
    assert "2021-06-01 to 2021-09-30" in page
    assert "<td><code>melt.zarr</code></td><td>zarr</td>" in page
    assert "<td><code>float32</code></td><td>millimetres per day</td>" in page
    assert '<tr class="array"><td><code>session.h5/acquisition/stakes</code></td>' in page
    assert "<td><code>int32</code></td><td>centimetres</td>" in page

    # The dataset page: the same, from its approved upload, with a link to it.
    page = client.get(f"/datasets/{dataset.slug}").text
    assert 'id="metadata"' in page and f'href="/uploads/{upload.infohash}"' in page
    assert "Melt at each stake (sublimation excluded)." in page and "&lt;script&gt;" in page

    # Search (API and web page) finds the upload by words only holdfast.yaml has.
    for word in ("ablation", "Vatnajokull", "sublimation", "Tharp", "millimetres"):
        assert search_hits(client, word) == [upload.infohash], word
    assert "Glacier records" in client.get("/search", params={"q": "sublimation"}).text

    # Handing it over again replaces the indexed words; null forgets it.
    r = client.post(url, json={"content": text}, headers=people["moderator"].headers)
    assert r.status_code == 200, r.text
    assert search_hits(client, "ablation") == [upload.infohash]
    r = client.post(url, json={"content": None}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["metadata"] is None
    assert search_hits(client, "ablation") == []
    assert search_hits(client, "Glacier") == [upload.infohash]  # its own words stay
    assert 'id="metadata"' not in client.get(f"/uploads/{upload.infohash}").text


def test_pending_uploads_stay_off_the_dataset_page(
    client: Any, instance: Any, people: dict[str, User], tmp_path: Path
) -> None:
    owner = people["owner"]
    dataset = make_dataset(instance, owner)
    upload, text = described_upload(instance, owner, dataset.slug, tmp_path)
    r = client.post(
        f"/api/v1/uploads/{upload.infohash}/metadata", json={"content": text}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    set_status(instance, Upload, upload.id, Status.pending)
    assert 'id="metadata"' not in client.get(f"/datasets/{dataset.slug}").text
    set_status(instance, Upload, upload.id, Status.approved)
    assert 'id="metadata"' in client.get(f"/datasets/{dataset.slug}").text


def test_bad_input_is_refused_and_nothing_is_kept(
    client: Any, instance: Any, people: dict[str, User], tmp_path: Path
) -> None:
    owner = people["owner"]
    dataset = make_dataset(instance, owner)
    upload, text = described_upload(instance, owner, dataset.slug, tmp_path)
    url = f"/api/v1/uploads/{upload.infohash}/metadata"

    # Valid YAML, but not the file in the torrent.
    r = client.post(url, json={"content": text + "# edited\n"}, headers=owner.headers)
    assert r.status_code == 422 and "piece hashes" in r.json()["error"]
    # Not the uploader's upload.
    r = client.post(url, json={"content": text}, headers=people["other"].headers)
    assert r.status_code == 403
    r = client.post(url, json={"content": text})
    assert r.status_code == 401
    r = client.post(url, json={"yaml": text}, headers=owner.headers)
    assert r.status_code == 422

    # The torrent's own file, but invalid: the error names the line and field.
    bad = YAML.replace("orcid: 0000-0002-1825-0097", "orcid: 0000-0002-1825-0098")
    wrong, _ = described_upload(instance, owner, dataset.slug, tmp_path, bad)
    r = client.post(
        f"/api/v1/uploads/{wrong.infohash}/metadata", json={"content": bad}, headers=owner.headers
    )
    assert r.status_code == 422
    body = r.json()
    assert "holdfast.yaml:6" in body["error"] and "creators[0].orcid" in body["error"]

    # A torrent without holdfast.yaml.
    plain = tmp_path / "plain" / "data"
    plain.mkdir(parents=True)
    (plain / "a.txt").write_text("x\n")
    other = instance.catalogue.create_upload(
        owner.account, UploadIn(dataset=dataset.slug), create_torrent(plain).data
    )
    r = client.post(
        f"/api/v1/uploads/{other.infohash}/metadata", json={"content": text}, headers=owner.headers
    )
    assert r.status_code == 422 and "no data/holdfast.yaml" in r.json()["error"]

    with instance.db.read() as s:
        assert s.query(UploadMetadata).count() == 0
    assert search_hits(client, "ablation") == []
