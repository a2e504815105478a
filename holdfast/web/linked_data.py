"""Datasets and uploads as JSON-LD: schema.org `Dataset` with `distribution`, and DCAT.

Dataset search engines (Google Dataset Search reads schema.org; data portals read
DCAT) index the catalogue from this. Each resource is typed in both vocabularies, and
the context is inline, so a JSON-LD processor needs no network to expand it.

A dataset's distributions are its approved uploads: each is a `.torrent` file
(`contentUrl` / `dcat:downloadURL`) plus the upload page (`dcat:accessURL`), with its
infohashes as identifiers.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from holdfast.api.schemas import magnet_link
from holdfast.catalogue.models import Dataset, Upload
from holdfast.catalogue.text import render_markdown

JSONLD_TYPE = "application/ld+json"
TORRENT_TYPE = "application/x-bittorrent"
TORRENT_MEDIA_TYPE_IRI = "https://www.iana.org/assignments/media-types/application/x-bittorrent"

TAG = re.compile(r"<[^>]+>")

CONTEXT: dict[str, Any] = {
    "@vocab": "https://schema.org/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcat:byteSize": {"@type": "xsd:nonNegativeInteger"},
    "dcat:accessURL": {"@type": "@id"},
    "dcat:downloadURL": {"@type": "@id"},
    "dcat:mediaType": {"@type": "@id"},
    "dcat:landingPage": {"@type": "@id"},
    "dct:source": {"@type": "@id"},
    "dct:issued": {"@type": "xsd:dateTime"},
    "dct:modified": {"@type": "xsd:dateTime"},
}


def _plain_description(markdown: str) -> str:
    """A plain-text description (search engines want text, not HTML)."""
    text = TAG.sub(" ", render_markdown(markdown))
    return " ".join(unescape(text).split())


def catalog_ref(base_url: str, title: str) -> dict[str, Any]:
    return {"@type": ["DataCatalog", "dcat:Catalog"], "name": title, "url": base_url + "/"}


def upload_identifiers(upload: Upload) -> list[str]:
    ids = []
    if upload.infohash_v1:
        ids.append(f"urn:btih:{upload.infohash_v1}")
    if upload.infohash_v2:
        ids.append(f"urn:btmh:1220{upload.infohash_v2}")
    return ids


def distribution(upload: Upload, base_url: str) -> dict[str, Any]:
    """One upload as a schema.org DataDownload and a dcat:Distribution."""
    page = f"{base_url}/uploads/{upload.infohash}"
    torrent = f"{base_url}/api/v1/uploads/{upload.infohash}/torrent"
    node: dict[str, Any] = {
        "@type": ["DataDownload", "dcat:Distribution"],
        "@id": page,
        "name": upload.name,
        "url": page,
        "contentUrl": torrent,
        "encodingFormat": TORRENT_TYPE,
        "contentSize": f"{upload.total_size} B",
        "identifier": upload_identifiers(upload),
        "sameAs": magnet_link(upload),
        "uploadDate": upload.created_at.isoformat(),
        "dcat:accessURL": page,
        "dcat:downloadURL": torrent,
        "dcat:mediaType": TORRENT_MEDIA_TYPE_IRI,
        "dcat:byteSize": upload.total_size,
        "dct:issued": upload.created_at.isoformat(),
    }
    if upload.description:
        node["description"] = _plain_description(upload.description)
    return node


def dataset_jsonld(
    dataset: Dataset,
    uploads: list[Upload],
    *,
    base_url: str,
    catalog_title: str,
) -> dict[str, Any]:
    """A dataset with its uploads as distributions."""
    url = f"{base_url}/datasets/{dataset.slug}"
    node: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": ["Dataset", "dcat:Dataset"],
        "@id": url,
        "url": url,
        "name": dataset.title,
        "identifier": dataset.slug,
        "description": _plain_description(dataset.description) or dataset.title,
        "keywords": dataset.tag_names,
        "dateCreated": dataset.created_at.isoformat(),
        "dateModified": dataset.updated_at.isoformat(),
        "version": str(dataset.version),
        "includedInDataCatalog": catalog_ref(base_url, catalog_title),
        "distribution": [distribution(u, base_url) for u in uploads],
        "dcat:landingPage": url,
        "dcat:keyword": dataset.tag_names,
        "dct:issued": dataset.created_at.isoformat(),
        "dct:modified": dataset.updated_at.isoformat(),
    }
    if dataset.license:
        node["license"] = dataset.license
    if dataset.publisher:
        node["publisher"] = {"@type": "Organization", "name": dataset.publisher}
        node["creator"] = {"@type": "Organization", "name": dataset.publisher}
    if dataset.source_urls:
        node["isBasedOn"] = list(dataset.source_urls)
        node["dct:source"] = list(dataset.source_urls)
    return node


def upload_jsonld(upload: Upload, *, base_url: str, catalog_title: str) -> dict[str, Any]:
    """An upload as a distribution that names the dataset it belongs to."""
    node = distribution(upload, base_url)
    dataset = upload.dataset
    node = {"@context": CONTEXT, **node}
    node["isPartOf"] = {
        "@type": ["Dataset", "dcat:Dataset"],
        "@id": f"{base_url}/datasets/{dataset.slug}",
        "name": dataset.title,
        "includedInDataCatalog": catalog_ref(base_url, catalog_title),
    }
    return node


def wants_jsonld(accept: str) -> bool:
    """Whether an Accept header prefers JSON-LD to HTML.

    `application/ld+json` (or `application/json`) must be listed with a quality at
    least that of `text/html`; browsers, which list `text/html` first, get HTML.
    """
    best_ld = 0.0
    best_html = 0.0
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media in (JSONLD_TYPE, "application/json"):
            best_ld = max(best_ld, quality)
        elif media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, quality)
    return best_ld > 0 and best_ld >= best_html
