"""An upload's holdfast.yaml travels with its signed object: peers that mirror the
upload show and index the same metadata, follow it being handed over or withdrawn at
the origin, and keep the upload (without metadata) when what arrives is not the
torrent's own valid file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from holdfast.accounts.models import Role
from holdfast.arrays.models import UploadMetadata
from holdfast.arrays.stored import put_metadata
from holdfast.catalogue.models import Upload
from holdfast.federation.models import FedObject
from holdfast.federation.proofs import verify_proof
from holdfast.federation.replication import _carried_metadata, _newer
from holdfast.torrents import parse_torrent
from tests.arrays.test_upload_metadata import YAML, described_upload
from tests.federation.interop.instances import InstanceThread, wait_until
from tests.instance.helpers import make_dataset, make_user

pytest.importorskip("jsonschema")
pytestmark = pytest.mark.slow
TIMEOUT = 60.0


def metadata_of(node: InstanceThread, infohash: str) -> dict[str, Any] | None:
    with node.instance.db.read() as s:
        upload = s.query(Upload).filter(Upload.infohash_v2 == infohash).one_or_none()
        if upload is None:
            upload = s.query(Upload).filter(Upload.infohash_v1 == infohash).one_or_none()
        if upload is None:
            return None
        row = s.get(UploadMetadata, upload.id)
        return None if row is None else {"display": row.display, "yaml": row.yaml}


def stored_object(node: InstanceThread, infohash: str) -> dict[str, Any]:
    with node.instance.db.read() as s:
        obj = s.query(FedObject).filter(FedObject.infohash == infohash).one()
        return dict(json.loads(obj.json))


def hand_over(node: InstanceThread, headers: dict[str, str], infohash: str, text: str | None):
    response = httpx.post(
        f"{node.base_url}/api/v1/uploads/{infohash}/metadata",
        json={"content": text},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_metadata_is_backfilled_updated_and_withdrawn_on_a_peer(
    make_settings: Any, tmp_path: Path
) -> None:
    with (
        InstanceThread(make_settings, name="alpha") as a,
        InstanceThread(make_settings, name="beta") as b,
    ):
        owner = make_user(a.instance, "owner", Role.uploader)
        dataset = make_dataset(a.instance, owner, title="Glaciers", description="Ice")
        first, text = described_upload(a.instance, owner, dataset.slug, tmp_path)
        shown = hand_over(a, owner.headers, first.infohash, text)["metadata"]
        assert shown["title"].startswith("Glacier melt")

        # Backfill: the Create and the Update (metadata handed over after it) both arrive.
        admin = make_user(b.instance, "root", Role.admin).headers
        response = httpx.post(
            f"{b.base_url}/api/v1/federation/follows",
            json={"actor": a.actor_url},
            headers=admin,
            timeout=30,
        )
        assert response.status_code == 202, response.text
        wait_until(
            lambda: metadata_of(b, first.infohash), timeout=TIMEOUT, what="backfilled metadata"
        )
        mirrored = metadata_of(b, first.infohash)
        assert mirrored == {"display": shown, "yaml": text}
        # It is the origin's signed object, as received.
        document = stored_object(b, first.infohash)
        assert document["holdfastYaml"] == text
        a_key = a.app.state.federation.keys.public_key_multibase
        assert verify_proof(document).public_key_multibase == a_key
        # The peer's pages, API and search show it like its own.
        page = httpx.get(f"{b.base_url}/uploads/{first.infohash}", timeout=30)
        assert page.status_code == 200
        assert "Marie &lt;b&gt;Tharp&lt;/b&gt;" in page.text
        api = httpx.get(f"{b.base_url}/api/v1/uploads/{first.infohash}/metadata", timeout=30)
        assert api.json()["metadata"] == shown
        found = httpx.get(f"{b.base_url}/api/v1/search", params={"q": "ablation"}, timeout=30)
        assert first.infohash in found.text

        # Live: a new upload, then its metadata, withdrawn, handed over again. (It cannot
        # change otherwise: it is a file inside the torrent.)
        second, text = described_upload(
            a.instance, owner, dataset.slug, tmp_path, YAML + "# a second survey\n"
        )
        wait_until(lambda: _mirrored(b, second.infohash), timeout=TIMEOUT, what="the second upload")
        assert metadata_of(b, second.infohash) is None
        hand_over(a, owner.headers, second.infohash, text)
        wait_until(lambda: metadata_of(b, second.infohash), timeout=TIMEOUT, what="live metadata")
        hand_over(a, owner.headers, second.infohash, None)
        wait_until(
            lambda: metadata_of(b, second.infohash) is None,
            timeout=TIMEOUT,
            what="withdrawn metadata",
        )
        assert "holdfastYaml" not in stored_object(b, second.infohash)
        hand_over(a, owner.headers, second.infohash, text)  # and handed over again
        wait_until(lambda: metadata_of(b, second.infohash), timeout=TIMEOUT, what="metadata again")
        assert metadata_of(b, first.infohash) == {"display": shown, "yaml": YAML}

        # With the origin gone, a new peer gets both from B, still signed by A.
        a.stop()
        with InstanceThread(make_settings, name="gamma") as c:
            response = httpx.post(
                f"{c.base_url}/api/v1/federation/follows",
                json={"actor": b.actor_url},
                headers=make_user(c.instance, "root", Role.admin).headers,
                timeout=30,
            )
            assert response.status_code == 202, response.text
            for upload, yaml in ((first, YAML), (second, text)):
                wait_until(
                    lambda u=upload: metadata_of(c, u.infohash),
                    timeout=TIMEOUT,
                    what="metadata from B",
                )
                assert metadata_of(c, upload.infohash) == metadata_of(b, upload.infohash)
                assert (metadata_of(c, upload.infohash) or {})["yaml"] == yaml
                document = stored_object(c, upload.infohash)
                assert verify_proof(document).public_key_multibase == a_key


def test_metadata_that_is_not_the_torrents_own_is_not_kept(
    make_settings: Any, tmp_path: Path
) -> None:
    with (
        InstanceThread(make_settings, name="alpha") as a,
        InstanceThread(make_settings, name="beta") as b,
    ):
        owner = make_user(a.instance, "owner", Role.uploader)
        dataset = make_dataset(a.instance, owner, title="Glaciers", description="Ice")
        upload, text = described_upload(a.instance, owner, dataset.slug, tmp_path)
        admin = make_user(b.instance, "root", Role.admin).headers
        response = httpx.post(
            f"{b.base_url}/api/v1/federation/follows",
            json={"actor": a.actor_url},
            headers=admin,
            timeout=30,
        )
        assert response.status_code == 202, response.text
        wait_until(lambda: _mirrored(b, upload.infohash), timeout=TIMEOUT, what="the upload")
        # The origin signs a holdfast.yaml that is not the one inside the torrent (its
        # pieces do not match): the peer keeps the newer object, but not that metadata.
        forged = text.replace("Glacier melt", "Forged")
        with a.instance.db.write() as s:
            put_metadata(s, upload.id, forged, ({"title": "Forged"}, "forged"), None)
        wait_until(
            lambda: stored_object(b, upload.infohash).get("holdfastYaml") == forged,
            timeout=TIMEOUT,
            what="the Update",
        )
        assert metadata_of(b, upload.infohash) is None
        found = httpx.get(f"{b.base_url}/api/v1/search", params={"q": "forged"}, timeout=30)
        assert upload.infohash not in found.text


def _mirrored(node: InstanceThread, infohash: str) -> bool:
    with node.instance.db.read() as s:
        return (
            s.query(Upload)
            .filter((Upload.infohash_v2 == infohash) | (Upload.infohash_v1 == infohash))
            .count()
            == 1
        )


def test_carried_metadata_is_checked_against_the_torrent(tmp_path: Path) -> None:
    from holdfast.torrents import create_torrent

    folder = tmp_path / "glacier"
    folder.mkdir()
    (folder / "notes.txt").write_text("stake readings\n")
    (folder / "holdfast.yaml").write_text(YAML)
    torrent = parse_torrent(create_torrent(folder, version="hybrid").data)
    kept = _carried_metadata({"holdfastYaml": YAML}, torrent)
    assert kept is not None and kept[0] == YAML and kept[1][0]["title"].startswith("Glacier")
    for carried in (YAML + "\n# changed", 42, None, "x" * (256 * 1024 + 1)):
        assert _carried_metadata({"holdfastYaml": carried}, torrent) is None
    assert _newer({"updated": "2026-01-02T00:00:00Z"}, {"updated": "2026-01-01T00:00:00Z"})
    assert _newer({"updated": "2026-01-02T00:00:00Z"}, {})
    assert not _newer({"updated": "2026-01-01T00:00:00Z"}, {"updated": "2026-01-01T00:00:00Z"})
    assert not _newer({}, {"updated": "2026-01-01T00:00:00Z"})
    assert not _newer({"updated": "yesterday"}, {})
