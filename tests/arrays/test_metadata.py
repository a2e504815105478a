"""holdfast.yaml: loading, validation with located errors, search text and display."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("jsonschema")

from holdfast.arrays.errors import MetadataError, Problem
from holdfast.arrays.metadata import (
    MAX_METADATA_BYTES,
    DatasetMetadata,
    load_metadata,
    metadata_from_dict,
    orcid_is_valid,
    search_text,
    to_display,
)

EXAMPLE = Path(__file__).parent.parent / "data" / "arrays" / "holdfast.yaml"


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(MetadataError) as caught:
        load_metadata(text)
    return caught.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_example_loads_into_typed_metadata() -> None:
    meta = load_metadata(EXAMPLE)
    assert isinstance(meta, DatasetMetadata)
    assert meta.title == "Mouse V1 two-photon calcium imaging, 2021 cohort"
    assert meta.source == "holdfast.yaml"
    carberry = meta.creators[0]
    # the URL form is accepted and stored as the bare iD
    assert carberry.orcid == "0000-0002-1825-0097"
    assert carberry.orcid_url == "https://orcid.org/0000-0002-1825-0097"
    assert meta.creators[1].orcid is None
    assert meta.license == "CC-BY-4.0"  # canonical SPDX spelling of "cc-by-4.0"
    assert meta.keywords == ("neuroscience", "calcium imaging", "visual cortex")
    assert meta.temporal_coverage is not None
    assert meta.temporal_coverage.start == "2021-03-01"
    assert meta.spatial_coverage is not None
    assert meta.spatial_coverage.bounding_box is not None
    assert meta.spatial_coverage.bounding_box.west == pytest.approx(-71.41)
    # YAML 1.1 would have read the country code NO as false
    assert meta.spatial_coverage.places == ("Providence", "NO")
    doi = meta.related_identifiers[0]
    assert doi.identifier == "10.5281/zenodo.1234567"  # resolver prefix removed
    assert doi.url == "https://doi.org/10.5281/zenodo.1234567"
    frames = meta.files[0]
    assert frames.path == "frames.zarr"
    assert frames.format == "zarr"
    assert frames.spec.dtype == "uint16"
    assert frames.spec.shape_text == "* time \u00d7 512 \u00d7 512"
    assert frames.spec.shape is not None
    assert frames.spec.shape[0].label == "time"
    assert frames.spec.shape[1].minimum == frames.spec.shape[1].maximum == 512
    nwb = meta.files[1]
    assert nwb.arrays[0].array_path == "/acquisition/dff/data"
    assert nwb.arrays[0].spec.units == "1"
    assert meta.file("trials.csv") is not None
    assert meta.file("nope") is None


def test_text_and_bytes_load_like_the_file() -> None:
    text = EXAMPLE.read_text()
    assert load_metadata(text) == load_metadata(EXAMPLE)
    assert load_metadata(text.encode()) == load_metadata(EXAMPLE)


def test_error_points_at_line_and_field_of_a_bad_orcid() -> None:
    problem = only_problem(
        "title: T\n"
        "creators:\n"
        "  - name: A\n"
        "  - name: Josiah Carberry\n"
        "    orcid: 0000-0002-1825-0098\n"
    )
    assert problem.line == 5
    assert problem.field == "creators[1].orcid"
    assert str(problem) == (
        "holdfast.yaml:5: creators[1].orcid: '0000-0002-1825-0098' "
        "is not a valid ORCID: its check digit is wrong"
    )


def test_source_name_of_a_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "meta.yaml"
    path.write_text("title: T\nlicense: NOT-A-LICENSE\n")
    with pytest.raises(MetadataError) as caught:
        load_metadata(path)
    assert str(caught.value).startswith("meta.yaml:2: license: 'NOT-A-LICENSE' is not an SPDX")


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    problems = problems_of(
        "title: '  '\n"  # 1
        "creators:\n"  # 2
        "  - nam: X\n"  # 3
        "license: CC-BY-4.0\n"  # 4
        "files:\n"  # 5
        "  - path: ../secret\n"  # 6
        "    format: zar\n"  # 7
    )
    found = [(p.line, p.field) for p in problems]
    assert found == [
        (1, "title"),
        (3, "creators[0]"),
        (3, "creators[0].nam"),
        (6, "files[0].path"),
        (7, "files[0].format"),
    ]
    by_field = {p.field: p.message for p in problems}
    assert "did you mean 'name'" in by_field["creators[0].nam"]
    assert "did you mean 'zarr'" in by_field["files[0].format"]
    assert by_field["creators[0]"] == "the required field 'name' is missing"
    assert by_field["title"] == "must not be blank"


def test_missing_title() -> None:
    problem = only_problem("description: no title\n")
    assert (problem.line, problem.field) == (1, "")
    assert problem.message == "the required field 'title' is missing"


@pytest.mark.parametrize(
    "path",
    [
        "../escape",
        "data/../../escape",
        "..",
        "/etc/passwd",
        "C:/Windows/system.ini",
        "data\\..\\escape",
        "./data",
        "data//x",
        "data/",
        "data/./x",
        "",
    ],
)
def test_paths_must_stay_inside_the_dataset(path: str) -> None:
    problem = only_problem(f"title: T\nfiles:\n  - path: {json.dumps(path)}\n    format: csv\n")
    assert (problem.line, problem.field) == (3, "files[0].path")
    assert "relative path inside the dataset folder" in problem.message


def test_duplicate_file_paths() -> None:
    problem = only_problem(
        "title: T\nfiles:\n  - {path: a.csv, format: csv}\n  - {path: a.csv, format: csv}\n"
    )
    assert (problem.line, problem.field) == (4, "files[1].path")
    assert "already described by files[0]" in problem.message


def test_licence_expression_is_canonicalised_and_checked() -> None:
    meta = load_metadata("title: T\nlicense: mit or apache-2.0\n")
    assert meta.license == "MIT OR Apache-2.0"
    assert only_problem("title: T\nlicense: CC-BY-9.9\n").field == "license"


@pytest.mark.parametrize(
    ("coverage", "field", "message"),
    [
        ("{start: 2021-02-30}", "temporal_coverage.start", "is not a real date"),
        ("{start: 99}", "temporal_coverage.start", "is not an ISO 8601 date"),
        ("{start: 2021-13}", "temporal_coverage.start", "is not a real date"),
        ("{start: yesterday}", "temporal_coverage.start", "is not an ISO 8601 date"),
        ("{start: 2022, end: 2021-12-31}", "temporal_coverage.end", "the end is before the start"),
        (
            "{start: '2021-06-01T10:00:00+02:00', end: '2021-06-01T07:30:00Z'}",
            "temporal_coverage.end",
            "the end is before the start",
        ),
    ],
)
def test_temporal_coverage(coverage: str, field: str, message: str) -> None:
    problem = only_problem(f"title: T\ntemporal_coverage: {coverage}\n")
    assert problem.field == field
    assert message in problem.message
    assert problem.line == 2


def test_temporal_coverage_of_mixed_precision_in_order() -> None:
    meta = load_metadata("title: T\ntemporal_coverage: {start: 2021, end: 2021-01-01T00:00Z}\n")
    assert meta.temporal_coverage is not None
    assert meta.temporal_coverage.end == "2021-01-01T00:00Z"


@pytest.mark.parametrize(
    ("box", "field", "message"),
    [
        ("{west: -200, south: 0, east: 0, north: 1}", "west", "less than the minimum"),
        ("{west: 0, south: 10, east: 1, north: 5}", "north", "north is below south"),
        ("{west: .nan, south: 0, east: 1, north: 5}", "west", "finite"),
        ("{west: 0, south: 0, east: 1}", "", "'north' is missing"),
    ],
)
def test_bounding_box(box: str, field: str, message: str) -> None:
    problem = only_problem(f"title: T\nspatial_coverage:\n  bounding_box: {box}\n")
    assert problem.field == "spatial_coverage.bounding_box" + (f".{field}" if field else "")
    assert message in problem.message
    assert problem.line == 3


def test_box_across_the_antimeridian_is_allowed() -> None:
    meta = load_metadata(
        "title: T\nspatial_coverage:\n  bounding_box: {west: 170, south: -10, east: "
        "-170, north: 10}\n"
    )
    assert meta.spatial_coverage is not None
    assert meta.spatial_coverage.bounding_box is not None
    assert meta.spatial_coverage.bounding_box.west == 170


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("DOI", "10.1000/xyz123", True),
        ("DOI", "doi:10.1000/xyz123", True),
        ("DOI", "zenodo.123", False),
        ("URL", "https://example.org/data", True),
        ("URL", "ftp://example.org/data", False),
        ("URL", "javascript:alert(1)", False),
        ("infohash", "a" * 64, True),
        ("infohash", "a" * 41, False),
        ("arXiv", "arXiv:2101.00001v2", True),
        ("arXiv", "not-an-id", False),
        ("Handle", "20.500.12345/678", True),
    ],
)
def test_related_identifiers_match_their_type(kind: str, value: str, ok: bool) -> None:
    text = (
        "title: T\nrelated_identifiers:\n"
        f"  - {{identifier: {json.dumps(value)}, identifier_type: {kind}, relation_type: Cites}}\n"
    )
    if ok:
        assert load_metadata(text).related_identifiers[0].identifier_type == kind
    else:
        problem = only_problem(text)
        assert (problem.line, problem.field) == (3, "related_identifiers[0].identifier")


def test_relation_type_is_a_datacite_relation() -> None:
    problem = only_problem(
        "title: T\nrelated_identifiers:\n"
        "  - identifier: 10.1000/x\n    identifier_type: DOI\n    relation_type: Supplements\n"
    )
    assert (problem.line, problem.field) == (5, "related_identifiers[0].relation_type")
    assert "did you mean 'IsSupplementTo'" in problem.message


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("'* Time'", "not a dimension"),
        ("-1", "cannot be negative"),
        ("true", "cannot be true/false"),
        ("'10-2'", "the range 10-2 is empty"),
        ("1.5", "an integer or a string"),
    ],
)
def test_bad_shape_items(item: str, message: str) -> None:
    problem = only_problem(
        f"title: T\nfiles:\n  - path: a.npy\n    format: npy\n    shape: [4, {item}]\n"
    )
    assert (problem.line, problem.field) == (5, "files[0].shape[1]")
    assert message in problem.message


def test_ellipsis_only_last() -> None:
    problem = only_problem(
        "title: T\nfiles:\n  - path: a.npy\n    format: npy\n    shape: ['...', 3]\n"
    )
    assert problem.field == "files[0].shape[0]"
    assert "last" in problem.message


def test_shape_forms_parse() -> None:
    meta = load_metadata(
        "title: T\nfiles:\n  - path: a.npy\n    format: npy\n"
        "    shape: [3, '* time', '2-4 channel', '5-*', '*-9', '16 y', '...']\n"
    )
    assert (
        meta.files[0].spec.shape_text
        == "3 \u00d7 * time \u00d7 2-4 channel \u00d7 5-* \u00d7 *-9 \u00d7 16 y \u00d7 ..."
    )


def test_arrays_only_in_containers_and_not_with_a_shape() -> None:
    problems = problems_of(
        "title: T\nfiles:\n"
        "  - path: t.csv\n    format: csv\n    arrays: [{array_path: x}]\n"
        "  - path: z.zarr\n    format: zarr\n    shape: [1]\n    arrays: [{array_path: x}]\n"
    )
    assert [(p.line, p.field) for p in problems] == [(5, "files[0].arrays"), (9, "files[1].arrays")]


def test_duplicate_array_paths() -> None:
    problem = only_problem(
        "title: T\nfiles:\n  - path: z.zarr\n    format: zarr\n"
        "    arrays: [{array_path: x/y}, {array_path: /x/y/}]\n"
    )
    assert problem.field == "files[0].arrays[1].array_path"


def test_metadata_file_cannot_describe_itself() -> None:
    problem = only_problem("title: T\nfiles:\n  - {path: holdfast.yaml, format: other}\n")
    assert problem.field == "files[0].path"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("title: T\ntitle: U\n", 2, "appears twice"),
        ("title: [unclosed\n", 2, "not valid YAML"),
        ("title: !!python/object:os.system x\n", 1, "tag"),
        ("base: &b {title: T}\n<<: *b\n", 2, "merge"),
        ("- a list\n", 1, "must be a mapping"),
        ("", 1, "must be a mapping"),
        ("title: T\n---\ntitle: U\n", 2, "not valid YAML"),
    ],
)
def test_yaml_that_is_refused(text: str, line: int, message: str) -> None:
    problem = only_problem(text)
    assert problem.line == line
    assert message in problem.message


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    problem = only_problem("title: T\n" + "\n".join(lines) + "\n")
    assert "too many values" in problem.message


def test_deep_nesting_is_bounded() -> None:
    problem = only_problem("title: T\nx: " + "[" * 200 + "]" * 200 + "\n")
    assert "nested" in problem.message


def test_yaml_12_scalars() -> None:
    # 12:30 is a sexagesimal integer and 2021-01-01 a date object in YAML 1.1
    problem = only_problem("title: T\nkeywords: [12:30, yes, 2021-01-01, 0o17]\n")
    assert problem.field == "keywords[3]"
    assert "put it in quotes" in problem.message
    meta = load_metadata("title: T\nkeywords: [12:30, yes, 2021-01-01]\n")
    assert meta.keywords == ("12:30", "yes", "2021-01-01")


def test_not_utf8_and_too_big(tmp_path: Path) -> None:
    problem = only_problem(b"title: T\n" + b"description: \xff\n")  # type: ignore[arg-type]
    assert (problem.line, problem.message) == (2, "the file is not UTF-8 text")
    big = tmp_path / "holdfast.yaml"
    big.write_bytes(b"title: T\n" + b"#" * MAX_METADATA_BYTES)
    with pytest.raises(MetadataError, match="larger than"):
        load_metadata(big)


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="cannot read the file"):
        load_metadata(tmp_path / "missing.yaml")


def test_a_file_name_given_as_text_gets_a_hint() -> None:
    problem = only_problem("holdfast.yaml")
    assert "pass a pathlib.Path" in problem.message


def test_null_values_are_refused_plainly() -> None:
    problem = only_problem("title: T\nlicense:\n")
    assert (problem.line, problem.field) == (2, "license")
    assert problem.message == "expected a string, found an empty value"


def test_metadata_from_dict() -> None:
    meta = load_metadata(EXAMPLE)
    assert metadata_from_dict({"title": "T", "keywords": ["a"]}).keywords == ("a",)
    with pytest.raises(MetadataError) as caught:
        metadata_from_dict(
            {"title": "T", "creators": [{"name": "A", "orcid": "0000-0002-1825-0098"}]}
        )
    assert caught.value.problems[0].field == "creators[0].orcid"
    assert caught.value.fields == {
        "creators[0].orcid": "'0000-0002-1825-0098' is not a valid ORCID: its check digit is wrong"
    }
    with pytest.raises(MetadataError, match="not plain JSON"):
        metadata_from_dict({"title": float("nan")})
    assert meta.title


def test_search_text_holds_every_searchable_field() -> None:
    text = search_text(load_metadata(EXAMPLE))
    for expected in [
        "Mouse V1 two-photon",
        "drifting",
        "Josiah Carberry",
        "Brown University",
        "calcium imaging",
        "CC-BY-4.0",
        "Providence",
        "10.5281/zenodo.1234567",
        "frames.zarr",
        "Motion-corrected frames.",
        "/acquisition/dff/data",
        "ΔF/F",
        "roi",
    ]:
        assert expected in text
    assert "\n\n" not in text


def test_display_dict_is_json_and_complete() -> None:
    shown = to_display(load_metadata(EXAMPLE))
    assert json.loads(json.dumps(shown)) == shown
    assert shown["license"] == {
        "id": "CC-BY-4.0",
        "url": "https://spdx.org/licenses/CC-BY-4.0.html",
    }
    assert shown["creators"][0]["orcid_url"] == "https://orcid.org/0000-0002-1825-0097"
    assert shown["related_identifiers"][1]["url"] == "https://arxiv.org/abs/2101.00001"
    assert shown["files"][0]["shape"] == "* time \u00d7 512 \u00d7 512"
    assert shown["files"][1]["arrays"][0]["array_path"] == "/acquisition/dff/data"
    assert shown["spatial_coverage"]["places"] == ["Providence", "NO"]


def test_orcid_checksum_known_values() -> None:
    assert orcid_is_valid("0000-0002-1825-0097")
    assert orcid_is_valid("0000-0001-5109-3700")
    assert orcid_is_valid("0000-0002-1694-233X")
    assert not orcid_is_valid("0000-0002-1825-0098")
    assert not orcid_is_valid("0000-0002-1694-2339")


@given(st.lists(st.integers(0, 9), min_size=15, max_size=15), st.integers(0, 10))
def test_orcid_exactly_one_check_digit_is_valid(digits: list[int], wrong: int) -> None:
    body = "".join(map(str, digits))
    valid = [c for c in "0123456789X" if orcid_is_valid(body + c)]
    assert len(valid) == 1
    orcid = f"{body[0:4]}-{body[4:8]}-{body[8:12]}-{body[12:15]}"
    text = f"title: T\ncreators:\n  - name: A\n    orcid: {orcid}{valid[0]}\n"
    assert load_metadata(text).creators[0].orcid == orcid + valid[0]
    bad = "0123456789X"[wrong]
    if bad != valid[0]:
        problem = only_problem(f"title: T\ncreators:\n  - name: A\n    orcid: {orcid}{bad}\n")
        assert (problem.line, problem.field) == (4, "creators[0].orcid")
