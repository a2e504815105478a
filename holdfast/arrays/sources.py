"""Opening a dataset for reading from what a user has in hand.

A source is one of:

- a `.torrent` file on disk;
- an http(s) URL of a `.torrent`;
- an instance upload page or API URL, `https://host/uploads/<infohash>`: its torrent is
  fetched from `https://host/api/v1/uploads/<infohash>/torrent` and must carry that
  infohash, and the zarr metadata documents the instance holds for it
  (`/api/v1/uploads/<infohash>/zarr-metadata`) are taken too, so opening an array
  fetches nothing from the swarm (each document is used only if it matches the
  torrent's hashes);
- a magnet link: its metadata comes from its peers (`x.pe=` addresses, trackers, or
  the `peers` given).

Pieces come from BitTorrent peers through a libtorrent session when the torrent has
trackers or peers are known, and from the torrent's web seeds (or the `webseeds` given
instead) over HTTP Range when no peer has them; without peers, from web seeds alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from holdfast.arrays.errors import SourceError
from holdfast.arrays.source import DEFAULT_CACHE_BYTES, PieceFetcher, TorrentReader
from holdfast.torrents import Torrent, TorrentError, parse_torrent
from holdfast.torrents.bencode import DEFAULT_MAX_SIZE

_UPLOAD_PATH = re.compile(
    r"^(?P<prefix>.*?)/(?:api/v1/)?uploads/(?P<infohash>[0-9a-fA-F]{64}|[0-9a-fA-F]{40})"
    r"(?:/(?:torrent)?)?$"
)

# the largest metadata answer an instance may send (zarr.json documents only)
MAX_METADATA_BYTES = 16 * 1024 * 1024

Peer = tuple[str, int]


def torrent_url(source: str) -> tuple[str, str | None]:
    """(URL of the .torrent, infohash it must have or None) for an http(s) source."""
    parts = urlsplit(source)
    match = _UPLOAD_PATH.match(parts.path)
    if match is None:
        return source, None
    infohash = match["infohash"].lower()
    path = f"{match['prefix']}/api/v1/uploads/{infohash}/torrent"
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), infohash


def metadata_url(source: str) -> str | None:
    """The instance's zarr-metadata URL for an upload URL source, else None."""
    parts = urlsplit(source)
    match = _UPLOAD_PATH.match(parts.path)
    if parts.scheme not in ("http", "https") or match is None:
        return None
    path = f"{match['prefix']}/api/v1/uploads/{match['infohash'].lower()}/zarr-metadata"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def load_torrent(source: str | Path, *, timeout: float = 30.0) -> tuple[Torrent, str]:
    """The parsed torrent of a source, and the source as text (for references)."""
    torrent, text, _ = load_torrent_bytes(source, timeout=timeout)
    return torrent, text


def load_torrent_bytes(source: str | Path, *, timeout: float = 30.0) -> tuple[Torrent, str, bytes]:
    """As load_torrent, with the .torrent's bytes."""
    text = str(source)
    if text.startswith("magnet:"):
        raise SourceError("a magnet link has no .torrent to load; open it with open_reader")
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
    return torrent, text, data


def open_reader(
    source: str | Path,
    *,
    webseeds: Sequence[str] | None = None,
    peers: Sequence[Peer] | None = None,
    swarm: bool | None = None,
    peer_options: Any = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    verify: bool = True,
    timeout: float = 30.0,
    instance_metadata: bool = True,
) -> TorrentReader:
    """A reader of the source's files.

    `swarm`: True reads from peers (libtorrent) with web seeds as fallback, False from
    web seeds only, None (default) from peers when the torrent has trackers, `peers` are
    given or the source is a magnet link. `peer_options`: a
    holdfast.arrays.peers.PeerOptions (listen address, grace and timeouts).
    """
    text = str(source)
    fetcher: PieceFetcher
    if text.startswith("magnet:"):
        if swarm is False:
            raise SourceError("a magnet link can only be read from peers")
        from holdfast.arrays.peers import LibtorrentFetcher

        fetcher, torrent = LibtorrentFetcher.for_magnet(
            text, peers=list(peers or ()), options=peer_options
        )
        return TorrentReader(torrent, fetcher, cache_bytes=cache_bytes, verify=verify, origin=text)

    from holdfast.arrays.webseed import WebseedFetcher

    torrent, origin, data = load_torrent_bytes(source, timeout=timeout)
    has_webseeds = webseeds is not None or bool(torrent.webseeds)
    use_swarm = swarm if swarm is not None else bool(peers) or bool(torrent.trackers)
    web = WebseedFetcher(torrent, webseeds, timeout=timeout) if has_webseeds else None
    if use_swarm:
        from holdfast.arrays.peers import LibtorrentFetcher

        fetcher = LibtorrentFetcher.for_torrent(
            data, peers=list(peers or ()), webseeds=web, options=peer_options
        )
    elif web is not None:
        fetcher = web
    else:
        raise SourceError(
            "this torrent lists no web seeds and no trackers; give peers (--peer HOST:PORT) "
            "or web seed URLs (--webseed)"
        )
    reader = TorrentReader(torrent, fetcher, cache_bytes=cache_bytes, verify=verify, origin=origin)
    url = metadata_url(text) if instance_metadata else None
    if url is not None:
        seed_instance_metadata(reader, url, timeout=timeout)
    return reader


def seed_instance_metadata(reader: TorrentReader, url: str, *, timeout: float = 30.0) -> int:
    """Hand the reader the metadata documents an instance holds; how many it could use.

    Best effort: an instance without them (or unreachable) only means opening an array
    reads its zarr.json from the swarm.
    """
    try:
        body = _download(url, timeout, limit=MAX_METADATA_BYTES)
        import json

        files = json.loads(body)["files"]
    except (SourceError, ValueError, KeyError, TypeError):
        return 0
    used = 0
    if not isinstance(files, list):
        return 0
    for item in files:
        if not isinstance(item, dict):
            continue
        path, content = item.get("path"), item.get("content")
        if not isinstance(path, str) or not isinstance(content, str):
            continue
        try:
            used += reader.seed_file(path, content.encode("utf-8"))
        except SourceError:
            continue
    return used


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


def _download(url: str, timeout: float, limit: int = DEFAULT_MAX_SIZE) -> bytes:
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
                if len(body) > limit:
                    raise SourceError(f"{url}: larger than {limit} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {exc.__class__.__name__}: {exc}") from None
