"""Scraping the external trackers named in torrents.

`Scraper.scrape(url, infohashes)` asks one tracker for the seeders, leechers and
completed counts of many swarms and never raises for anything the tracker does:
the answer is a `ScrapeOutcome` holding the stats it got and, if the tracker failed,
a `ScrapeError` whose `kind` (a `ScrapeFailure`) drives the backoff in `backoff.py`
and whose `message` is the tracker's own failure reason, verbatim, when it gave one.

- UDP trackers (BEP 15): one connect, then up to 74 infohashes per datagram, several
  datagrams in flight, each retried on timeout.
- HTTP(S) trackers (BEP 48): the scrape URL is the announce URL with its last path
  segment's "announce" replaced by "scrape". Infohashes go in batches of
  `http_batch`; a tracker that refuses multi-hash scrapes (or answers only one of
  several hashes) is detected and asked one hash at a time, and the outcome says
  so (`multi_scrape`) so the next run does not have to find out again.
- Infohashes are v1 infohashes or v2 ones (truncated to 20 bytes, as v2 clients
  announce them); a hybrid torrent is scraped as its two swarms.

Every answer is treated as hostile: sizes are capped, bencoding goes through the
strict decoder in `holdfast.torrents.bencode` with small limits, counts are
range-checked, UDP answers are matched to random transaction ids on a socket
connected to the tracker, and connections go only to public addresses unless
`allow_private_addresses` is set (see `addresses.py`). Concurrency is bounded
across trackers and within one tracker.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import secrets
import socket
import ssl
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote_from_bytes, urljoin, urlsplit

import httpcore

from holdfast import __version__
from holdfast.swarm.addresses import AddressRefused, ResolutionFailed, resolve, vetted_pool
from holdfast.swarm.backoff import ScrapeError, ScrapeFailure
from holdfast.swarm.tracker import INFOHASH_LENGTH, SwarmStats
from holdfast.swarm.udp_tracker import (
    ACTION_CONNECT,
    ACTION_ERROR,
    ACTION_SCRAPE,
    MAX_SCRAPE_HASHES,
    PROTOCOL_ID,
)
from holdfast.torrents import bencode

__all__ = [
    "ScrapeError",
    "ScrapeFailure",
    "ScrapeOutcome",
    "Scraper",
    "classify_failure_reason",
    "parse_scrape_response",
    "scrape_url",
    "swarm_key",
]

MAX_URL_LENGTH = 2048
# opentracker answers only the first 64 infohashes of a multi-hash scrape, and
# silently, so no batch may be larger (longer URLs also meet server limits).
MAX_HTTP_BATCH = 64
MAX_REASON_CHARS = 1024  # a failure reason longer than this is cut, and says so
MAX_COUNT = 2**31 - 1  # larger seeder/leecher counts are not believable (nor storable)
MAX_MIN_INTERVAL = 7 * 24 * 3600.0
MAX_REDIRECTS = 3
UDP_CONNECTION_ID_AGE = 50.0  # BEP 15: a connection id may be used for one minute

# Failure reasons that mean "not now" rather than "no".
_RATE_LIMIT_WORDS = re.compile(
    r"try (again )?later|rate.?limit|too many|slow down|overload|busy|retry", re.IGNORECASE
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class ScrapeOutcome:
    """The result of scraping one tracker for some swarms.

    `stats` holds every swarm the tracker reported (keyed by 20-byte infohash); a
    swarm it does not know is absent. When `error` is set the attempt failed, but
    `stats` still holds what was answered before the failure.
    """

    url: str
    stats: Mapping[bytes, SwarmStats] = field(default_factory=dict)
    error: ScrapeError | None = None
    #: what this attempt learned about multi-hash HTTP scrape (None: nothing)
    multi_scrape: bool | None = None
    #: the tracker's `min_request_interval`, in seconds, if it sent one
    min_interval: float | None = None
    elapsed: float = 0.0


def swarm_key(infohash: bytes) -> bytes:
    """The 20 bytes a swarm is known by: a v1 infohash, or a v2 one truncated."""
    if len(infohash) == INFOHASH_LENGTH:
        return bytes(infohash)
    if len(infohash) == 32:
        return bytes(infohash[:INFOHASH_LENGTH])
    raise ValueError("an infohash is 20 (v1) or 32 (v2) bytes")


def scrape_url(announce_url: str) -> str:
    """The BEP 48 scrape URL of an HTTP(S) announce URL; ScrapeError(UNSUPPORTED)
    when it has none."""
    parts = urlsplit(announce_url)
    head, slash, last = parts.path.rpartition("/")
    if not slash or not last.startswith("announce"):
        raise ScrapeError(ScrapeFailure.UNSUPPORTED, "the announce URL does not end in /announce")
    path = f"{head}/scrape{last[len('announce') :]}"
    return parts._replace(path=path, fragment="").geturl()


def classify_failure_reason(reason: bytes | str) -> ScrapeError:
    """A tracker's failure reason as a ScrapeError, text kept verbatim (cut if huge)."""
    text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else reason
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS] + " [cut]"
    if _RATE_LIMIT_WORDS.search(text):
        return ScrapeError(ScrapeFailure.RATE_LIMITED, text)
    return ScrapeError(ScrapeFailure.TRACKER_FAILURE, text)


