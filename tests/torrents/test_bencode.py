from __future__ import annotations

import libtorrent as lt
import pytest

from holdfast.torrents import TorrentError, bencode
from holdfast.torrents.bencode import BencodeError, decode, decode_tolerant, encode


def test_round_trip() -> None:
    value = {b"a": [1, -2, b"x", {b"k": b""}], b"b": 0}
    data = encode(value)
    assert data == b"d1:ali1ei-2e1:xd1:k0:ee1:bi0ee"
    assert decode(data) == value


def test_encode_accepts_str_and_sorts_keys() -> None:
    assert encode({"b": "é", "a": [1, True]}) == b"d1:ali1ei1ee1:b2:\xc3\xa9e"


def test_encode_refuses_unknown_types() -> None:
    with pytest.raises(BencodeError):
        encode({b"a": 1.5})


def test_bencode_error_is_a_torrent_error() -> None:
    assert issubclass(BencodeError, TorrentError)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"i01e", "leading zero in integer"),
        (b"i-0e", "negative zero"),
        (b"03:abc", "leading zero in string length"),
        (b"d1:bi1e1:ai2ee", "unsorted dictionary key"),
        (b"d1:ai1e1:ai2ee", "duplicate dictionary key"),
        (b"i1ei2e", "after the end"),
        (b"l", "end of data"),
        (b"i1", "malformed integer"),
        (b"ie", "malformed integer"),
        (b"i-e", "malformed integer"),
        (b"4:abc", "past the end"),
        (b"di1ei2ee", "not a string"),
        (b"x", "unexpected byte"),
        (b"e", "unexpected end marker"),
        (b"d1:ae", "without a value"),
        (b"i123456789012345678901e", "more than 20 digits"),
        (b"99999999999999999999:a", "overflows"),
    ],
)
def test_strict_decode_refuses_with_a_readable_reason(data: bytes, fragment: str) -> None:
    with pytest.raises(BencodeError) as info:
        decode(data)
    assert fragment in info.value.reason


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(BencodeError):
        decode("i1e")  # type: ignore[arg-type]


def test_size_limit() -> None:
    with pytest.raises(BencodeError, match="limit"):
        decode(b"i1e", max_size=2)
    with pytest.raises(BencodeError, match="limit"):
        decode_tolerant(b"i1e", max_size=2)


def test_depth_limit_matches_libtorrent() -> None:
    deepest = b"l" * bencode.DEFAULT_MAX_DEPTH + b"e" * bencode.DEFAULT_MAX_DEPTH
    too_deep = b"l" + deepest + b"e"
    assert decode(deepest) is not None
    assert decode_tolerant(deepest).value is not None
    for fn in (decode, decode_tolerant):
        with pytest.raises(BencodeError, match="nested deeper"):
            fn(too_deep)
    # libtorrent draws the line at the same place
    assert lt.bdecode(deepest) is not None
    with pytest.raises(RuntimeError, match="depth"):
        lt.bdecode(too_deep)


def test_depth_limit_is_cheap_for_huge_nesting() -> None:
    with pytest.raises(BencodeError):
        decode(b"l" * 5_000_000 + b"e" * 5_000_000)
    with pytest.raises(BencodeError):
        decode_tolerant(b"l" * 5_000_000 + b"e" * 5_000_000)


def test_token_limit() -> None:
    data = b"l" + b"i1e" * 1000 + b"e"
    assert len(decode_tolerant(data).value) == 1000
    with pytest.raises(BencodeError, match="more than 500 values"):
        decode_tolerant(data, max_tokens=500)


def test_tolerant_decoder_reports_irregularities_and_spans() -> None:
    data = b"d4:infod4:name1:x6:lengthi01ee1:ai1e1:ai2eexyz"
    result = decode_tolerant(data)
    assert result.value == {b"info": {b"name": b"x", b"length": 1}, b"a": 1}
    start, end = result.spans[b"info"]
    assert data[start:end] == b"d4:name1:x6:lengthi01ee"
    assert result.end == len(data) - 3
    messages = [i.message for i in result.irregularities]
    assert messages == [
        "unsorted dictionary key",
        "leading zero in integer",
        "unsorted dictionary key",
        "duplicate dictionary key",
    ]


def test_tolerant_first_duplicate_wins_like_libtorrent() -> None:
    assert decode_tolerant(b"d1:ai1e1:ai2ee").value == {b"a": 1}


def test_strict_and_tolerant_agree_on_canonical_data() -> None:
    data = encode({b"x": [b"a" * 300, {b"y": -5}], b"z": b""})
    assert decode(data) == decode_tolerant(data).value
    assert decode_tolerant(data).irregularities == []
