"""JSON-LD: content negotiation, the embedded copy, and what a JSON-LD processor reads."""

from __future__ import annotations

import json
import re

import pytest
from pyld import jsonld

from holdfast.accounts.models import Role
from holdfast.web.linked_data import wants_jsonld
from tests.instance.helpers import make_dataset, make_upload, make_user

SDO = "https://schema.org/"
DCAT = "http://www.w3.org/ns/dcat#"
LD = {"accept": "application/ld+json"}
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def published(instance, tmp_path):
    owner = make_user(instance, "lina", Role.uploader)
    dataset = make_dataset(
        instance,
        owner,
        title="Glacier </script><script>alert(1)</script> mass balance",
        slug="glaciers",
        description="Annual *mass balance* of 40 glaciers.",
        license="CC-BY-4.0",
        publisher="WGMS",
        source_urls=["https://wgms.example/data"],
        tags=["climate", "ice"],
    )
    uploads = [make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(2)]
    return dataset, uploads


def test_dataset_by_content_negotiation(client, published):
    _dataset, uploads = published
    r = client.get("/datasets/glaciers", headers=LD)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/ld+json")
    assert "Accept" in r.headers["vary"]
    doc = r.json()
    assert "Dataset" in doc["@type"] and "dcat:Dataset" in doc["@type"]
    assert doc["@id"] == "http://127.0.0.1:8000/datasets/glaciers"
    assert doc["keywords"] == ["climate", "ice"]
    assert doc["description"] == "Annual mass balance of 40 glaciers."
    assert {d["@id"] for d in doc["distribution"]} == {
        f"http://127.0.0.1:8000/uploads/{u.infohash}" for u in uploads
    }
    # Browsers get the page.
    page = client.get("/datasets/glaciers", headers=BROWSER)
    assert page.headers["content-type"].startswith("text/html")


def test_expanded_by_a_jsonld_processor(client, published):
    _dataset, uploads = published
    doc = client.get("/datasets/glaciers", headers=LD).json()
    expanded = jsonld.expand(doc)  # inline context: no network needed
    assert len(expanded) == 1
    node = expanded[0]
    assert set(node["@type"]) == {SDO + "Dataset", DCAT + "Dataset"}
    assert node[SDO + "license"][0]["@value"] == "CC-BY-4.0"
    assert node[SDO + "publisher"][0][SDO + "name"][0]["@value"] == "WGMS"
    assert node["http://purl.org/dc/terms/source"][0]["@id"] == "https://wgms.example/data"
    distributions = node[SDO + "distribution"]
    assert len(distributions) == 2
    for dist in distributions:
        assert set(dist["@type"]) == {SDO + "DataDownload", DCAT + "Distribution"}
        download = dist[DCAT + "downloadURL"][0]["@id"]
        assert download.endswith("/torrent")
        assert dist[SDO + "contentUrl"][0]["@value"] == download
        assert dist[SDO + "encodingFormat"][0]["@value"] == "application/x-bittorrent"
        size = dist[DCAT + "byteSize"][0]
        assert size["@type"] == "http://www.w3.org/2001/XMLSchema#nonNegativeInteger"
        upload = next(u for u in uploads if dist["@id"].endswith(u.infohash))
        assert size["@value"] == upload.total_size
        identifiers = {i["@value"] for i in dist[SDO + "identifier"]}
        assert f"urn:btmh:1220{upload.infohash_v2}" in identifiers
        assert f"urn:btih:{upload.infohash_v1}" in identifiers


def test_embedded_copy_matches_and_cannot_break_out_of_its_script(client, published):
    page = client.get("/datasets/glaciers", headers=BROWSER).text
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert len(blocks) == 1
    assert "</script" not in blocks[0]
    embedded = json.loads(blocks[0])
    negotiated = client.get("/datasets/glaciers", headers=LD).json()
    assert embedded == negotiated
    assert embedded["name"].startswith("Glacier </script>")


def test_upload_jsonld(client, published):
    _dataset, uploads = published
    upload = uploads[0]
    doc = client.get(f"/uploads/{upload.infohash}", headers=LD).json()
    assert "dcat:Distribution" in doc["@type"]
    assert doc["isPartOf"]["@id"] == "http://127.0.0.1:8000/datasets/glaciers"
    assert doc["dcat:byteSize"] == upload.total_size
    expanded = jsonld.expand(doc)[0]
    assert expanded[SDO + "isPartOf"][0]["@id"] == "http://127.0.0.1:8000/datasets/glaciers"
    page = client.get(f"/uploads/{upload.infohash}", headers=BROWSER).text
    assert '<script type="application/ld+json">' in page


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/ld+json", True),
        ("application/json", True),
        ("application/ld+json;q=0.9, text/html;q=0.8", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("text/html, application/ld+json;q=0.5", False),
        ("*/*", False),
        ("", False),
        ("application/ld+json;q=0", False),
        ("application/ld+json;q=abc", False),
    ],
)
def test_wants_jsonld(accept, expected):
    assert wants_jsonld(accept) is expected
