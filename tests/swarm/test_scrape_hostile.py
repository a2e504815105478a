"""The scrape client against trackers that misbehave: every failure is classified,
nothing crashes, nothing is believed that should not be."""

from __future__ import annotations

import asyncio
import gzip
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from holdfast.swarm.backoff import ScrapeFailure
from holdfast.swarm.scrape import ScrapeOutcome, Scraper, scrape_url, swarm_key
from holdfast.swarm.tracker import SwarmStats
from tests.swarm.fakes import (
    CONNECTION_ID,
    FakeHTTPTracker,
    FakeUDPTracker,
    http_response,
    parse_query,
    requested_infohashes,
    scrape_body,
    udp_well_behaved,
)
from tests.swarm.helpers import free_port

A, B, C = b"A" * 20, b"B" * 20, b"C" * 20


def run(body: Callable[[Scraper], Awaitable[Any]], **options: Any) -> Any:
    async def go() -> Any:
        options.setdefault("allow_private_addresses", True)
        async with Scraper(**options) as scraper:
            return await body(scraper)

    return asyncio.run(go())


def scrape_fake_http(
    respond: Callable[[bytes], Any],
    infohashes: list[bytes],
    path: str = "/announce",
    multi: bool | None = None,
    **options: Any,
) -> tuple[ScrapeOutcome, list[bytes]]:
    async def body(scraper: Scraper) -> tuple[ScrapeOutcome, list[bytes]]:
        async with FakeHTTPTracker(respond) as fake:
            outcome = await scraper.scrape(fake.url(path), infohashes, multi_scrape=multi)
            return outcome, fake.targets

    return run(body, **options)


def well_behaved(stats: dict[bytes, tuple[int, int, int]]) -> Callable[[bytes], bytes]:
    def respond(target: bytes) -> bytes:
        wanted = requested_infohashes(target)
        return http_response(scrape_body({h: stats[h] for h in wanted if h in stats}))

    return respond


# --- HTTP


def test_http_multi_scrape_and_the_scrape_url() -> None:
    outcome, targets = scrape_fake_http(
        well_behaved({A: (3, 2, 9), B: (1, 0, 0)}), [A, B, C], path="/x/announce.php?passkey=k"
    )
    assert outcome.error is None and outcome.multi_scrape is True
    assert outcome.stats == {A: SwarmStats(3, 2, 9), B: SwarmStats(1, 0, 0)}
    assert len(targets) == 1 and targets[0].startswith(b"/x/scrape.php?passkey=k&info_hash=")
    assert requested_infohashes(targets[0]) == [A, B, C]


def test_v2_infohashes_are_scraped_truncated() -> None:
    v2 = os.urandom(32)
    outcome, targets = scrape_fake_http(well_behaved({v2[:20]: (1, 1, 1)}), [v2, v2[:20]])
    assert outcome.stats == {v2[:20]: SwarmStats(1, 1, 1)}
    assert requested_infohashes(targets[0]) == [v2[:20]]
    with pytest.raises(ValueError, match="20"):
        swarm_key(b"short")


def test_a_tracker_that_reads_only_one_infohash_is_asked_one_at_a_time() -> None:
    stats = {A: (1, 0, 0), B: (2, 0, 0), C: (3, 0, 0)}

    def first_only(target: bytes) -> bytes:
        first = requested_infohashes(target)[0]
        return http_response(scrape_body({first: stats[first]}))

    outcome, targets = scrape_fake_http(first_only, [A, B, C])
    assert outcome.error is None and outcome.multi_scrape is False
    assert outcome.stats == {h: SwarmStats(*s) for h, s in stats.items()}
    # Then, knowing it, only single-hash requests.
    outcome, targets = scrape_fake_http(first_only, [A, B, C], multi=False)
    assert [len(requested_infohashes(t)) for t in targets] == [1, 1, 1]
    assert outcome.multi_scrape is None and len(outcome.stats) == 3


def test_a_tracker_refusing_multi_scrape_falls_back_to_single() -> None:
    def refuse_multi(target: bytes) -> bytes:
        wanted = requested_infohashes(target)
        if len(wanted) > 1:
            return http_response(scrape_body({}, **{"failure reason": b"multi-scrape disabled"}))
        return http_response(scrape_body({wanted[0]: (5, 5, 5)}))

    outcome, _ = scrape_fake_http(refuse_multi, [A, B, C])
    assert outcome.error is None and outcome.multi_scrape is False
    assert outcome.stats == dict.fromkeys([A, B, C], SwarmStats(5, 5, 5))


