"""prepare_publication: what `holdfast publish` hands the instance for a dataset folder."""

from __future__ import annotations

from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")
pytest.importorskip("numpydantic")
pytest.importorskip("jsonschema")

from holdfast.arrays import MetadataError  # noqa: E402
from holdfast.arrays.extension import MetadataDocument, check_documents  # noqa: E402
from holdfast.arrays.publish import prepare_publication  # noqa: E402
from holdfast.torrents import create_torrent  # noqa: E402

YAML = """\
title: Visual cortex recordings
description: Two-photon frames of mouse V1.
creators:
  - name: Ada Lovelace
    orcid: 0000-0002-1825-0097
keywords: [two-photon, mouse]
license: CC-BY-4.0
files:
  - path: frames.zarr
    format: zarr
    shape: ["* time", 32, 32]
    dtype: uint16
    units: photons
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    array = zarr.create_array(
        root / "frames.zarr", shape=(8, 32, 32), chunks=(2, 32, 32), dtype="uint16"
    )
    array[:] = 3
    (root / "holdfast.yaml").write_text(YAML)
    return root


def test_a_described_folder_gives_what_the_instance_stores(folder: Path) -> None:
    publication = prepare_publication(folder)
    assert publication.title == "Visual cortex recordings"
    assert publication.keywords == ["two-photon", "mouse"]
    assert publication.license == "CC-BY-4.0"
    assert publication.creators[0]["orcid_url"] == "https://orcid.org/0000-0002-1825-0097"
    assert publication.files[0]["shape"] is not None
    assert publication.files[0]["dtype"] == "uint16"
    assert "photons" in publication.search_text and "Ada Lovelace" in publication.search_text
    assert publication.metadata_yaml == YAML
    assert publication.warnings == []
    assert set(publication.as_dict()) >= {"title", "display", "search_text", "files"}
    # the zarr metadata documents, with their torrent paths, verify against the torrent
    assert [d["path"] for d in publication.metadata_files] == ["recordings/frames.zarr/zarr.json"]
    torrent = create_torrent(folder, version="hybrid", align="zarr").torrent
    docs = [MetadataDocument(**d) for d in publication.metadata_files]
    assert check_documents(torrent, docs) == docs


def test_problems_point_at_the_line_and_the_array(folder: Path) -> None:
    (folder / "holdfast.yaml").write_text(YAML.replace("dtype: uint16", "dtype: float32"))
    with pytest.raises(MetadataError) as caught:
        prepare_publication(folder)
    text = str(caught.value)
    assert "holdfast.yaml:" in text and "float32" in text
    (folder / "holdfast.yaml").unlink()
    with pytest.raises(MetadataError, match=r"has no holdfast\.yaml"):
        prepare_publication(folder)
    with pytest.raises(MetadataError, match="is not a folder"):
        prepare_publication(folder / "missing")
