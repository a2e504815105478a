"""The LinkML schema, the JSON Schema generated from it, and the code that relies on both."""

from __future__ import annotations

import json
import re

import pytest

jsonschema = pytest.importorskip("jsonschema")

from holdfast.arrays.metadata import CONTAINER_FORMATS, json_schema  # noqa: E402
from holdfast.arrays.schema import (  # noqa: E402
    JSON_SCHEMA_FILE,
    LinkMLUnavailable,
    generate_json_schema,
    schema_dir,
)
from holdfast.arrays.shapes import DIMENSION_PATTERN, DTYPE_FAMILIES, DTYPE_NAMES  # noqa: E402


def test_committed_json_schema_is_what_linkml_generates() -> None:
    try:
        generated = generate_json_schema()
    except LinkMLUnavailable:
        pytest.skip("LinkML is not installed (pip install linkml)")
    committed = (schema_dir() / JSON_SCHEMA_FILE).read_text()
    assert json.loads(generated) == json.loads(committed), (
        "holdfast.schema.json is stale: run python -m holdfast.arrays.schema"
    )


def test_json_schema_is_a_valid_schema() -> None:
    schema = json_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert schema["required"] == ["title"]


def test_dtype_enum_matches_the_code() -> None:
    enum = json_schema()["$defs"]["DType"]["enum"]
    assert sorted(enum) == sorted(DTYPE_NAMES + DTYPE_FAMILIES)


def test_container_formats_are_formats() -> None:
    formats = set(json_schema()["$defs"]["FileFormat"]["enum"])
    assert formats >= CONTAINER_FORMATS
    assert {
        "zarr",
        "hdf5",
        "nwb",
        "npy",
        "csv",
        "netcdf",
        "mp4",
        "tiff",
        "parquet",
        "other",
    } <= formats


@pytest.mark.parametrize(
    "item",
    [
        "*",
        "* time",
        "512",
        "512 y",
        "2-10",
        "2-*",
        "*-9 x",
        "...",
        " * t ",
        "* Time",
        "x",
        "1 2",
        "*-*",
        "-1",
        "2 - 3",
        "..",
        "... rest",
        "3_4",
    ],
)
def test_shape_item_pattern_agrees_with_the_parser(item: str) -> None:
    items = json_schema()["$defs"]["DataFile"]["properties"]["shape"]["items"]["anyOf"]
    pattern = next(s["pattern"] for s in items if s.get("type") == "string")
    assert bool(re.search(pattern, item)) == bool(DIMENSION_PATTERN.match(item))
