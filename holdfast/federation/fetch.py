"""Fetching ActivityPub documents from peers: bounded, guarded, optionally signed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from holdfast import __version__
from holdfast.federation.errors import FetchError
from holdfast.federation.netguard import check_url
from holdfast.federation.strictjson import JSONMalformed, JSONTooLarge, loads_strict

ACTIVITY_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
JSON_MEDIA_TYPES = frozenset(
    {"application/activity+json", "application/ld+json", "application/json", "application/jrd+json"}
)
TORRENT_ACCEPT = "application/x-bittorrent"
MAX_FETCH_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
# The whole of a fetch, every hop and every byte: a peer sending slowly can hold one
# this long at most (a 32 MiB .torrent bundle needs about 2.2 Mbit/s).
FETCH_DEADLINE_SECONDS = 120.0
USER_AGENT = f"holdfast/{__version__}"

# (method, url) -> headers that sign the request, e.g. a partial of httpsig.sign_request.
RequestSigner = Callable[[str, str], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    accept: str = ACTIVITY_ACCEPT,
    max_bytes: int = MAX_FETCH_BYTES,
    max_redirects: int = MAX_REDIRECTS,
    sign: RequestSigner | None = None,
    deadline: float = FETCH_DEADLINE_SECONDS,
) -> Fetched:
    """GET `url`, following at most `max_redirects` redirects, reading at most `max_bytes`,
    all within `deadline` seconds (the client's timeout bounds each read only: a peer
    sending a byte now and then would otherwise hold the fetch for as long as it likes).

    Every hop is checked (and re-signed when `sign` is given). Raises FetchError for
    network failures, non-2xx answers, oversized bodies and the deadline;
    UnsafeAddressError for URLs the guard refuses.
    """
    try:
        async with asyncio.timeout(deadline):
            return await _fetch(client, url, accept, max_bytes, max_redirects, sign)
    except TimeoutError:
        raise FetchError(f"fetching {url} took more than {deadline:g} s") from None


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    accept: str,
    max_bytes: int,
    max_redirects: int,
    sign: RequestSigner | None,
) -> Fetched:
    for _ in range(max_redirects + 1):
        check_url(url)
        # Uncompressed only, so the size limit bounds memory (no decompression bombs).
        headers = {"Accept": accept, "Accept-Encoding": "identity", "User-Agent": USER_AGENT}
        if sign is not None:
            headers.update(sign("GET", url))
        try:
            async with client.stream("GET", url, headers=headers) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if not response.is_success:
                    raise FetchError(f"{url} answered {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(f"{url} sends {declared} bytes, more than {max_bytes}")
                chunks: list[bytes] = []
                received = 0
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received > max_bytes:
                        raise FetchError(f"{url} sent more than {max_bytes} bytes")
                    chunks.append(chunk)
                content_type = response.headers.get("content-type", "")
                encoding = response.headers.get("content-encoding", "identity").lower()
                if encoding not in ("identity", ""):
                    raise FetchError(f"{url} answered with unrequested content-encoding {encoding}")
                return Fetched(
                    str(response.url), response.status_code, content_type, b"".join(chunks)
                )
        except httpx.HTTPError as exc:
            raise FetchError(f"fetching {url} failed: {exc}") from exc
    raise FetchError(f"more than {max_redirects} redirects")


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


async def fetch_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    accept: str = ACTIVITY_ACCEPT,
    max_bytes: int = MAX_FETCH_BYTES,
    sign: RequestSigner | None = None,
    deadline: float = FETCH_DEADLINE_SECONDS,
) -> tuple[Fetched, Any]:
    """Fetch and strictly parse a JSON document; the raw bytes are returned too."""
    fetched = await fetch(
        client, url, accept=accept, max_bytes=max_bytes, sign=sign, deadline=deadline
    )
    if media_type(fetched.content_type) not in JSON_MEDIA_TYPES:
        raise FetchError(f"{url} answered {fetched.content_type or 'no content type'}, not JSON")
    try:
        return fetched, loads_strict(fetched.body, max_bytes=max_bytes)
    except (JSONMalformed, JSONTooLarge) as exc:
        raise FetchError(f"{url} answered unusable JSON: {exc}") from exc