def _count(entry: Mapping[bytes, Any], key: bytes, *, required: bool) -> int:
    value = entry.get(key)
    if value is None and not required:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ScrapeError(
            ScrapeFailure.BAD_RESPONSE, f"'{key.decode()}' is not a count: {str(value)[:40]}"
        )
    return value


def parse_scrape_response(
    body: bytes, wanted: Iterable[bytes]
) -> tuple[dict[bytes, SwarmStats], float | None]:
    """The stats for `wanted` infohashes in a bencoded HTTP scrape answer, and the
    tracker's min_request_interval. Raises ScrapeError."""
    try:
        data = bencode.decode(body, max_size=len(body), max_depth=8)
    except bencode.BencodeError:
        # Trackers in the wild send unsorted keys, which libtorrent accepts; so do
        # we, through the tolerant decoder, with a small token budget.
        try:
            data = bencode.decode_tolerant(
                body, max_size=len(body), max_depth=8, max_tokens=100_000
            ).value
        except bencode.BencodeError as exc:
            raise ScrapeError(
                ScrapeFailure.BAD_RESPONSE, f"not a bencoded answer: {exc.reason}"
            ) from None
    if not isinstance(data, dict):
        raise ScrapeError(ScrapeFailure.BAD_RESPONSE, "the answer is not a dictionary")
    reason = data.get(b"failure reason")
    if reason is not None:
        if not isinstance(reason, bytes):
            raise ScrapeError(ScrapeFailure.BAD_RESPONSE, "the failure reason is not a string")
        raise classify_failure_reason(reason)
    files = data.get(b"files")
    if not isinstance(files, dict):
        raise ScrapeError(ScrapeFailure.BAD_RESPONSE, "the answer has no 'files' dictionary")
    stats: dict[bytes, SwarmStats] = {}
    for infohash in wanted:
        entry = files.get(infohash)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ScrapeError(ScrapeFailure.BAD_RESPONSE, "a 'files' entry is not a dictionary")
        stats[infohash] = SwarmStats(
            seeders=_count(entry, b"complete", required=True),
            leechers=_count(entry, b"incomplete", required=True),
            completed=_count(entry, b"downloaded", required=False),
        )
    min_interval: float | None = None
    flags = data.get(b"flags")
    if isinstance(flags, dict):
        value = flags.get(b"min_request_interval")
        if type(value) is int and value > 0:
            min_interval = float(min(value, MAX_MIN_INTERVAL))
    return stats, min_interval


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- UDP


