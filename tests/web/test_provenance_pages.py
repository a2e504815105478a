"""Provenance on the pages: a mirrored dataset or upload says where it came from.

Real instances on 127.0.0.1 (uvicorn in threads, jobs running): beta follows alpha and
gamma, which both publish the same torrent; beta's pages, listings, search and feeds
name the origin, list both sources of the shared upload, show the proofs verified, and
mark the origin unreachable once alpha is stopped. Pages of items published here show
no provenance section; an instance without federation renders its pages as before.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from markupsafe import escape

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Upload
from holdfast.catalogue.schemas import UploadIn
from holdfast.db.base import utcnow
from holdfast.federation.keys import multikey_block
from holdfast.federation.models import FedObject, Peer
from holdfast.federation.proofs import create_proof
from tests.federation.interop.instances import InstanceThread, wait_until
from tests.instance.helpers import make_dataset, make_upload, make_user
from tests.instance.torrents import sample_torrent

TIMEOUT = 60.0
EVIL_TITLE = '<img src=x onerror="alert(1)">Alpha & co'
EVIL_DATASET = "<script>alert('ds')</script>Glaciers"
EVIL_SUMMARY = "Ice <script>alert('summary')</script> cores"


def provenance_section(page: str) -> str:
    """The page's provenance section, or "" when it has none."""
    found = re.search(r'<section id="provenance".*?</section>', page, re.S)
    return found.group(0) if found else ""


