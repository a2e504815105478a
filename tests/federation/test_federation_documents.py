"""Actor, Upload and Dataset documents, the bundled contexts, and what JSON-LD makes of them."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from holdfast.federation.contexts import (
    ACTIVITYSTREAMS,
    BUNDLED,
    DATA_INTEGRITY_V2,
    MULTIKEY_V1,
    SECURITY_V1,
    bundled_context,
    holdfast_terms,
)
from holdfast.federation.documents import (
    PUBLIC,
    DatasetPartInfo,
    DatasetVersionInfo,
    InstanceIdentity,
    UploadInfo,
    dataset_document,
    human_size,
    instance_actor,
    tombstone,
    upload_document,
)
from holdfast.federation.errors import DocumentError
from holdfast.federation.keys import InstanceKeys, public_key_from_actor
from holdfast.federation.proofs import create_proof, verify_proof_json

WHEN = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
V1 = "a" * 40
V2 = "b" * 64
AS = "https://www.w3.org/ns/activitystreams#"
SEC = "https://w3id.org/security#"
HF = "https://w3id.org/holdfast/ns#"


@pytest.fixture
def identity() -> InstanceIdentity:
    return InstanceIdentity(
        base_url="https://data.example.org",
        name="archive",
        title="Example Archive",
        summary="We keep <data>.",
    )


def make_upload(**changes: Any) -> UploadInfo:
    values: dict[str, Any] = {
        "url": f"https://data.example.org/uploads/{V2}",
        "name": "SST 1981-2025 <b>v2</b>",
        "dataset_url": "https://data.example.org/datasets/noaa-sst",
        "dataset_title": "NOAA sea surface temperature",
        "torrent_url": f"https://data.example.org/uploads/{V2}.torrent",
        "magnet": f"magnet:?xt=urn:btmh:1220{V2}&dn=sst",
        "total_size": 3 * 1024**3 + 512 * 1024**2,
        "file_count": 12,
        "piece_length": 4 * 1024**2,
        "published": WHEN,
        "infohash_v1": V1,
        "infohash_v2": V2,
        "description": "Daily <script>alert(1)</script> grids & more. " * 3,
        "tags": ("climate", "Ocean", "ocean"),
    }
    values.update(changes)
    return UploadInfo(**values)


def make_version(**changes: Any) -> DatasetVersionInfo:
    values: dict[str, Any] = {
        "dataset_url": "https://data.example.org/datasets/noaa-sst",
        "slug": "noaa-sst",
        "title": "NOAA sea surface temperature",
        "published": WHEN,
        "description": "Optimum interpolation SST, 1981 onwards.",
        "tags": ("climate", "ocean"),
        "source_url": "https://www.ncei.noaa.gov/products/optimum-interpolation-sst",
        "threat": "endangered",
        "parts": (DatasetPartInfo("1981", "Year 1981"), DatasetPartInfo("1982", "Year 1982")),
    }
    values.update(changes)
    return DatasetVersionInfo(**values)


# --- JSON-LD, with contexts that are never fetched -------------------------------


def _offline_loader(url: str, options: Any = None) -> dict[str, Any]:
    document = bundled_context(url)
    if document is None:
        raise AssertionError(f"tried to fetch {url}")
    return {"contextUrl": None, "documentUrl": url, "document": document}


def expand(document: dict[str, Any]) -> dict[str, Any]:
    from pyld import jsonld

    expanded = jsonld.expand(document, {"documentLoader": _offline_loader})
    assert len(expanded) == 1
    return expanded[0]


def test_every_bundled_context_is_a_context() -> None:
    for url, filename in BUNDLED.items():
        document = bundled_context(url)
        assert document is not None and isinstance(document["@context"], dict), filename
    assert bundled_context("https://example.com/unknown") is None
    assert bundled_context("https://www.w3.org/ns/activitystreams.jsonld") == bundled_context(
        ACTIVITYSTREAMS
    )
    # Each call is a fresh copy: callers may not corrupt the bundle.
    bundled_context(ACTIVITYSTREAMS)["@context"]["id"] = "broken"  # type: ignore[index]
    assert bundled_context(ACTIVITYSTREAMS)["@context"]["id"] == "@id"  # type: ignore[index]


def test_bundled_contexts_define_what_we_use() -> None:
    assert bundled_context(ACTIVITYSTREAMS)["@context"]["sharedInbox"] == {
        "@id": "as:sharedInbox",
        "@type": "@id",
    }
    assert bundled_context(SECURITY_V1)["@context"]["publicKeyPem"] == "sec:publicKeyPem"
    di = bundled_context(DATA_INTEGRITY_V2)["@context"]["DataIntegrityProof"]["@context"]
    assert di["cryptosuite"]["@id"] == SEC + "cryptosuite"
    multikey = bundled_context(MULTIKEY_V1)["@context"]["Multikey"]["@context"]
    assert multikey["publicKeyMultibase"]["@id"] == SEC + "publicKeyMultibase"


# --- the actor ----------------------------------------------------------------


def test_instance_actor(identity: InstanceIdentity, instance_keys: InstanceKeys) -> None:
    actor = instance_actor(
        identity, rsa_public=instance_keys.rsa_public, ed25519_public=instance_keys.ed25519_public
    )
    assert actor["id"] == "https://data.example.org/actor"
    assert actor["type"] == "Service"
    assert actor["preferredUsername"] == "archive"
    assert actor["inbox"] == "https://data.example.org/actor/inbox"
    assert actor["outbox"] == "https://data.example.org/actor/outbox"
    assert actor["followers"] == "https://data.example.org/actor/followers"
    assert actor["following"] == "https://data.example.org/actor/following"
    assert actor["endpoints"] == {"sharedInbox": "https://data.example.org/inbox"}
    assert actor["summary"] == "<p>We keep &lt;data&gt;.</p>"
    rsa_key = public_key_from_actor(actor, identity.key_id)
    assert rsa_key is not None and isinstance(rsa_key.public_key, rsa.RSAPublicKey)
    assert rsa_key.public_key.public_numbers() == instance_keys.rsa_public.public_numbers()
    multikey = public_key_from_actor(actor, actor["assertionMethod"][0]["id"])
    assert multikey is not None and isinstance(multikey.public_key, ed25519.Ed25519PublicKey)
    assert actor["assertionMethod"][0]["publicKeyMultibase"] == instance_keys.did_key.removeprefix(
        "did:key:"
    )
    json.dumps(actor)


def test_actor_as_json_ld(identity: InstanceIdentity, instance_keys: InstanceKeys) -> None:
    actor = instance_actor(
        identity, rsa_public=instance_keys.rsa_public, ed25519_public=instance_keys.ed25519_public
    )
    expanded = expand(actor)
    assert expanded["@type"] == [AS + "Service"]
    assert expanded[AS + "preferredUsername"] == [{"@value": "archive"}]
    assert expanded["http://www.w3.org/ns/ldp#inbox"] == [{"@id": identity.inbox_url}]
    key = expanded[SEC + "publicKey"][0]
    assert key[SEC + "owner"] == [{"@id": identity.actor_url}]
    assert key[SEC + "publicKeyPem"][0]["@value"] == instance_keys.rsa_public_pem
    method = expanded[SEC + "assertionMethod"][0]
    assert method["@type"] == [SEC + "Multikey"]
    assert method[SEC + "publicKeyMultibase"][0]["@value"] == instance_keys.public_key_multibase
    assert expanded[AS + "endpoints"][0][AS + "sharedInbox"] == [{"@id": identity.shared_inbox_url}]


@pytest.mark.parametrize(
    "changes",
    [
        {"base_url": "ftp://data.example.org"},
        {"base_url": "https://data.example.org/"},
        {"base_url": "https://data.example.org?x=1"},
        {"base_url": "data.example.org"},
        {"name": "has space"},
        {"name": "a" * 65},
        {"name": "ünïcode"},
        {"title": ""},
        {"summary": "x" * 70000},
    ],
)
def test_bad_identity_is_refused(changes: dict[str, Any]) -> None:
    values = {"base_url": "https://data.example.org", "name": "archive", "title": "Archive"}
    values.update(changes)
    with pytest.raises(DocumentError):
        InstanceIdentity(**values)


def test_identity_host_keeps_only_non_default_ports() -> None:
    assert InstanceIdentity("http://127.0.0.1:8001", "a", "A").acct == "acct:a@127.0.0.1:8001"
    assert InstanceIdentity("https://Data.Example.org:443", "a", "A").host == "data.example.org"


# --- uploads --------------------------------------------------------------------


def test_upload_document(identity: InstanceIdentity) -> None:
    document = upload_document(identity, make_upload())
    assert document["type"] == ["Page", "holdfast:Upload"]
    assert document["id"] == f"https://data.example.org/uploads/{V2}"
    assert document["attributedTo"] == identity.actor_url
    assert document["infohashV1"] == V1 and document["infohashV2"] == V2
    assert document["totalSize"] == 3 * 1024**3 + 512 * 1024**2
    assert document["fileCount"] == 12 and document["pieceLength"] == 4 * 1024**2
    assert document["torrent"].endswith(".torrent")
    assert document["magnet"].startswith("magnet:?xt=")
    assert document["dataset"] == "https://data.example.org/datasets/noaa-sst"
    torrent_links = [
        link for link in document["url"] if link["mediaType"] == "application/x-bittorrent"
    ]
    assert {link["href"] for link in torrent_links} == {document["torrent"], document["magnet"]}
    assert [tag["name"] for tag in document["tag"]] == ["#climate", "#ocean"]
    assert document["to"] == [PUBLIC] and document["cc"] == [identity.followers_url]
    assert document["published"] == "2025-03-01T09:30:00Z"


def _mastodon_text(document: dict[str, Any]) -> tuple[str, str]:
    """What Mastodon shows for a converted type (Page): title, summary and the HTML url."""
    links = document["url"]
    url = next(link["href"] for link in links if link.get("mediaType", "text/html") == "text/html")
    return f"<h2>{document['name']}</h2>\n\n{document['summary']}", url


def test_upload_summary_reads_well_in_mastodon(identity: InstanceIdentity) -> None:
    document = upload_document(identity, make_upload())
    text, url = _mastodon_text(document)
    assert url == document["id"]
    assert text.startswith("<h2>SST 1981-2025 <b>v2</b></h2>")
    summary = document["summary"]
    assert "3.5 GiB in 12 files" in summary
    assert f"<code>{V2}</code>" in summary and f"<code>{V1}</code>" in summary
    assert f'href="{html.escape(document["torrent"])}"' in summary
    assert f'href="{html.escape(document["magnet"])}"' in summary
    assert (
        '<a href="https://data.example.org/datasets/noaa-sst">NOAA sea surface temperature</a>'
        in summary
    )
    assert 'class="mention hashtag" rel="tag"' in summary
    # Caller text is escaped, never passed through as markup.
    assert "<script>" not in summary and "&lt;script&gt;" in summary
    assert "&amp; more" in summary
    assert re.fullmatch(r"(<p>.*?</p>)+", summary, re.S)


def test_upload_as_json_ld_and_signed(
    identity: InstanceIdentity, instance_keys: InstanceKeys
) -> None:
    document = upload_document(identity, make_upload())
    expanded = expand(document)
    assert set(expanded["@type"]) == {AS + "Page", HF + "Upload"}
    assert expanded[HF + "infohashV2"] == [{"@value": V2}]
    assert expanded[HF + "torrent"] == [{"@id": document["torrent"]}]
    assert expanded[HF + "dataset"] == [{"@id": document["dataset"]}]
    assert (
        expanded[HF + "totalSize"][0]["@type"]
        == "http://www.w3.org/2001/XMLSchema#nonNegativeInteger"
    )
    assert expanded[AS + "tag"][0]["@type"] == [AS + "Hashtag"]
    signed = create_proof(document, instance_keys.ed25519_private)
    verify_proof_json(json.dumps(signed).encode())
    expand(signed)


@pytest.mark.parametrize(
    "changes",
    [
        {"infohash_v1": None, "infohash_v2": None},
        {"infohash_v1": "A" * 40},
        {"infohash_v2": "b" * 63},
        {"magnet": "https://x.example/magnet"},
        {"magnet": "magnet:?xt=urn:btih:x y"},
        {"torrent_url": "javascript:alert(1)"},
        {"url": "https://user:pw@data.example.org/u"},
        {"dataset_url": "/datasets/relative"},
        {"total_size": -1},
        {"total_size": True},
        {"file_count": 0},
        {"piece_length": 1000},
        {"piece_length": 8192},
        {"name": "   "},
        {"name": "n" * 600},
        {"tags": ("has space",)},
        {"tags": ("#hash",)},
        {"tags": tuple(f"t{i}" for i in range(40))},
        {"published": datetime(2025, 1, 1)},
    ],
)
def test_bad_upload_input_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(DocumentError):
        upload_document(
            InstanceIdentity("https://data.example.org", "a", "A"), make_upload(**changes)
        )


def test_single_v1_upload(identity: InstanceIdentity) -> None:
    document = upload_document(
        identity, make_upload(infohash_v2=None, file_count=1, total_size=900)
    )
    assert "infohashV2" not in document
    assert "900 B in 1 file." in document["summary"]


def test_human_size() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(260 * 1024**4) == "260.0 TiB"
    assert human_size(5 * 1024**6) == "5120.0 PiB"


# --- datasets ---------------------------------------------------------------------


def test_dataset_document_and_version_chain(identity: InstanceIdentity) -> None:
    first = make_version()
    document = dataset_document(identity, first)
    assert document["type"] == ["Page", "holdfast:Dataset"]
    assert first.content_hash.startswith("sha256:") and len(first.content_hash) == 71
    assert document["contentHash"] == first.content_hash
    assert document["id"] == first.dataset_url + "/versions/" + first.content_hash.removeprefix(
        "sha256:"
    )
    assert document["prov:specializationOf"] == first.dataset_url
    assert "prov:wasRevisionOf" not in document
    assert [part["slug"] for part in document["datasetParts"]] == ["1981", "1982"]

    second = make_version(title="NOAA OISST v2.1", parent_hash=first.content_hash)
    revised = dataset_document(identity, second)
    assert revised["prov:wasRevisionOf"] == document["id"]
    assert revised["id"] != document["id"]

    expanded = expand(revised)
    assert expanded["http://www.w3.org/ns/prov#wasRevisionOf"] == [{"@id": document["id"]}]
    assert expanded["http://www.w3.org/ns/prov#specializationOf"] == [{"@id": first.dataset_url}]
    assert expanded[HF + "contentHash"] == [{"@value": second.content_hash}]


def test_content_hash_is_stable_and_covers_content() -> None:
    base = make_version()
    assert make_version(tags=("ocean", "climate")).content_hash == base.content_hash
    assert (
        make_version(published=datetime(2030, 1, 1, tzinfo=UTC)).content_hash == base.content_hash
    )
    changed = [
        make_version(title="Other"),
        make_version(description="Other"),
        make_version(tags=("climate",)),
        make_version(source_url=None),
        make_version(threat=None),
        make_version(scarcity="rare"),
        make_version(parts=(DatasetPartInfo("1981", "Year 1981"),)),
        make_version(
            parts=(DatasetPartInfo("1982", "Year 1982"), DatasetPartInfo("1981", "Year 1981"))
        ),
        make_version(parent_hash="sha256:" + "0" * 64),
        make_version(dataset_url="https://other.example/datasets/noaa-sst"),
    ]
    hashes = {version.content_hash for version in changed}
    assert base.content_hash not in hashes and len(hashes) == len(changed)
    # Pinned: any change to the hashing rule would split instances' version chains.
    pinned = DatasetVersionInfo(
        dataset_url="https://a.example/datasets/x", slug="x", title="X", published=WHEN
    )
    assert pinned.content_hash == (
        "sha256:"
        + __import__("hashlib")
        .sha256(
            b'{"dataset":"https://a.example/datasets/x","description":"","parent":null,"parts":[],'
            b'"scarcity":null,"slug":"x","sourceUrl":null,"tags":[],"threat":null,"title":"X"}'
        )
        .hexdigest()
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"slug": "Has Caps"},
        {"slug": ""},
        {"title": ""},
        {"source_url": "file:///etc/passwd"},
        {"threat": "Very Bad!"},
        {"parent_hash": "abc"},
        {"parts": (DatasetPartInfo("a", "A"), DatasetPartInfo("a", "B"))},
        {"description": "d" * 70000},
    ],
)
def test_bad_dataset_input_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(DocumentError):
        make_version(**changes)


def test_bad_part_is_refused() -> None:
    with pytest.raises(DocumentError):
        DatasetPartInfo("../etc", "x")


def test_tombstone() -> None:
    gone = tombstone("https://data.example.org/uploads/x", ["Page", "holdfast:Upload"], WHEN)
    assert gone["type"] == "Tombstone"
    assert gone["formerType"] == ["Page", "holdfast:Upload"]
    assert gone["deleted"] == "2025-03-01T09:30:00Z"
    with pytest.raises(DocumentError):
        tombstone("not a url", "Page", WHEN)


def test_holdfast_terms_do_not_redefine_protected_terms() -> None:
    terms = holdfast_terms()
    assert not {"id", "type", "proof"} & set(terms)