class _UDPClient(asyncio.DatagramProtocol):
    """A socket connected to one UDP tracker, matching answers to transaction ids."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, asyncio.Future[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 8:
            return
        waiter = self.pending.get(int.from_bytes(data[4:8], "big"))
        if waiter is not None and not waiter.done():
            waiter.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error (port unreachable: nothing listens) fails whatever waits.
        for waiter in self.pending.values():
            if not waiter.done():
                waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.error_received(exc or ConnectionError("socket closed"))

    async def request(
        self, build: Callable[[int], bytes], *, timeout: float, retries: int
    ) -> bytes:
        """Send build(transaction_id) until an answer comes; retried with a new id."""
        loop = asyncio.get_running_loop()
        for _ in range(retries + 1):
            transaction_id = secrets.randbits(32)
            while transaction_id in self.pending:
                transaction_id = secrets.randbits(32)
            waiter: asyncio.Future[bytes] = loop.create_future()
            self.pending[transaction_id] = waiter
            try:
                if self.transport is None or self.transport.is_closing():
                    raise ScrapeError(ScrapeFailure.REFUSED, "the socket is closed")
                self.transport.sendto(build(transaction_id))
                async with asyncio.timeout(timeout):
                    return await waiter
            except TimeoutError:
                continue
            except OSError as exc:
                raise ScrapeError(ScrapeFailure.REFUSED, _describe(exc)) from None
            finally:
                del self.pending[transaction_id]
        raise ScrapeError(ScrapeFailure.TIMEOUT, f"no answer after {retries + 1} tries")


def _udp_error(data: bytes) -> ScrapeError:
    return classify_failure_reason(data[8:])


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


# --- the scraper


@dataclass
class _Progress:
    """What one attempt has gathered so far (kept when a later step fails)."""

    stats: dict[bytes, SwarmStats] = field(default_factory=dict)
    multi_scrape: bool | None = None
    min_interval: float | None = None


class Scraper:
    """Scrapes external trackers with bounded concurrency; one per process or job run.

    Use as `async with Scraper(...) as scraper:` (it holds an HTTP connection pool).
    """

    def __init__(
        self,
        *,
        allow_private_addresses: bool = False,
        timeout: float = 15.0,
        udp_timeout: float = 3.0,
        udp_retries: int = 2,
        max_trackers: int = 16,
        max_requests_per_tracker: int = 4,
        http_batch: int = 50,
        max_response_bytes: int = 256 * 1024,
        user_agent: str = f"holdfast/{__version__}",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not 1 <= http_batch <= MAX_HTTP_BATCH:
            raise ValueError(f"http_batch must be between 1 and {MAX_HTTP_BATCH}")
        if min(max_trackers, max_requests_per_tracker) < 1 or udp_retries < 0:
            raise ValueError("concurrency limits must be positive")
        self.allow_private_addresses = allow_private_addresses
        self.timeout = timeout
        self.udp_timeout = udp_timeout
        self.udp_retries = udp_retries
        self.max_requests_per_tracker = max_requests_per_tracker
        self.http_batch = http_batch
        self.max_response_bytes = max_response_bytes
        self.user_agent = user_agent.encode("ascii", "replace")
        self._trackers = asyncio.Semaphore(max_trackers)
        self._pool = vetted_pool(
            allow_private=allow_private_addresses,
            max_connections=max_trackers * max_requests_per_tracker,
            ssl_context=ssl_context,
        )

    async def __aenter__(self) -> Scraper:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def scrape_many(
        self,
        work: Mapping[str, Sequence[bytes]],
        *,
        multi_scrape: Mapping[str, bool | None] | None = None,
    ) -> dict[str, ScrapeOutcome]:
        """Scrape several trackers at once (at most `max_trackers` at a time)."""
        known = multi_scrape or {}
        urls = list(work)
        outcomes = await asyncio.gather(
            *(self.scrape(url, work[url], multi_scrape=known.get(url)) for url in urls)
        )
        return dict(zip(urls, outcomes, strict=True))

    async def scrape(
        self,
        url: str,
        infohashes: Sequence[bytes],
        *,
        multi_scrape: bool | None = None,
        deadline: float | None = None,
    ) -> ScrapeOutcome:
        """Scrape one tracker for these swarms (v1 or v2 infohashes).

        `multi_scrape` is what is known about the tracker's multi-hash HTTP scrape
        (TrackerState.multi_scrape); None finds out. `deadline` bounds the whole
        scrape in seconds (a job holding a lock must finish in time): past it, the
        outcome is a TIMEOUT with the stats gathered so far.
        """
        keys = list(dict.fromkeys(swarm_key(infohash) for infohash in infohashes))
        if not keys:
            raise ValueError("no infohashes to scrape")
        progress = _Progress()
        error: ScrapeError | None = None
        started = time.perf_counter()
        async with self._trackers:
            try:
                async with asyncio.timeout(deadline):
                    await self._scrape_one(url, keys, multi_scrape, progress)
            except TimeoutError:
                error = ScrapeError(ScrapeFailure.TIMEOUT, f"not finished within {deadline} s")
            except ScrapeError as exc:
                error = exc
            except ResolutionFailed as exc:
                error = ScrapeError(ScrapeFailure.DNS, exc.message)
            except AddressRefused as exc:
                error = ScrapeError(ScrapeFailure.FORBIDDEN_ADDRESS, exc.message)
            except ValueError as exc:  # from urlsplit: a bad port or IPv6 literal
                error = ScrapeError(ScrapeFailure.UNSUPPORTED, f"invalid tracker URL: {exc}")
        return ScrapeOutcome(
            url,
            progress.stats,
            error,
            progress.multi_scrape,
            progress.min_interval,
            time.perf_counter() - started,
        )

    async def _scrape_one(
        self, url: str, keys: list[bytes], multi_scrape: bool | None, progress: _Progress
    ) -> None:
        if len(url) > MAX_URL_LENGTH:
            raise ScrapeError(ScrapeFailure.UNSUPPORTED, "the tracker URL is too long")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "udp":
            await self._scrape_udp(parts.hostname, parts.port, keys, progress)
        elif scheme in ("http", "https"):
            await self._scrape_http(scrape_url(url), keys, multi_scrape, progress)
        else:
            raise ScrapeError(
                ScrapeFailure.UNSUPPORTED, f"cannot scrape {scheme or 'this'} trackers"
            )

    # --- UDP

    async def _scrape_udp(
        self, host: str | None, port: int | None, keys: list[bytes], progress: _Progress
    ) -> None:
        if not host or not port:
            raise ScrapeError(ScrapeFailure.UNSUPPORTED, "a UDP tracker URL needs a host and port")
        addresses = await resolve(
            host,
            port,
            allow_private=self.allow_private_addresses,
            kind=socket.SOCK_DGRAM,
            timeout=self.timeout,
        )
        loop = asyncio.get_running_loop()
        try:
            transport, client = await loop.create_datagram_endpoint(
                _UDPClient, remote_addr=(addresses[0], port)
            )
        except OSError as exc:
            raise ScrapeError(ScrapeFailure.REFUSED, _describe(exc)) from None
        try:
            connection = _UDPConnection(client, self.udp_timeout, self.udp_retries)
            in_flight = asyncio.Semaphore(self.max_requests_per_tracker * 4)

            async def one(batch: list[bytes]) -> None:
                async with in_flight:
                    connection_id = await connection.id()
                    payload = b"".join(batch)
                    data = await client.request(
                        lambda txid: (
                            connection_id
                            + ACTION_SCRAPE.to_bytes(4, "big")
                            + txid.to_bytes(4, "big")
                            + payload
                        ),
                        timeout=self.udp_timeout,
                        retries=self.udp_retries,
                    )
                action = int.from_bytes(data[:4], "big")
                if action == ACTION_ERROR:
                    raise _udp_error(data)
                if action != ACTION_SCRAPE or len(data) < 8 + 12 * len(batch):
                    raise ScrapeError(ScrapeFailure.BAD_RESPONSE, "malformed UDP scrape answer")
                for index, infohash in enumerate(batch):
                    seeders, completed, leechers = struct.unpack_from(">III", data, 8 + 12 * index)
                    if max(seeders, completed, leechers) > MAX_COUNT:
                        raise ScrapeError(ScrapeFailure.BAD_RESPONSE, "implausible counts")
                    progress.stats[infohash] = SwarmStats(seeders, leechers, completed)

            batches = [
                keys[i : i + MAX_SCRAPE_HASHES] for i in range(0, len(keys), MAX_SCRAPE_HASHES)
            ]
            results = await asyncio.gather(*(one(b) for b in batches), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        finally:
            transport.close()

    # --- HTTP

    async def _scrape_http(
        self, base: str, keys: list[bytes], multi: bool | None, progress: _Progress
    ) -> None:
        limit = asyncio.Semaphore(self.max_requests_per_tracker)

        async def ask(batch: list[bytes]) -> dict[bytes, SwarmStats]:
            async with limit:
                body = await self._http_get(_with_infohashes(base, batch))
            stats, min_interval = parse_scrape_response(body, batch)
            if min_interval is not None:
                progress.min_interval = max(progress.min_interval or 0.0, min_interval)
            progress.stats.update(stats)
            return stats

        async def singles(infohashes: list[bytes]) -> None:
            await _gather_all(ask([infohash]) for infohash in infohashes)

        if multi is False or len(keys) == 1:
            await singles(keys)
            return
        # The first batch finds out what the tracker takes: a failed multi-hash
        # scrape is retried with half as many hashes (some trackers cap the URL
        # length or the count), down to one, where it is a plain single scrape.
        size = min(self.http_batch, len(keys))
        while True:
            try:
                answered = await ask(keys[:size])
                break
            except ScrapeError as error:
                if size == 1 or error.kind not in _MAYBE_MULTI_REFUSED:
                    raise
                size //= 2
        first, rest = keys[:size], keys[size:]
        if size == 1:
            progress.multi_scrape = False
            await singles(rest)
            return
        if multi is None:
            missing = [infohash for infohash in first if infohash not in answered]
            # Some trackers read only one info_hash: ask for a missing one alone.
            if len(answered) <= 1 and missing and await ask(missing[:1]):
                progress.multi_scrape = False
                await singles(missing[1:] + rest)
                return
            progress.multi_scrape = True
        batches = [rest[i : i + size] for i in range(0, len(rest), size)]
        await _gather_all(ask(batch) for batch in batches)

    async def _http_get(self, url: str) -> bytes:
        """GET url within the size and time limits; follows a few redirects."""
        timeouts = {"connect": self.timeout, "read": self.timeout, "write": self.timeout}
        timeouts["pool"] = self.timeout
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with asyncio.timeout(self.timeout):
                    status, headers, body = await self._fetch(url, timeouts)
            except TimeoutError:
                raise ScrapeError(ScrapeFailure.TIMEOUT, "no complete answer in time") from None
            except (httpcore.TimeoutException, httpcore.PoolTimeout) as exc:
                raise ScrapeError(ScrapeFailure.TIMEOUT, _describe(exc)) from None
            except httpcore.ConnectError as exc:
                raise ScrapeError(ScrapeFailure.REFUSED, _describe(exc)) from None
            except (httpcore.ReadError, httpcore.WriteError) as exc:
                raise ScrapeError(ScrapeFailure.REFUSED, _describe(exc)) from None
            except (httpcore.RemoteProtocolError, httpcore.LocalProtocolError) as exc:
                raise ScrapeError(ScrapeFailure.BAD_RESPONSE, _describe(exc)) from None
            except (httpcore.UnsupportedProtocol, httpcore.ProtocolError) as exc:
                raise ScrapeError(ScrapeFailure.UNSUPPORTED, _describe(exc)) from None
            if status in _REDIRECTS:
                location = headers.get("location")
                target = urljoin(url, location) if location else ""
                if urlsplit(target).scheme not in ("http", "https"):
                    raise ScrapeError(
                        ScrapeFailure.HTTP_ERROR, f"HTTP {status} without a usable Location"
                    )
                url = target
                continue
            if status in (429, 503):
                raise ScrapeError(
                    ScrapeFailure.RATE_LIMITED,
                    f"HTTP {status}",
                    retry_after=_retry_after(headers.get("retry-after")),
                )
            if status != 200:
                raise ScrapeError(ScrapeFailure.HTTP_ERROR, f"HTTP {status}")
            return body
        raise ScrapeError(ScrapeFailure.HTTP_ERROR, "too many redirects")

    async def _fetch(
        self, url: str, timeouts: dict[str, float]
    ) -> tuple[int, dict[str, str], bytes]:
        request_headers = [
            (b"User-Agent", self.user_agent),
            (b"Accept-Encoding", b"gzip, identity"),
        ]
        limit = self.max_response_bytes
        async with self._pool.stream(
            "GET", url, headers=request_headers, extensions={"timeout": timeouts}
        ) as response:
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in response.headers
            }
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ScrapeError(
                    ScrapeFailure.BAD_RESPONSE, f"the answer is larger than {limit} bytes"
                )
            body = bytearray()
            if response.status == 200:
                async for chunk in cast(Any, response).aiter_stream():
                    body += chunk
                    if len(body) > limit:
                        raise ScrapeError(
                            ScrapeFailure.BAD_RESPONSE, f"the answer is larger than {limit} bytes"
                        )
        data = bytes(body)
        if headers.get("content-encoding", "identity").strip().lower() == "gzip":
            data = _gunzip(data, limit)
        return response.status, headers, data


_MAYBE_MULTI_REFUSED = frozenset(
    {ScrapeFailure.TRACKER_FAILURE, ScrapeFailure.HTTP_ERROR, ScrapeFailure.BAD_RESPONSE}
)


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ScrapeError(ScrapeFailure.BAD_RESPONSE, f"bad gzip data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ScrapeError(ScrapeFailure.BAD_RESPONSE, f"the answer is larger than {limit} bytes")
    return out


def _with_infohashes(base: str, infohashes: list[bytes]) -> str:
    query = "&".join("info_hash=" + quote_from_bytes(h, safe="") for h in infohashes)
    return f"{base}{'&' if '?' in base else '?'}{query}"


async def _gather_all(awaitables: Iterable[Any]) -> None:
    """Run all; after all finish, raise the first failure (so every answer is kept)."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


class _UDPConnection:
    """The BEP 15 connection id for one tracker, renewed before it gets old."""

    def __init__(self, client: _UDPClient, timeout: float, retries: int) -> None:
        self.client = client
        self.timeout = timeout
        self.retries = retries
        self._id: bytes | None = None
        self._obtained = 0.0
        self._lock = asyncio.Lock()

    async def id(self) -> bytes:
        async with self._lock:
            now = time.monotonic()
            if self._id is None or now - self._obtained > UDP_CONNECTION_ID_AGE:
                data = await self.client.request(
                    lambda txid: struct.pack(">QII", PROTOCOL_ID, ACTION_CONNECT, txid),
                    timeout=self.timeout,
                    retries=self.retries,
                )
                action = int.from_bytes(data[:4], "big")
                if action == ACTION_ERROR:
                    raise _udp_error(data)
                if action != ACTION_CONNECT or len(data) < 16:
                    raise ScrapeError(ScrapeFailure.BAD_RESPONSE, "malformed UDP connect answer")
                self._id = data[8:16]
                self._obtained = now
            return self._id
