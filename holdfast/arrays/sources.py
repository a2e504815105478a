"""Opening a dataset for reading from what a user has in hand.

A source is one of:

- a `.torrent` file on disk;
- an http(s) URL of a `.torrent`;
- an instance upload page or API URL, `https://host/uploads/<infohash>`: its torrent is
  fetched from `https://host/api/v1/uploads/<infohash>/torrent` and must carry that
  infohash;
- a magnet link: not readable yet (it needs a BitTorrent session), refused clearly.

Pieces are fetched from the torrent's web seeds (or the `webseeds` given instead).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from holdfast.arrays.errors import SourceError
from holdfast.arrays.source import DEFAULT_CACHE_BYTES, TorrentReader
from holdfast.torrents import Torrent, TorrentError, parse_torrent
from holdfast.torrents.bencode import DEFAULT_MAX_SIZE

_UPLOAD_PATH = re.compile(
    r"^(?P<prefix>.*?)/(?:api/v1/)?uploads/(?P<infohash>[0-9a-fA-F]{64}|[0-9a-fA-F]{40})"
    r"(?:/(?:torrent)?)?$"
)


def torrent_url(source: str) -> tuple[str, str | None]:
    """(URL of the .torrent, infohash it must have or None) for an http(s) source."""
    parts = urlsplit(source)
    match = _UPLOAD_PATH.match(parts.path)
    if match is None:
        return source, None
    infohash = match["infohash"].lower()
    path = f"{match['prefix']}/api/v1/uploads/{infohash}/torrent"
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), infohash


def load_torrent(source: str | Path, *, timeout: float = 30.0) -> tuple[Torrent, str]:
    """The parsed torrent of a source, and the source as text (for references)."""
    text = str(source)
    if text.startswith("magnet:"):
        raise SourceError(
            "magnet links need a BitTorrent session, which this reader does not have yet; "
            "use the .torrent file or the instance's upload URL"
        )
    scheme = urlsplit(text).scheme
    if scheme in ("http", "https"):
        url, infohash = torrent_url(text)
        data = _download(url, timeout)
    elif scheme in ("", "file") or re.match(r"^[A-Za-z]:[\\/]", text):
        path = Path(urlsplit(text).path if scheme == "file" else text)
        try:
            if path.stat().st_size > DEFAULT_MAX_SIZE:
                raise SourceError(f"{path} is larger than a torrent may be")
            data = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        infohash = None
    else:
        raise SourceError(f"unsupported source {text!r}: give a .torrent file or an http(s) URL")
    try:
        torrent = parse_torrent(data)
    except TorrentError as exc:
        raise SourceError(f"{text}: not a usable torrent: {exc}") from None
    if infohash is not None and infohash not in (
        torrent.infohash_v1,
        torrent.infohash_v2,
    ):
        raise SourceError(f"{text}: the instance sent a torrent with a different infohash")
    return torrent, text


def open_reader(
    source: str | Path,
    *,
    webseeds: Sequence[str] | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    verify: bool = True,
    timeout: float = 30.0,
) -> TorrentReader:
    """A reader of the source's files, fetching pieces from web seeds."""
    from holdfast.arrays.webseed import WebseedFetcher

    torrent, origin = load_torrent(source, timeout=timeout)
    if webseeds is None and not torrent.webseeds:
        raise SourceError(
            "this torrent lists no web seeds; reading from peers is not supported yet "
            "(give web seed URLs with --webseed)"
        )
    fetcher = WebseedFetcher(torrent, webseeds, timeout=timeout)
    return TorrentReader(torrent, fetcher, cache_bytes=cache_bytes, verify=verify, origin=origin)


def zarr_roots(reader: TorrentReader) -> list[str]:
    """The top-most zarr nodes in the torrent (folders holding zarr.json, .zgroup or .zarray)."""
    markers = {"zarr.json", ".zgroup", ".zarray"}
    nodes = sorted(
        {
            p.rsplit("/", 1)[0] if "/" in p else ""
            for p in reader.walk_files()
            if p.rsplit("/", 1)[-1] in markers
        }
    )
    roots: list[str] = []
    for node in nodes:
        if not any(node == r or node.startswith(r + "/") or r == "" for r in roots):
            roots.append(node)
    return roots


def open_zarr(
    source: str | Path | TorrentReader,
    path: str | None = None,
    **reader_options: Any,
) -> Any:
    """The zarr group or array at `path` in the source (default: its only zarr store).

    Reads fetch only the pieces holding the chunks asked for.
    """
    import zarr

    from holdfast.arrays.store import TorrentStore

    reader = source if isinstance(source, TorrentReader) else open_reader(source, **reader_options)
    if path is None:
        roots = zarr_roots(reader)
        if len(roots) != 1:
            found = ", ".join(roots) or "none"
            raise SourceError(
                f"give the path of the zarr store to open (zarr stores here: {found})"
            )
        path = roots[0]
    return zarr.open(store=TorrentStore(reader, path), mode="r")


def _download(url: str, timeout: float) -> bytes:
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise SourceError(f"{url}: HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > DEFAULT_MAX_SIZE:
                    raise SourceError(f"{url}: larger than a torrent may be")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {exc.__class__.__name__}: {exc}") from None