def test_a_tracker_with_a_smaller_limit_gets_smaller_batches() -> None:
    hashes = [os.urandom(20) for _ in range(40)]

    def at_most_ten(target: bytes) -> bytes:
        wanted = requested_infohashes(target)
        if len(wanted) > 10:
            return http_response(b"<h1>Internal Server Error</h1>", 500)
        return http_response(scrape_body(dict.fromkeys(wanted, (1, 2, 3))))

    outcome, targets = scrape_fake_http(at_most_ten, hashes, http_batch=32)
    assert outcome.error is None and outcome.multi_scrape is True
    assert outcome.stats == dict.fromkeys(hashes, SwarmStats(1, 2, 3))
    assert [len(requested_infohashes(t)) for t in targets] == [32, 16, 8, 8, 8, 8, 8]


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("Torrent not registered with this tracker", ScrapeFailure.TRACKER_FAILURE),
        ("Rate limit exceeded, try again later", ScrapeFailure.RATE_LIMITED),
        ("Überlastet — 請稍後 ☃", ScrapeFailure.TRACKER_FAILURE),
    ],
)
def test_failure_reasons_are_kept_verbatim(reason: str, kind: ScrapeFailure) -> None:
    body = scrape_body({}, **{"failure reason": reason.encode()})
    outcome, _ = scrape_fake_http(lambda _: http_response(body), [A])
    assert outcome.error is not None
    assert outcome.error.kind == kind and outcome.error.message == reason
    assert outcome.stats == {}


def test_a_huge_failure_reason_is_cut() -> None:
    body = scrape_body({}, **{"failure reason": b"x" * 5000})
    outcome, _ = scrape_fake_http(lambda _: http_response(body), [A])
    assert outcome.error is not None
    assert outcome.error.message == "x" * 1024 + " [cut]"


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "120"}, 120.0),
        (503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}, "future"),
        (429, {"Retry-After": "soon"}, None),
        (503, {}, None),
    ],
)
def test_http_rate_limits(status: int, headers: dict[str, str], retry_after: Any) -> None:
    outcome, _ = scrape_fake_http(lambda _: http_response(b"slow down", status, headers), [A])
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.RATE_LIMITED
    if retry_after == "future":
        assert outcome.error.retry_after is not None and outcome.error.retry_after > 1e8
    else:
        assert outcome.error.retry_after == retry_after


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (http_response(b"not bencode at all"), ScrapeFailure.BAD_RESPONSE, "bencoded"),
        (http_response(b"li1ei2ee"), ScrapeFailure.BAD_RESPONSE, "dictionary"),
        (http_response(b"d5:filesi3ee"), ScrapeFailure.BAD_RESPONSE, "files"),
        (http_response(b"d5:filesd20:" + A + b"i7eee"), ScrapeFailure.BAD_RESPONSE, "entry"),
        (
            http_response(b"d5:filesd20:" + A + b"d8:completei-1e10:incompletei0eeee"),
            ScrapeFailure.BAD_RESPONSE,
            "count",
        ),
        (
            http_response(b"d5:filesd20:" + A + b"d8:complete1:x10:incompletei0eeee"),
            ScrapeFailure.BAD_RESPONSE,
            "count",
        ),
        (
            http_response(b"d5:filesd20:" + A + b"d8:completei99999999999e10:incompletei0eeee"),
            ScrapeFailure.BAD_RESPONSE,
            "count",
        ),
        (
            http_response(b"d5:filesd20:" + A + b"d10:incompletei0eeee"),
            ScrapeFailure.BAD_RESPONSE,
            "complete",
        ),
        (http_response(b"l" * 50 + b"e" * 50), ScrapeFailure.BAD_RESPONSE, "bencoded"),
        (http_response(b"d14:failure reasoni3ee"), ScrapeFailure.BAD_RESPONSE, "string"),
        (http_response(b"", 404), ScrapeFailure.HTTP_ERROR, "404"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
            ScrapeFailure.BAD_RESPONSE,
            "larger",
        ),
        (b"this is not HTTP\r\n\r\n", ScrapeFailure.BAD_RESPONSE, ""),
        (http_response(b"", 302), ScrapeFailure.HTTP_ERROR, "Location"),
        (http_response(b"", 302, {"Location": "ftp://x/"}), ScrapeFailure.HTTP_ERROR, "Location"),
    ],
)
def test_garbage_answers(reply: bytes, kind: ScrapeFailure, words: str) -> None:
    outcome, _ = scrape_fake_http(lambda _: reply, [A], max_response_bytes=4096)
    assert outcome.error is not None
    assert outcome.error.kind == kind
    assert words in outcome.error.message
    assert outcome.stats == {}


