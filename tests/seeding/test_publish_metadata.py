"""`holdfast publish` of a folder described by holdfast.yaml, against a real instance.

The file is checked (and its arrays against the real zarr arrays) before anything is
hashed or sent; the new dataset takes its title, description, licence and tags from it;
the upload's description carries it (shown on the upload page, found by search); the
zarr metadata documents are handed to the instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from holdfast.arrays.publish import (
    CONTENTS_HEADING,
    SHORTENED_NOTE,
    prepare_publication,
    upload_description,
)
from holdfast.catalogue.text import render_markdown, words
from holdfast.seeding.storage import upload_folder
from holdfast.torrents import parse_torrent
from tests.seeding.live import Live, holdfast, live_instance, publish_env
from tests.seeding.test_publish import infohash_of

zarr = pytest.importorskip("zarr")
pytest.importorskip("numpydantic")
pytest.importorskip("jsonschema")

pytestmark = pytest.mark.slow

YAML = """\
title: Kelp forest sonar survey, 2024
description: |
  Split-beam echosounder pings over the **Monterey** kelp canopy.
creators:
  - name: Ada Lovelace
    orcid: 0000-0002-1825-0097
    affiliation: Analytical Engine Society
keywords: [hydroacoustics, kelp forest]
license: CC-BY-4.0
files:
  - path: backscatter.zarr
    format: zarr
    shape: ["* ping", 16]
    dtype: float32
    units: decibels
    description: Volume backscatter of euphausiids per depth bin.
  - path: notes.txt
    format: text