def sources_of(node: InstanceThread, infohash: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{node.base_url}/api/v1/federation/provenance/uploads/{infohash}")
    return list(response.json().get("sources", [])) if response.status_code == 200 else []


def follow(node: InstanceThread, headers: dict[str, str], actor: str) -> None:
    response = httpx.post(
        f"{node.base_url}/api/v1/federation/follows",
        json={"actor": actor},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text


def peer_of(node: InstanceThread, actor: str) -> Peer | None:
    with node.instance.db.read() as s:
        return s.query(Peer).filter_by(actor_id=actor).one_or_none()


@pytest.mark.slow
def test_mirrored_items_name_their_origin(make_settings: Any, tmp_path: Path) -> None:
    # beta first: it gets the parametrised database (SQLite, then PostgreSQL).
    with (
        InstanceThread(make_settings, name="beta") as b,
        InstanceThread(make_settings, name="alpha", instance_title=EVIL_TITLE) as a,
        InstanceThread(make_settings, name="gamma") as c,
    ):
        owner = make_user(a.instance, "owner", Role.uploader)
        dataset = make_dataset(
            a.instance, owner, title=EVIL_DATASET, description=EVIL_SUMMARY, tags=["ice"]
        )
        own = make_upload(a.instance, owner, dataset.slug, tmp_path)
        shared_torrent = sample_torrent(tmp_path / "shared", "shared", seed="same")
        shared = a.instance.catalogue.create_upload(
            owner.account, UploadIn(dataset=dataset.slug), shared_torrent
        )
        c_owner = make_user(c.instance, "keeper", Role.uploader)
        c_dataset = make_dataset(c.instance, c_owner, title="Rivers at gamma")
        c.instance.catalogue.create_upload(
            c_owner.account, UploadIn(dataset=c_dataset.slug), shared_torrent
        )
        b_admin = make_user(b.instance, "root", Role.admin)
        b_owner = make_user(b.instance, "local", Role.uploader)
        b_dataset = make_dataset(b.instance, b_owner, title="Published at beta")
        b_upload = make_upload(b.instance, b_owner, b_dataset.slug, tmp_path)

        follow(b, b_admin.headers, a.actor_url)
        follow(b, b_admin.headers, c.actor_url)
        wait_until(
            lambda: len(sources_of(b, shared.infohash)) == 2 and sources_of(b, own.infohash),
            timeout=TIMEOUT,
            what="both sources of the shared upload and alpha's own upload",
        )
        with b.instance.db.read() as s:
            mirrored_slug = (
                s.query(Upload).filter_by(infohash_v2=own.infohash_v2).one().dataset.slug
            )

        # The upload page of alpha's upload: alpha is its origin, its proof verified.
        page = httpx.get(f"{b.base_url}/uploads/{own.infohash}")
        assert page.status_code == 200
        section = provenance_section(page.text)
        assert "Mirrored from" in section
        assert f"<code>{a.host}</code>" in section
        assert f'href="{a.base_url}/uploads/{own.infohash}"' in section
        assert section.count('<li class="source">') == 1
        assert '<dd class="proof verified">verified' in section
        assert "current" in section
        assert "unreachable" not in section
        assert f'href="/api/v1/federation/provenance/uploads/{own.infohash}"' in section
        assert f'href="{b.base_url}/ap/uploads/{own.infohash}"' in section
        assert f"holdfast verify {b.base_url}/ap/uploads/{own.infohash}" in section
        # The peer's title is shown, escaped; nothing of it reaches the page as markup.
        assert str(escape(EVIL_TITLE)) in section
        assert '<img src=x onerror="alert(1)">' not in page.text
        assert "<script>alert(" not in page.text

        # The shared upload: one entry, both instances listed as its sources.
        page = httpx.get(f"{b.base_url}/uploads/{shared.infohash}")
        section = provenance_section(page.text)
        assert section.count('<li class="source">') == 2
        assert f"<code>{a.host}</code>" in section and f"<code>{c.host}</code>" in section
        assert section.count('<dd class="proof verified">') == 2
        assert "held by 1 other instance" in section
        with b.instance.db.read() as s:
            assert s.query(Upload).filter_by(infohash_v2=shared.infohash_v2).count() == 1

        # The dataset page names alpha and links its page of the dataset.
        page = httpx.get(f"{b.base_url}/datasets/{mirrored_slug}")
        section = provenance_section(page.text)
        assert "Mirrored from" in section and f"<code>{a.host}</code>" in section
        assert f'href="{a.base_url}/datasets/{dataset.slug}"' in section
        assert f'href="/api/v1/federation/provenance/datasets/{mirrored_slug}"' in section
        assert "<script>alert(" not in page.text

        # Listings, search and feeds carry the origin; beta's own items do not.
        listing = httpx.get(f"{b.base_url}/datasets").text
        assert f'<span class="origin">from {a.host}</span>' in listing
        assert f'<span class="origin">from {c.host}</span>' in listing
        assert listing.count('<span class="origin">') == 2
        fragment = httpx.get(
            f"{b.base_url}/datasets", headers={"HX-Request": "true", "HX-Target": "dataset-results"}
        ).text
        assert fragment.count('<span class="origin">') == 2
        found = httpx.get(f"{b.base_url}/search", params={"q": "glaciers"}).text
        assert f'<span class="origin">from {a.host}</span>' in found
        beta_found = httpx.get(f"{b.base_url}/search", params={"q": "beta"}).text
        assert "Published at beta" in beta_found and '<span class="origin">' not in beta_found
        feed = httpx.get(f"{b.base_url}/feeds/uploads.rss").text
        assert feed.count(f"Mirrored from {a.host}.") == 2  # own and shared, first from alpha
        assert feed.count("Mirrored from") == 2  # beta's own upload names no origin

        # Items published here: no provenance section, on beta and at the origin.
        for node, path in (
            (b, f"/uploads/{b_upload.infohash}"),
            (b, f"/datasets/{b_dataset.slug}"),
            (a, f"/uploads/{own.infohash}"),
            (a, f"/datasets/{dataset.slug}"),
        ):
            page = httpx.get(f"{node.base_url}{path}")
            assert page.status_code == 200
            assert provenance_section(page.text) == ""
            assert "Mirrored from" not in page.text

        # Alpha goes away: nothing is deleted, the page says since when it is unreachable.
        a.stop()
        peer = peer_of(b, a.actor_url)
        assert peer is not None
        response = httpx.post(
            f"{b.base_url}/api/v1/federation/peers/{peer.id}/sync",
            headers=b_admin.headers,
            timeout=30,
        )
        assert response.status_code < 300, response.text
        wait_until(
            lambda: (p := peer_of(b, a.actor_url)) is not None and p.unreachable_since,
            timeout=TIMEOUT,
            what="alpha marked unreachable",
        )
        page = httpx.get(f"{b.base_url}/uploads/{own.infohash}")
        assert page.status_code == 200
        section = provenance_section(page.text)
        assert "origin unreachable since <time" in section
        assert '<dd class="proof verified">' in section
        page = httpx.get(f"{b.base_url}/uploads/{shared.infohash}")
        section = provenance_section(page.text)
        assert section.count("origin unreachable since") == 1  # gamma is still there


def _peer_object(
    instance: Any, upload: Any, *, origin: str, name: str, listed: bool, tamper: bool = False
) -> None:
    """A peer's object on `upload`, signed by a key the peer lists (or not)."""
    key = ed25519.Ed25519PrivateKey.generate()
    document = {
        "@context": ["https://www.w3.org/ns/activitystreams"],
        "id": f"{origin.removesuffix('/actor')}/uploads/{upload.infohash}",
        "type": ["Page", "holdfast:Upload"],
        "attributedTo": origin,
        "name": upload.name,
        "summary": "<p>peer summary</p>",
        "url": [{"type": "Link", "href": "javascript:alert(1)", "mediaType": "text/html"}],
    }
    signed = create_proof(document, key)
    if tamper:
        signed["name"] = "changed after signing"
    actor: dict[str, Any] = {"id": origin, "type": "Service", "name": name}
    if listed:
        actor["assertionMethod"] = [multikey_block(origin, key.public_key())]
    with instance.db.write() as s:
        s.add(
            Peer(
                actor_id=origin,
                host=origin.split("/")[2],
                actor_json=json.dumps(actor),
                unreachable_since=utcnow(),
            )
        )
        s.add(
            FedObject(
                object_id=document["id"],
                kind="upload",
                origin=origin,
                received_from=origin,
                infohash=upload.infohash,
                upload_id=upload.id,
                json=json.dumps(signed),
            )
        )


def test_pages_without_federation(make_settings: Any, tmp_path: Path) -> None:
    """Federation off: local pages as before; objects already stored still show their
    origin, each proof checked again (verified, unconfirmed key, tampered)."""
    from fastapi.testclient import TestClient

    from holdfast.app import create_app

    app = create_app(make_settings(federation=False))
    instance = app.state.instance
    assert "federation" not in instance.services
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner, title="Local rivers")
    local = make_upload(instance, owner, dataset.slug, tmp_path)
    mirrored = [make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(3)]
    also_here = make_upload(instance, owner, dataset.slug, tmp_path)
    with instance.db.write() as s:  # as replication stores a peer's uploads: no account
        s.query(Upload).filter(Upload.id.in_([u.id for u in mirrored])).update({"account_id": None})
    with TestClient(app) as client:
        for path in (f"/uploads/{local.infohash}", f"/datasets/{dataset.slug}", "/datasets"):
            page = client.get(path)
            assert page.status_code == 200
            assert provenance_section(page.text) == ""
            assert '<span class="origin">' not in page.text

        _peer_object(
            instance,
            mirrored[0],
            origin="https://one.example/actor",
            name="<b>One</b>",
            listed=True,
        )
        _peer_object(
            instance, mirrored[1], origin="https://two.example/actor", name="Two", listed=False
        )
        _peer_object(
            instance,
            mirrored[2],
            origin="https://three.example/actor",
            name="Three",
            listed=True,
            tamper=True,
        )
        # The same torrent published here and at a peer: published here, the peer listed.
        _peer_object(
            instance, also_here, origin="https://four.example/actor", name="Four", listed=True
        )
        section = provenance_section(client.get(f"/uploads/{also_here.infohash}").text)
        assert section.startswith('<section id="provenance"')
        assert "Published here, and also held by" in section and "Mirrored from" not in section
        assert "<code>four.example</code>" in section
        expected = {
            0: ('<dd class="proof verified">', "one.example"),
            1: ('<dd class="proof unconfirmed">', "two.example"),
            2: ('<dd class="proof failed">failed: signature does not match', "three.example"),
        }
        for n, (proof, host) in expected.items():
            page = client.get(f"/uploads/{mirrored[n].infohash}")
            assert page.status_code == 200
            section = provenance_section(page.text)
            assert proof in section
            assert f"<code>{host}</code>" in section
            assert "origin unreachable since" in section
            assert "javascript:" not in section  # only http(s) links to the origin
            assert "/api/v1/federation/provenance" not in section  # no such route here
        assert "&lt;b&gt;One&lt;/b&gt;" in client.get(f"/uploads/{mirrored[0].infohash}").text
        assert provenance_section(client.get(f"/uploads/{local.infohash}").text) == ""
        feed = client.get("/feeds/uploads.rss").text
        for host in ("one.example", "two.example", "three.example"):
            assert f"Mirrored from {host}." in feed
        assert feed.count("Mirrored from") == 3  # not the one published here too
        found = client.get("/search", params={"q": mirrored[1].name}).text
        assert '<span class="origin">from two.example</span>' in found
        found = client.get("/search", params={"q": also_here.name}).text
        assert also_here.name in found and '<span class="origin">' not in found