def test_an_endless_answer_without_length_is_cut_off() -> None:
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    reply = [head] + [b"d5:files" + b"x" * 3000] * 3
    outcome, _ = scrape_fake_http(lambda _: reply, [A], max_response_bytes=4096)
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.BAD_RESPONSE
    assert "larger than 4096" in outcome.error.message


def test_gzip_answers_are_read_and_bombs_refused() -> None:
    good = gzip.compress(scrape_body({A: (1, 2, 3)}))
    outcome, _ = scrape_fake_http(
        lambda _: http_response(good, headers={"Content-Encoding": "gzip"}), [A]
    )
    assert outcome.error is None and outcome.stats == {A: SwarmStats(1, 2, 3)}
    bomb = gzip.compress(b"d5:filesd" + b"0" * 3_000_000)
    assert len(bomb) < 4096
    outcome, _ = scrape_fake_http(
        lambda _: http_response(bomb, headers={"Content-Encoding": "gzip"}),
        [A],
        max_response_bytes=4096,
    )
    assert outcome.error is not None and "larger" in outcome.error.message


def test_a_trickling_tracker_times_out() -> None:
    body = scrape_body({A: (1, 1, 1)})
    reply = [http_response(body)[:20]] + [b"x"] * 20
    outcome, _ = scrape_fake_http(lambda _: reply, [A], timeout=1.0)
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.TIMEOUT


def test_unsorted_keys_from_sloppy_trackers_are_accepted() -> None:
    body = (
        b"d5:filesd20:"
        + A
        + b"d10:incompletei4e8:completei5eee5:flagsd20:min_request_intervali3600eee"
    )
    outcome, _ = scrape_fake_http(lambda _: http_response(body), [A])
    assert outcome.error is None and outcome.stats == {A: SwarmStats(5, 4, 0)}
    assert outcome.min_interval == 3600.0


def test_redirects_are_followed_a_few_times() -> None:
    def respond(target: bytes) -> bytes:
        if target.startswith(b"/scrape"):
            return http_response(b"", 301, {"Location": "/moved?" + target.split(b"?")[1].decode()})
        return http_response(scrape_body({A: (1, 0, 0)}))

    outcome, targets = scrape_fake_http(respond, [A])
    assert outcome.stats == {A: SwarmStats(1, 0, 0)} and targets[1].startswith(b"/moved?")
    outcome, targets = scrape_fake_http(
        lambda t: http_response(b"", 302, {"Location": "/again"}), [A]
    )
    assert outcome.error is not None and "too many redirects" in outcome.error.message
    assert len(targets) == 4


def test_connection_refused_and_dns_failure() -> None:
    async def body(scraper: Scraper) -> list[ScrapeOutcome]:
        port = free_port()
        return [
            await scraper.scrape(f"http://127.0.0.1:{port}/announce", [A]),
            await scraper.scrape(f"udp://127.0.0.1:{port}/announce", [A]),
            await scraper.scrape("http://tracker.example.invalid/announce", [A]),
            await scraper.scrape("udp://tracker.example.invalid:6969/announce", [A]),
        ]

    refused_http, refused_udp, dns_http, dns_udp = run(body)
    assert refused_http.error is not None and refused_http.error.kind == ScrapeFailure.REFUSED
    assert refused_udp.error is not None and refused_udp.error.kind == ScrapeFailure.REFUSED
    assert dns_http.error is not None and dns_http.error.kind == ScrapeFailure.DNS
    assert dns_udp.error is not None and dns_udp.error.kind == ScrapeFailure.DNS