"""


def described_folder(root: Path, text: str = YAML, pings: int = 12) -> Path:
    array = zarr.create_array(
        root / "backscatter.zarr", shape=(pings, 16), chunks=(4, 16), dtype="float32"
    )
    array[:] = 1.5
    (root / "notes.txt").write_text(f"field notes for {root.name}\n")
    (root / "holdfast.yaml").write_text(text)
    return root


def search(live: Live, q: str, kind: str = "upload") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = live.api(f"/api/v1/search?q={q}&kind={kind}")["items"]
    return found


def test_a_described_folder_publishes_with_its_metadata(make_settings: Any, tmp_path: Path) -> None:
    source = described_folder(tmp_path / "src" / "survey")
    out = tmp_path / "survey.torrent"
    with live_instance(make_settings) as live:
        r = holdfast(
            "publish", str(source), "--to", live.base_url, "--description", "first batch",
            "--torrent-out", str(out), "--quiet", env=publish_env(live),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "zarr metadata: 1 documents kept" in r.stderr
        ih = infohash_of(r.stdout)

        # The dataset is the one holdfast.yaml describes.
        upload = live.api(f"/api/v1/uploads/{ih}")
        dataset = live.api(f"/api/v1/datasets/{upload['dataset']}")
        assert dataset["title"] == "Kelp forest sonar survey, 2024"
        assert "**Monterey** kelp canopy" in dataset["description"]
        assert dataset["license"] == "CC-BY-4.0"
        assert dataset["tags"] == ["hydroacoustics", "kelp-forest"]

        # holdfast.yaml is in the torrent (not left out as junk).
        torrent = parse_torrent(out.read_bytes())
        assert "survey/holdfast.yaml" in [f.path for f in torrent.files]

        # The upload's description is its own text; holdfast.yaml is kept beside it.
        assert upload["description"] == "first batch"
        assert "metadata: holdfast.yaml kept by the instance" in r.stderr
        meta = live.api(f"/api/v1/uploads/{ih}/metadata")["metadata"]
        assert meta["title"] == "Kelp forest sonar survey, 2024"
        assert meta["creators"][0]["name"] == "Ada Lovelace"
        assert meta["files"][0]["dtype"] == "float32" and meta["files"][0]["units"] == "decibels"
        for page_url in (f"/uploads/{ih}", f"/datasets/{upload['dataset']}"):
            page = httpx.get(live.base_url + page_url, timeout=10)
            assert page.status_code == 200
            assert '<h2 id="metadata-title">' in page.text
            assert "<td><code>* ping \u00d7 16</code></td>" in page.text
            assert 'href="https://orcid.org/0000-0002-1825-0097"' in page.text

        # Search finds the upload by words only holdfast.yaml has.
        for word in ("euphausiids", "decibels", "Lovelace"):
            hits = search(live, word)
            assert [h["upload"]["infohash"] for h in hits] == [upload["infohash"]], word
        assert search(live, "quokka") == []

        # The zarr metadata documents were handed over, exactly as on disk.
        meta = live.api(f"/api/v1/uploads/{ih}/zarr-metadata")
        assert meta["source"] == "published"
        assert meta["files"] == [
            {
                "path": "survey/backscatter.zarr/zarr.json",
                "content": (source / "backscatter.zarr" / "zarr.json").read_text(),
            }
        ]
        stored = upload_folder(live.instance.settings.resolved_storage_dir, ih) / "survey"
        assert (stored / "holdfast.yaml").read_text() == YAML

        # Flags override the file; the rest still comes from it.
        other = described_folder(tmp_path / "src" / "override", pings=8)
        r = holdfast(
            "publish", str(other), "--to", live.base_url, "--title", "Sonar, second pass",
            "--tag", "sonar", "--quiet", env=publish_env(live),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        upload = live.api(f"/api/v1/uploads/{infohash_of(r.stdout)}")
        dataset = live.api(f"/api/v1/datasets/{upload['dataset']}")
        assert dataset["title"] == "Sonar, second pass" and dataset["tags"] == ["sonar"]
        assert dataset["license"] == "CC-BY-4.0"
        assert "Monterey" in dataset["description"]

        # An existing dataset: nothing is created, the upload still carries the metadata.
        third = described_folder(tmp_path / "src" / "into-existing", pings=4)
        r = holdfast(
            "publish", str(third), "--to", live.base_url, "--dataset", live.dataset,
            "--quiet", env=publish_env(live),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        upload = live.api(f"/api/v1/uploads/{infohash_of(r.stdout)}")
        assert upload["dataset"] == live.dataset
        assert upload["description"] == ""
        assert live.api(f"/api/v1/uploads/{upload['infohash']}/metadata")["metadata"] is not None
        assert live.api("/api/v1/datasets")["total"] == 3


def test_a_v1_torrent_keeps_its_zarr_metadata_only_when_aligned(
    make_settings: Any, tmp_path: Path
) -> None:
    with live_instance(make_settings) as live:
        plain = described_folder(tmp_path / "src" / "plain-v1")
        r = holdfast(
            "publish", str(plain), "--to", live.base_url, "--version", "v1", "--quiet",
            env=publish_env(live),
        )  # fmt: skip
        # The upload stands; the instance could not check the documents against v1 pieces.
        assert r.returncode == 0, r.stderr
        assert "did not keep the zarr metadata documents" in r.stderr
        assert "did not keep holdfast.yaml" in r.stderr and "piece hashes" in r.stderr
        assert "--align zarr" in r.stderr
        ih = infohash_of(r.stdout)
        assert live.api(f"/api/v1/uploads/{ih}")["status"] == "approved"
        assert live.api(f"/api/v1/uploads/{ih}/zarr-metadata")["source"] != "published"

        # The same title again: stopped before hashing, with the way to add to it.
        aligned = described_folder(tmp_path / "src" / "aligned-v1", pings=8)
        r = holdfast("publish", str(aligned), "--to", live.base_url, "--version", "v1",
                     "--align", "zarr", env=publish_env(live))  # fmt: skip
        assert r.returncode == 1 and "hashing" not in r.stderr
        slug = "kelp-forest-sonar-survey-2024"
        assert f"with --dataset {slug}" in r.stderr
        assert live.api("/api/v1/datasets")["total"] == 2

        r = holdfast(
            "publish", str(aligned), "--to", live.base_url, "--version", "v1",
            "--align", "zarr", "--dataset", slug, "--quiet", env=publish_env(live),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "zarr metadata: 1 documents kept" in r.stderr
        assert "metadata: holdfast.yaml kept by the instance" in r.stderr
        meta = live.api(f"/api/v1/uploads/{infohash_of(r.stdout)}/zarr-metadata")
        assert meta["source"] == "published"
        assert [f["path"] for f in meta["files"]] == ["aligned-v1/backscatter.zarr/zarr.json"]


def test_a_wrong_description_stops_before_anything_is_sent(
    make_settings: Any, tmp_path: Path
) -> None:
    source = described_folder(tmp_path / "src" / "wrong")
    cases = [
        # (holdfast.yaml, what the error must say)
        (YAML.replace("dtype: float32", "dtype: int16"), "holdfast.yaml:14: files[0].dtype"),
        (YAML.replace('["* ping", 16]', '["* ping", 17]'), "holdfast.yaml:13: files[0].shape"),
        (YAML.replace("[hydroacoustics, kelp forest]", "[hydroacoustics"), "holdfast.yaml:9:"),
        (YAML.replace("title: Kelp", "name: Kelp"), "'title' is missing"),
    ]
    with live_instance(make_settings) as live:
        storage = live.instance.settings.resolved_storage_dir
        for text, expected in cases:
            (source / "holdfast.yaml").write_text(text)
            r = holdfast(
                "publish", str(source), "--to", live.base_url, "--torrent-out",
                str(tmp_path / "never.torrent"), env=publish_env(live),
            )  # fmt: skip
            assert r.returncode == 1, (expected, r.stdout, r.stderr)
            assert "holdfast.yaml is not valid" in r.stderr and expected in r.stderr, r.stderr
            assert "hashing" not in r.stderr  # stopped before the torrent was made
            assert not (tmp_path / "never.torrent").exists()
            assert live.api("/api/v1/uploads")["total"] == 0
            assert [d["slug"] for d in live.api("/api/v1/datasets")["items"]] == [live.dataset]
            assert not any(storage.glob("*/wrong"))

        # --dataset and --title together are a usage error; neither is one without the file.
        (source / "holdfast.yaml").write_text(YAML)
        r = holdfast("publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
                     "--title", "Both", env=publish_env(live))  # fmt: skip
        assert r.returncode == 2 and "only one of --dataset" in r.stderr
        (source / "holdfast.yaml").unlink()
        r = holdfast("publish", str(source), "--to", live.base_url, env=publish_env(live))
        assert r.returncode == 2 and "holdfast.yaml" in r.stderr
        assert live.api("/api/v1/uploads")["total"] == 0

        # Without zarr the arrays cannot be checked: the file still is, and it says so.
        (source / "holdfast.yaml").write_text(YAML.replace("dtype: float32", "dtype: int16"))
        blocker = tmp_path / "no-zarr" / "zarr"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text("raise ImportError(\"No module named 'zarr'\")\n")
        env = publish_env(live) | {"PYTHONPATH": str(blocker.parent)}
        r = holdfast("publish", str(source), "--to", live.base_url, "--quiet", env=env)
        assert r.returncode == 0, r.stderr
        assert "the arrays were not checked against holdfast.yaml" in r.stderr
        assert "zarr metadata: 1 documents kept" in r.stderr
        meta = live.api(f"/api/v1/uploads/{infohash_of(r.stdout)}/metadata")["metadata"]
        assert meta["files"][0]["dtype"] == "int16"


def test_the_description_section_stays_within_the_instance_limit(tmp_path: Path) -> None:
    long_text = "A sentence about krill and sonar. " * 4000  # ~136,000 characters
    text = YAML.replace(
        "  Split-beam echosounder pings", "  " + long_text + "\n  Split-beam echosounder pings"
    )
    publication = prepare_publication(described_folder(tmp_path / "long", text))
    own = "Our *own* words | kept whole."
    description = upload_description(own, publication)
    assert len(description) <= 100_000
    assert description.startswith(own + "\n\n" + CONTENTS_HEADING)
    assert description.endswith(SHORTENED_NOTE)
    assert len(upload_description(own, publication, limit=60)) == len(own)  # no room

    # Not shortened: every word search would index is in the section, and it renders.
    publication = prepare_publication(described_folder(tmp_path / "short"))
    description = upload_description("", publication)
    assert description.startswith(CONTENTS_HEADING)
    assert set(words(publication.search_text)) <= set(words(description))
    html = render_markdown(description)
    assert "<strong>Creators:</strong> Ada Lovelace" in html
    assert "<td><code>backscatter.zarr</code></td>" in html
