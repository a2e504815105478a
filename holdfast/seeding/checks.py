"""Checking a submitted web seed: fetch a few pieces with Range requests, verify them.

Requests go through the federation's guarded client, so a URL that is, or resolves to,
a private or loopback address is refused (unless `allow_private_addresses`), and the
address checked is the address connected to. Each response is read only up to the
bytes asked for.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from holdfast.arrays.pieces import PieceMap
from holdfast.federation.errors import UnsafeAddressError
from holdfast.federation.netguard import check_url, guarded_client
from holdfast.torrents import Torrent

SAMPLE_PIECES = 4
MAX_URL_LENGTH = 2048
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class WebseedRefused(Exception):
    """The URL is not acceptable, or the server did not serve matching pieces."""


def check_webseed_url(url: str, *, allow_private: bool) -> str:
    """Refuse malformed URLs and literal private addresses before storing them."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise WebseedRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        _scheme, host, _port = check_url(url)
    except UnsafeAddressError as exc:
        raise WebseedRefused(str(exc)) from None
    if not allow_private:
        import ipaddress

        from holdfast.federation.netguard import is_public_address

        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            if not is_public_address(address):
                raise WebseedRefused("the web seed's address is not public")
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            raise WebseedRefused("the web seed's address is not public")
    return url


def file_url(base: str, torrent: Torrent, path: str) -> str:
    """Where a file of the torrent is on a web seed (BEP 19)."""
    single = len(torrent.files) == 1 and torrent.files[0].path == torrent.name
    if single:
        return base + quote(torrent.name) if base.endswith("/") else base
    return base.rstrip("/") + "/" + quote(path, safe="/")


def sample_pieces(pieces: PieceMap, count: int, seed: int) -> list[int]:
    """The first and last piece and a few chosen at random (reproducibly) in between."""
    n = pieces.num_pieces
    chosen = {0, n - 1}
    middle = list(range(1, n - 1))
    random.Random(seed).shuffle(middle)
    chosen.update(middle[: max(0, count - 2)])
    return sorted(i for i in chosen if pieces.piece(i).segments)


@dataclass
class CheckResult:
    ok: bool
    pieces_checked: int
    error: str


async def _get_range(client: httpx.AsyncClient, url: str, start: int, length: int) -> bytes:
    headers = {"Range": f"bytes={start}-{start + length - 1}", "Accept-Encoding": "identity"}
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 206:
            raise WebseedRefused(
                f"{url}: expected 206 Partial Content for a Range request, "
                f"got {response.status_code}"
            )
        match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if match is None or int(match.group(1)) != start:
            raise WebseedRefused(f"{url}: the server sent a different byte range")
        data = bytearray()
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) > length:
                raise WebseedRefused(f"{url}: the server sent more bytes than asked for")
    if len(data) != length:
        raise WebseedRefused(f"{url}: the server sent {len(data)} bytes, not {length}")
    return bytes(data)


async def check_webseed(
    url: str,
    torrent: Torrent,
    *,
    allow_private: bool,
    samples: int = SAMPLE_PIECES,
    seed: int = 0,
    timeout: float = 20.0,
) -> CheckResult:
    """Fetch `samples` pieces from the web seed at `url` and verify their hashes."""
    pieces = PieceMap(torrent)
    checked = 0
    try:
        async with guarded_client(allow_private=allow_private, timeout=timeout) as client:
            for index in sample_pieces(pieces, samples, seed):
                piece = pieces.piece(index)
                buffer = bytearray(piece.length)
                for s in piece.segments:
                    path = pieces.file(s.file_index).path
                    data = await _get_range(
                        client, file_url(url, torrent, path), s.file_start, s.length
                    )
                    buffer[s.piece_offset : s.piece_offset + s.length] = data
                if not pieces.verify(piece, bytes(buffer)):
                    return CheckResult(
                        False, checked, f"piece {index} does not match the torrent's hash"
                    )
                checked += 1
    except UnsafeAddressError as exc:
        return CheckResult(False, checked, f"refused: {exc}")
    except WebseedRefused as exc:
        return CheckResult(False, checked, str(exc))
    except httpx.HTTPError as exc:
        return CheckResult(False, checked, f"cannot fetch from the web seed: {exc}")
    return CheckResult(True, checked, "")