def test_private_addresses_are_refused_in_production_before_any_packet() -> None:
    async def body(scraper: Scraper) -> list[ScrapeOutcome]:
        async with (
            FakeHTTPTracker(well_behaved({A: (1, 1, 1)})) as http,
            FakeUDPTracker(udp_well_behaved({A: (1, 1, 1)})) as udp,
        ):
            outcomes = [
                await scraper.scrape(http.url(), [A]),
                await scraper.scrape(f"http://localhost:{http.port}/announce", [A]),
                await scraper.scrape(udp.url, [A]),
                await scraper.scrape(f"http://[::1]:{http.port}/announce", [A]),
                await scraper.scrape("http://10.1.2.3/announce", [A]),
                await scraper.scrape("udp://169.254.169.254:80/announce", [A]),
            ]
            assert http.targets == [] and udp.received == []
            return outcomes

    for outcome in run(body, allow_private_addresses=False):
        assert outcome.error is not None, outcome.url
        assert outcome.error.kind == ScrapeFailure.FORBIDDEN_ADDRESS
        assert "not a public address" in outcome.error.message


@pytest.mark.parametrize(
    "url",
    [
        "wss://tracker.example/announce",
        "http://tracker.example/stats",
        "http://tracker.example:99999/announce",
        "udp://tracker.example/announce",
        "http://tracker.example/announce?" + "x" * 3000,
        "no scheme at all",
    ],
)
def test_urls_that_cannot_be_scraped(url: str) -> None:
    async def body(scraper: Scraper) -> ScrapeOutcome:
        return await scraper.scrape(url, [A])

    outcome = run(body)
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.UNSUPPORTED


def test_scrape_url_follows_bep_48() -> None:
    assert scrape_url("http://t.example/announce") == "http://t.example/scrape"
    assert (
        scrape_url("https://t.example/a/announce.php?k=1") == "https://t.example/a/scrape.php?k=1"
    )
    assert scrape_url("http://t.example/announce-x") == "http://t.example/scrape-x"


# --- UDP


def scrape_fake_udp(
    respond: Callable[[bytes], list[bytes]], infohashes: list[bytes], **options: Any
) -> tuple[ScrapeOutcome, list[bytes]]:
    options.setdefault("udp_timeout", 0.3)
    options.setdefault("udp_retries", 1)

    async def body(scraper: Scraper) -> tuple[ScrapeOutcome, list[bytes]]:
        async with FakeUDPTracker(respond) as fake:
            return await scraper.scrape(fake.url, infohashes), fake.received

    return run(body, **options)


