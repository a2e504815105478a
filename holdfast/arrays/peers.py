"""Pieces from BitTorrent peers, through a libtorrent session, with web seeds as fallback.

The session downloads nothing by itself: every piece starts at priority 0. A read gives
the whole run of pieces it needs priority 7 at once, so libtorrent pipelines the
requests to the connected peers, and each piece's bytes come back in a
`read_piece_alert` once it has passed libtorrent's own hash check (the alert thread asks
for them as `piece_finished_alert`s arrive). A piece that no connected peer has once the
session had time to connect, or that does not arrive in time, is taken from the web
seeds over HTTP Range instead.

Tuned for short reads after pauses: the session ticks every 20 ms, connects to known
peers (`peers=`, a magnet's `x.pe`) the moment the torrent is added, reconnects without
back-off, keeps seeds connected while nothing is wanted, sends seeds no HAVE messages,
turns uTP off on loopback, and sets TCP_NODELAY on its peer connections (libtorrent
leaves Nagle's algorithm on, and the interested/request messages of a read would wait
for the seed's delayed ACK, 40 ms on Linux). The bytes libtorrent writes go to a
temporary folder removed on close; the reader's own piece cache stays bounded in memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from holdfast.arrays.errors import PieceUnavailable, SourceError
from holdfast.arrays.pieces import Piece, PieceMap
from holdfast.arrays.sockets import set_nodelay
from holdfast.arrays.source import PieceFetcher, Verifier
from holdfast.arrays.webseed import WebseedFetcher
from holdfast.torrents import Torrent, parse_torrent

Peer = tuple[str, int]

DEFAULT_LISTEN = "0.0.0.0:0,[::]:0"
LOOPBACK_LISTEN = "127.0.0.1:0"


@dataclass(frozen=True, slots=True)
class PeerOptions:
    """How the session looks for and waits on peers.

    `grace`: seconds after the session started during which a piece nobody has yet is
    still waited for (peers are connecting); afterwards such a piece comes from a web
    seed at once. `timeout`: how long a piece may take from peers before the web seeds
    are tried. `listen`: libtorrent's listen_interfaces. `utp`: None turns uTP off when
    listening on loopback only (it is slow there) and on otherwise.
    """

    listen: str = DEFAULT_LISTEN
    grace: float = 1.5
    timeout: float = 20.0
    dht: bool = False
    utp: bool | None = None
    metadata_timeout: float = 30.0


IDLE_SECONDS = 1.0  # a read after a pause this long first checks that peers are connected


def _lt() -> Any:
    try:
        import libtorrent as lt
    except ImportError as exc:  # pragma: no cover - libtorrent is a core dependency
        raise SourceError("reading from peers needs the libtorrent package") from exc
    return lt


def _session(lt: Any, options: PeerOptions) -> Any:
    loopback = all(
        part.strip().startswith(("127.", "[::1]", "localhost"))
        for part in options.listen.split(",")
    )
    utp = (not loopback) if options.utp is None else options.utp
    alerts = lt.alert.category_t
    settings = {
        "listen_interfaces": options.listen,
        "enable_dht": options.dht,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": utp,
        "enable_incoming_utp": utp,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": int(
            alerts.error_notification
            | alerts.status_notification
            | alerts.storage_notification
            | alerts.piece_progress_notification
        ),
        # the first piece is what a reader waits for: no idle ticks, no reconnect back-off
        "tick_interval": 20,
        "connection_speed": 200,
        "torrent_connect_boost": 50,
        "min_reconnect_time": 1,
        "peer_connect_timeout": 5,
        "request_timeout": 10,
        "piece_timeout": 10,
        "user_agent": "holdfast",
        # with nothing wanted the torrent counts as finished; keep the seeds connected
        "close_redundant_connections": False,
        # a seed knows it has every piece: no HAVE messages to it after each piece
        "send_redundant_have": False,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return lt.session(settings)


class LibtorrentFetcher(PieceFetcher):
    """Pieces of one torrent from its swarm; `webseeds` (a WebseedFetcher) is the fallback.

    Build it with :meth:`for_torrent` (a .torrent's bytes) or :meth:`for_magnet`.
    """

    # libtorrent checks each piece against the torrent before handing it over, so a
    # piece the reader cannot check itself (a v2 torrent learnt from a magnet link has no
    # piece layers) is still trustworthy when it came from peers
    verifies_pieces = True

    def __init__(
        self,
        session: Any,
        handle: Any,
        workdir: str,
        *,
        peers: Sequence[Peer] = (),
        webseeds: WebseedFetcher | None = None,
        options: PeerOptions | None = None,
    ) -> None:
        super().__init__()
        self.lt = _lt()
        self.session = session
        self.handle = handle
        self.options = options or PeerOptions()
        self.webseeds = webseeds
        self.peers = list(peers)
        self._workdir = workdir
        self._started = time.monotonic()
        self._waiting: dict[int, list[Future[bytes | None]]] = {}
        self._files: dict[int, int] = {}  # file index -> open descriptor in the workdir
        # pieces the session holds, from its alerts (asking it costs a round trip to its
        # thread per piece); guarded by _lock with _waiting
        self._have: set[int] = set()
        self._last_read = 0.0  # when a read last got its pieces (monotonic)
        self._last_tuned = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.peer_pieces = 0
        self.webseed_pieces = 0
        self._nodelay: set[tuple[str, int]] = set()
        for peer in self.peers:
            self._connect(peer)
        self._thread = threading.Thread(target=self._pump, name="holdfast-libtorrent", daemon=True)
        self._thread.start()

    # -- building --------------------------------------------------------------------------

    @classmethod
    def for_torrent(
        cls,
        torrent_bytes: bytes,
        *,
        peers: Sequence[Peer] = (),
        webseeds: WebseedFetcher | None = None,
        options: PeerOptions | None = None,
    ) -> LibtorrentFetcher:
        lt = _lt()
        options = options or PeerOptions()
        session = _session(lt, options)
        workdir = tempfile.mkdtemp(prefix="holdfast-pieces-")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                info = lt.torrent_info(lt.bdecode(torrent_bytes))
            params = lt.add_torrent_params()
            params.ti = info
            params.save_path = workdir
            params.piece_priorities = [0] * info.num_pieces()
            # web seeds are fetched by us, piece by piece, only when peers fail
            params.url_seeds = []
            params.flags = (
                params.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
            ) | lt.torrent_flags.override_web_seeds
            params.peers = [tuple(p) for p in peers]
            handle = session.add_torrent(params)
        except Exception as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise SourceError(f"libtorrent refused the torrent: {exc}") from None
        return cls(session, handle, workdir, peers=peers, webseeds=webseeds, options=options)

    @classmethod
    def for_magnet(
        cls,
        uri: str,
        *,
        peers: Sequence[Peer] = (),
        options: PeerOptions | None = None,
    ) -> tuple[LibtorrentFetcher, Torrent]:
        """A fetcher for a magnet link and the torrent its peers described (BEP 9)."""
        lt = _lt()
        options = options or PeerOptions()
        try:
            params = lt.parse_magnet_uri(uri)
        except Exception as exc:
            raise SourceError(f"not a usable magnet link: {exc}") from None
        known = [tuple(p) for p in peers] + [tuple(p) for p in params.peers]
        if not known and not params.trackers and not options.dht:
            raise SourceError(
                "this magnet link names no trackers and no peers (x.pe); give a peer "
                "address, or use the .torrent file or the instance's upload URL"
            )
        session = _session(lt, options)
        workdir = tempfile.mkdtemp(prefix="holdfast-pieces-")
        params.save_path = workdir
        params.flags = (
            (params.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused)
            | lt.torrent_flags.default_dont_download
            | lt.torrent_flags.override_web_seeds
        )
        magnet_webseeds = list(params.url_seeds)
        params.peers = known
        params.url_seeds = []
        handle = session.add_torrent(params)
        for peer in known:
            with contextlib.suppress(Exception):
                handle.connect_peer(peer)
        deadline = time.monotonic() + options.metadata_timeout
        info = None
        while time.monotonic() < deadline:
            if handle.status().has_metadata:
                info = handle.torrent_file()
                break
            session.wait_for_alert(100)
            session.pop_alerts()
        if info is None:
            session.remove_torrent(handle)
            shutil.rmtree(workdir, ignore_errors=True)
            raise SourceError(
                f"no peer sent the torrent's metadata within {options.metadata_timeout:.0f} s"
            )
        handle.prioritize_pieces([0] * info.num_pieces())
        torrent = parse_torrent(b"d4:info" + bytes(info.info_section()) + b"e")
        webseeds = None
        if magnet_webseeds or torrent.webseeds:
            with contextlib.suppress(SourceError):
                webseeds = WebseedFetcher(torrent, magnet_webseeds or None)
        fetcher = cls(session, handle, workdir, peers=known, webseeds=webseeds, options=options)
        return fetcher, torrent

    # -- fetching --------------------------------------------------------------------------

    def fetch_piece(self, pieces: PieceMap, piece: Piece, verify: Verifier | None) -> bytes:
        return self.fetch_run(pieces, [piece], [verify] if verify is not None else None)[0]

    def fetch_run(
        self, pieces: PieceMap, run: list[Piece], verify: list[Verifier] | None
    ) -> list[bytes]:
        # Ask for every piece of the run at once: libtorrent pipelines the requests.
        # (Deadlines of 0 made it treat each piece as late and ask for one at a time;
        # its time-critical requests also wait for the next tick.)
        futures: list[Future[bytes | None]] = []
        with self._lock:
            for piece in run:
                future: Future[bytes | None] = Future()
                if piece.index in self._have:
                    # held already (read before, since dropped from the reader's cache):
                    # it will not finish again, its bytes are in the session's files
                    future.set_result(None)
                else:
                    self._waiting.setdefault(piece.index, []).append(future)
                futures.append(future)
        self.handle.prioritize_pieces([(piece.index, 7) for piece in run])
        started = time.monotonic()
        if started - self._last_read > IDLE_SECONDS:
            self._reconnect()  # after a pause only: it asks the session's thread
        self._tune_connections(started)
        checks: list[Verifier | None] = list(verify) if verify is not None else [None] * len(run)
        data = [
            self._collect(pieces, piece, future, check, started)
            for piece, future, check in zip(run, futures, checks, strict=True)
        ]
        self._last_read = time.monotonic()
        return data

    def _collect(
        self,
        pieces: PieceMap,
        piece: Piece,
        future: Future[bytes | None],
        verify: Verifier | None,
        started: float,
    ) -> bytes:
        """The bytes of a piece already asked for, or the web seeds' copy when no peer
        has it or peers take too long."""
        index = piece.index
        while True:
            try:
                finished = future.result(timeout=0.05)
            except FutureTimeout:
                pass
            else:
                data = (
                    finished
                    if finished is not None
                    else self._finished_bytes(pieces, piece, verify)
                )
                if data is None:
                    return self._from_webseeds(pieces, piece, verify, "libtorrent lost a piece")
                if verify is None or verify(data):
                    with self._lock:
                        self.peer_pieces += 1
                    self.stats.add(pieces=1)
                    return data
                # libtorrent checked it: the session's copy was spoilt since; ask HTTP,
                # never hand over bytes that fail their check
                if self.webseeds is None:
                    raise SourceError(f"piece {index} from peers failed its check")
                return self._from_webseeds(pieces, piece, verify, "a peer piece failed")
            now = time.monotonic()
            if self._stop.is_set():
                raise SourceError("the fetcher was closed")
            nobody = now - self._started > self.options.grace and not self._available(index)
            late = now - started > self.options.timeout
            if nobody or late:
                self._withdraw(index, future)
                if future.done() and future.exception() is None:
                    continue  # arrived just now
                reason = "no connected peer has it" if nobody else "peers were too slow"
                return self._from_webseeds(pieces, piece, verify, reason)

    def _finished_bytes(
        self, pieces: PieceMap, piece: Piece, verify: Verifier | None
    ) -> bytes | None:
        """A finished (hash-checked) piece's bytes, read from the session's files: one
        read per file it spans instead of a round trip through libtorrent's thread and
        alerts per piece. Should they not be what the session checked (or not there),
        libtorrent's own copy is asked for."""
        data = self._read_files(pieces, piece)
        if data is not None and (verify is None or verify(data)):
            return data
        return self._read_back(piece.index)

    def _read_files(self, pieces: PieceMap, piece: Piece) -> bytes | None:
        buffer = bytearray(piece.length)  # gaps (pad files) are zeros
        try:
            for seg in piece.segments:
                fd = self._file(pieces, seg.file_index)
                chunk = os.pread(fd, seg.length, seg.file_start)
                if len(chunk) != seg.length:
                    return None
                buffer[seg.piece_offset : seg.piece_offset + seg.length] = chunk
        except (OSError, SourceError):
            return None
        return bytes(buffer)

    def _file(self, pieces: PieceMap, file_index: int) -> int:
        """A descriptor of the session's copy of a file (where libtorrent saves it)."""
        with self._lock:
            fd = self._files.get(file_index)
            if fd is None:
                if self._stop.is_set():
                    raise SourceError("the fetcher was closed")
                path = os.path.join(self._workdir, *pieces.file(file_index).path.split("/"))
                fd = os.open(path, os.O_RDONLY)
                self._files[file_index] = fd
            return fd

    def _read_back(self, index: int) -> bytes | None:
        future: Future[bytes | None] = Future()
        with self._lock:
            self._waiting.setdefault(index, []).append(future)
        self.handle.read_piece(index)
        try:
            return future.result(timeout=self.options.timeout)
        except (FutureTimeout, SourceError):
            self._withdraw(index, future)
            return None

    @property
    def bytes_from_peers(self) -> int:
        return int(self.handle.status().total_payload_download)

    def refresh_stats(self) -> FetchTotals:
        peers = self.bytes_from_peers
        web = self.webseeds.stats.bytes_fetched if self.webseeds is not None else 0
        with self.stats.lock:
            self.stats.bytes_fetched = peers + web
        return FetchTotals(peers, web, self.peer_pieces, self.webseed_pieces)

    def add_peer(self, peer: Peer) -> None:
        self.peers.append(peer)
        self._connect(peer)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self.refresh_stats()
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            waiting = [f for futures in self._waiting.values() for f in futures]
            self._waiting.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(SourceError("the fetcher was closed"))
        with self._lock:
            files, self._files = list(self._files.values()), {}
        for fd in files:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self.session.remove_torrent(self.handle)
        self.session = None
        if self.webseeds is not None:
            self.webseeds.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    # -- internals -------------------------------------------------------------------------

    def _connect(self, peer: Peer) -> None:
        with contextlib.suppress(Exception):
            self.handle.connect_peer((peer[0], int(peer[1])))

    def _reconnect(self) -> None:
        """Dial the known peers again when none is connected.

        While nothing is wanted the torrent counts as finished, and seeders drop
        finished peers ("upload only" meets "upload only"); a new read must dial them
        at once rather than wait for libtorrent's reconnect timers.
        """
        if self.peers and self.handle.status().num_peers == 0:
            for peer in self.peers:
                self._connect(peer)

    def _tune_connections(self, now: float) -> None:
        """TCP_NODELAY on connections to peers not seen before (see set_nodelay): on
        each read until every known peer's connection has it, then once a second (the
        session's list of peers is a round trip to its thread)."""
        if len(self._nodelay) >= len(self.peers) and now - self._last_tuned < 1.0:
            return
        self._last_tuned = now
        try:
            connected = {(str(p.ip[0]), int(p.ip[1])) for p in self.handle.get_peer_info()}
        except RuntimeError:
            return
        new = connected - self._nodelay
        if new:
            self._nodelay |= set_nodelay(new)

    def _available(self, index: int) -> bool:
        try:
            return bool(self.handle.piece_availability()[index] > 0)
        except (IndexError, RuntimeError):
            return False

    def _withdraw(self, index: int, future: Future[bytes | None]) -> None:
        with self._lock:
            futures = self._waiting.get(index, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(index, None)
                self.handle.reset_piece_deadline(index)
                self.handle.piece_priority(index, 0)

    def _from_webseeds(
        self, pieces: PieceMap, piece: Piece, verify: Verifier | None, reason: str
    ) -> bytes:
        if self.webseeds is None:
            raise PieceUnavailable(f"piece {piece.index}: {reason}, and there is no web seed")
        if verify is None and not pieces.can_verify(piece):
            raise PieceUnavailable(
                f"piece {piece.index}: {reason}, and a web seed's copy could not be checked"
            )
        data = self.webseeds.fetch_piece(pieces, piece, verify)
        with self._lock:
            self.webseed_pieces += 1
        self.stats.add(pieces=1)
        return data

    def _pump(self) -> None:
        lt = self.lt
        while not self._stop.is_set():
            session = self.session
            if session is None:
                return
            if session.wait_for_alert(100) is None:
                continue
            for alert in session.pop_alerts():
                if isinstance(alert, lt.read_piece_alert):
                    self._deliver(alert)
                elif isinstance(alert, lt.piece_finished_alert):
                    with self._lock:
                        self._have.add(alert.piece_index)
                        finished = self._waiting.pop(alert.piece_index, [])
                    for future in finished:
                        if not future.done():
                            future.set_result(None)  # read from the files by the waiter

    def _deliver(self, alert: Any) -> None:
        with self._lock:
            futures = self._waiting.pop(alert.piece, [])
        if not futures:
            return
        error = alert.error
        if error and error.value():
            exc = SourceError(f"libtorrent could not read piece {alert.piece}: {error.message()}")
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        data = bytes(alert.buffer)
        for future in futures:
            if not future.done():
                future.set_result(data)


@dataclass(frozen=True, slots=True)
class FetchTotals:
    from_peers: int  # payload bytes libtorrent downloaded
    from_webseeds: int  # bytes the web seed fallback received
    peer_pieces: int
    webseed_pieces: int
