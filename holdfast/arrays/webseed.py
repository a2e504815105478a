"""Pieces from web seeds (BEP 19): plain HTTP servers holding the torrent's files.

A piece is fetched as one HTTP Range request per file it touches (one, in a torrent
aligned to zarr chunks), checked by the caller's verifier, and taken from the next web
seed when a server fails or sends bytes that do not verify. A server that ignores Range
is refused rather than allowed to send a whole file.

The fetcher runs where the reader runs (a scientist's machine); a server that fetches on
behalf of others must check the web seed URLs against its own address policy first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

import httpx

from holdfast.arrays.errors import PieceHashMismatch, PieceUnavailable, SourceError
from holdfast.arrays.pieces import Piece, PieceMap
from holdfast.arrays.source import PieceFetcher, Verifier
from holdfast.torrents import Torrent

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class WebseedFetcher(PieceFetcher):
    """Fetches pieces from the torrent's web seeds, or from `urls` when given."""

    def __init__(
        self,
        torrent: Torrent,
        urls: Sequence[str] | None = None,
        *,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__()
        chosen = list(urls) if urls is not None else list(torrent.webseeds)
        usable = [u for u in chosen if urlsplit(u).scheme in ("http", "https")]
        if not usable:
            raise SourceError("no http(s) web seed to read from")
        self.urls = usable
        self.name = torrent.name
        self._single_file = len(torrent.files) == 1 and torrent.files[0].path == torrent.name
        self._own_client = client is None
        self.client = client or httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept-Encoding": "identity", "User-Agent": "holdfast"},
        )
        self._preferred = 0
        self._lock = threading.Lock()

    def url_for(self, base: str, path: str) -> str:
        """The URL of a file of the torrent on one web seed (BEP 19)."""
        if self._single_file:
            return base + quote(self.name) if base.endswith("/") else base
        return base.rstrip("/") + "/" + quote(path, safe="/")

    def fetch_piece(self, pieces: PieceMap, piece: Piece, verify: Verifier | None) -> bytes:
        errors: list[str] = []
        mismatches = 0
        for base in self._order():
            try:
                buffer = bytearray(piece.length)
                for s in piece.segments:
                    path = pieces.file(s.file_index).path
                    size = pieces.file(s.file_index).size
                    data = self._get(
                        self.url_for(base, path), s.file_start, s.file_start + s.length, size
                    )
                    buffer[s.piece_offset : s.piece_offset + s.length] = data
            except SourceError as exc:
                errors.append(str(exc))
                self.stats.add(failures=1)
                continue
            data = bytes(buffer)
            if verify is not None and not verify(data):
                mismatches += 1
                errors.append(f"{base}: piece {piece.index} does not match the torrent's hash")
                self.stats.add(failures=1)
                continue
            self._prefer(base)
            self.stats.add(pieces=1)
            return data
        if mismatches:
            raise PieceHashMismatch("; ".join(errors))
        raise PieceUnavailable(f"piece {piece.index} unavailable: " + "; ".join(errors))

    def fetch_run(
        self, pieces: PieceMap, run: list[Piece], verify: list[Verifier] | None
    ) -> list[bytes]:
        if len(run) == 1:
            return [self.fetch_piece(pieces, run[0], verify[0] if verify else None)]
        # The reader only groups consecutive single-file pieces: one Range covers them.
        first, last = run[0].segments[0], run[-1].segments[0]
        file = pieces.file(first.file_index)
        start, end = first.file_start, last.file_start + last.length
        errors: list[str] = []
        mismatches = 0
        for base in self._order():
            try:
                data = self._get(self.url_for(base, file.path), start, end, file.size)
            except SourceError as exc:
                errors.append(str(exc))
                self.stats.add(failures=1)
                continue
            out: list[bytes] = []
            for i, piece in enumerate(run):
                segment = piece.segments[0]
                buffer = bytearray(piece.length)
                lo = segment.file_start - start
                buffer[segment.piece_offset : segment.piece_offset + segment.length] = data[
                    lo : lo + segment.length
                ]
                content = bytes(buffer)
                if verify is not None and not verify[i](content):
                    break
                out.append(content)
            if len(out) == len(run):
                self._prefer(base)
                self.stats.add(pieces=len(run))
                return out
            mismatches += 1
            errors.append(
                f"{base}: pieces {run[0].index}-{run[-1].index} do not match the torrent's hashes"
            )
            self.stats.add(failures=1)
        if mismatches:
            raise PieceHashMismatch("; ".join(errors))
        raise PieceUnavailable(
            f"pieces {run[0].index}-{run[-1].index} unavailable: " + "; ".join(errors)
        )

    def fetch_range(self, pieces: PieceMap, file_index: int, start: int, end: int) -> bytes:
        file = pieces.file(file_index)
        errors: list[str] = []
        for base in self._order():
            try:
                data = self._get(self.url_for(base, file.path), start, end, file.size)
            except SourceError as exc:
                errors.append(str(exc))
                self.stats.add(failures=1)
                continue
            self._prefer(base)
            return data
        raise PieceUnavailable(f"{file.path!r} unavailable: " + "; ".join(errors))

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # -- internals -----------------------------------------------------------------------

    def _order(self) -> list[str]:
        with self._lock:
            first = self._preferred
        return self.urls[first:] + self.urls[:first]

    def _prefer(self, base: str) -> None:
        with self._lock:
            self._preferred = self.urls.index(base)

    def _get(self, url: str, start: int, end: int, file_size: int) -> bytes:
        """Bytes `start .. end` of the file at `url`, exactly, or SourceError."""
        wanted = end - start
        headers = {"Range": f"bytes={start}-{end - 1}"}
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                self.stats.add(requests=1)
                if response.status_code == 206:
                    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                    if match is None or (int(match[1]), int(match[2])) != (start, end - 1):
                        raise SourceError(f"{url}: the server sent a different range than asked")
                    if match[3] != "*" and int(match[3]) != file_size:
                        raise SourceError(
                            f"{url}: the file is {match[3]} bytes there, {file_size} in the torrent"
                        )
                elif response.status_code == 200:
                    # Only acceptable when the whole file was asked for anyway.
                    if (start, end) != (0, file_size):
                        raise SourceError(f"{url}: the server does not support HTTP Range requests")
                else:
                    raise SourceError(f"{url}: HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    self.stats.add(nbytes=len(chunk))
                    if len(body) > wanted:
                        raise SourceError(
                            f"{url}: the server sent more than the {wanted} bytes asked"
                        )
        except httpx.HTTPError as exc:
            raise SourceError(f"{url}: {exc.__class__.__name__}: {exc}") from None
        if len(body) != wanted:
            raise SourceError(f"{url}: expected {wanted} bytes, got {len(body)}")
        return bytes(body)