def test_udp_scrape_splits_into_74_infohashes_per_packet() -> None:
    hashes = [os.urandom(20) for _ in range(200)]
    stats = {h: (i, i + 1, i + 2) for i, h in enumerate(hashes)}
    outcome, received = scrape_fake_udp(udp_well_behaved(stats), hashes)
    assert outcome.error is None
    assert outcome.stats == {h: SwarmStats(s, leech, done) for h, (s, leech, done) in stats.items()}
    scrapes = [p for p in received if p[8:12] == b"\0\0\0\2"]
    assert sorted((len(p) - 16) // 20 for p in scrapes) == [52, 74, 74]
    assert all(p[:8] == CONNECTION_ID for p in scrapes)


def test_udp_lost_packets_are_sent_again() -> None:
    inner = udp_well_behaved({A: (7, 0, 0)})
    seen: list[bytes] = []

    def lossy(packet: bytes) -> list[bytes]:
        action = packet[8:12]
        seen.append(action)
        # The first connect and the first scrape are lost.
        return inner(packet) if seen.count(action) > 1 else []

    outcome, _ = scrape_fake_udp(lossy, [A], udp_retries=2, udp_timeout=0.5)
    assert outcome.error is None and outcome.stats == {A: SwarmStats(7, 0, 0)}
    assert seen.count(b"\0\0\0\0") >= 2 and seen.count(b"\0\0\0\2") >= 2


def test_udp_answers_with_the_wrong_transaction_id_are_ignored() -> None:
    def wrong_txid(packet: bytes) -> list[bytes]:
        return [struct.pack(">II", 0, 12345) + CONNECTION_ID]

    outcome, received = scrape_fake_udp(wrong_txid, [A])
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.TIMEOUT
    assert len(received) == 2  # one try and one retry


def test_udp_tracker_errors_and_malformed_answers() -> None:
    def error(packet: bytes) -> list[bytes]:
        txid = packet[12:16]
        if packet[8:12] == b"\0\0\0\0":
            return [b"\0\0\0\0" + txid + CONNECTION_ID]
        return [b"\0\0\0\3" + txid + "torrent not authorised ✗".encode()]

    outcome, _ = scrape_fake_udp(error, [A])
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.TRACKER_FAILURE
    assert outcome.error.message == "torrent not authorised ✗"

    def short(packet: bytes) -> list[bytes]:
        txid = packet[12:16]
        if packet[8:12] == b"\0\0\0\0":
            return [b"\0\0\0\0" + txid + CONNECTION_ID]
        return [b"\0\0\0\2" + txid + b"\0" * 11]

    outcome, _ = scrape_fake_udp(short, [A])
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.BAD_RESPONSE

    def bad_connect(packet: bytes) -> list[bytes]:
        return [b"\0\0\0\2" + packet[12:16] + b"\0" * 8]

    outcome, _ = scrape_fake_udp(bad_connect, [A])
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.BAD_RESPONSE

    def huge_counts(packet: bytes) -> list[bytes]:
        txid = packet[12:16]
        if packet[8:12] == b"\0\0\0\0":
            return [b"\0\0\0\0" + txid + CONNECTION_ID]
        return [b"\0\0\0\2" + txid + struct.pack(">III", 0xFFFFFFFF, 0, 0)]

    outcome, _ = scrape_fake_udp(huge_counts, [A])
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.BAD_RESPONSE


def test_udp_keeps_what_was_answered_when_a_batch_fails() -> None:
    hashes = [os.urandom(20) for _ in range(100)]
    inner = udp_well_behaved(dict.fromkeys(hashes, (1, 1, 1)))

    def fail_second_batch(packet: bytes) -> list[bytes]:
        if packet[8:12] == b"\0\0\0\2" and packet[16:36] == hashes[74]:
            return []
        return inner(packet)

    outcome, _ = scrape_fake_udp(fail_second_batch, hashes)
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.TIMEOUT
    assert set(outcome.stats) == set(hashes[:74])


def test_many_trackers_at_once_with_bounded_concurrency() -> None:
    active = 0
    most = 0

    async def body(scraper: Scraper) -> dict[str, ScrapeOutcome]:
        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal active, most
            active += 1
            most = max(most, active)
            target = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
            await asyncio.sleep(0.2)
            wanted = requested_infohashes(target)
            writer.write(http_response(scrape_body(dict.fromkeys(wanted, (1, 0, 0)))))
            await writer.drain()
            writer.close()
            active -= 1

        servers = [await asyncio.start_server(slow, "127.0.0.1", 0) for _ in range(6)]
        urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/announce" for s in servers]
        try:
            return await scraper.scrape_many({url: [A] for url in urls})
        finally:
            for server in servers:
                server.close()

    outcomes = run(body, max_trackers=2)
    assert len(outcomes) == 6
    assert all(o.error is None and o.stats == {A: SwarmStats(1, 0, 0)} for o in outcomes.values())
    assert most == 2


def test_scraper_options_are_checked() -> None:
    async def make(**options: Any) -> None:
        Scraper(**options)

    with pytest.raises(ValueError, match="http_batch"):
        asyncio.run(make(http_batch=65))
    with pytest.raises(ValueError, match="positive"):
        asyncio.run(make(max_trackers=0))
    assert parse_query(b"/scrape?a=1") == {"a": "1"}


def test_a_deadline_bounds_the_whole_scrape_and_keeps_what_was_answered() -> None:
    hashes = [os.urandom(20) for _ in range(4)]

    async def body(scraper: Scraper) -> ScrapeOutcome:
        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            target = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
            wanted = requested_infohashes(target)
            if wanted[0] != hashes[0]:
                await asyncio.sleep(5)  # every batch but the first hangs
            writer.write(http_response(scrape_body(dict.fromkeys(wanted, (1, 0, 0)))))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/announce"
        try:
            return await scraper.scrape(url, hashes, multi_scrape=False, deadline=0.5)
        finally:
            server.close()

    outcome = run(body)
    assert outcome.error is not None and outcome.error.kind == ScrapeFailure.TIMEOUT
    assert "0.5 s" in outcome.error.message
    assert outcome.stats == {hashes[0]: SwarmStats(1, 0, 0)}
    assert outcome.elapsed < 2
