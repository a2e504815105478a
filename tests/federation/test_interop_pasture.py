"""fediverse-pasture's `verify_actor` (PyPI `fediverse-pasture`) checks our instance actor.

The pasture server runs in a child process on 127.0.0.1 with its six test actors:
alice and dean post unsigned, bob and emily sign their POSTs, claire and frank also
refuse unsigned fetches of themselves (so our key fetch must be signed); alice, bob and
claire can be found by WebFinger. For each it fetches our actor and posts to our inbox;
then it resolves our `preferredUsername` by WebFinger and compares the actor id.
What Mastodon would do, and what we expect: every actor can fetch ours, signed posts
are accepted, unsigned ones are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.interop.children import ChildServer
from tests.federation.interop.instances import InstanceThread

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SIGNED = ["bob", "claire", "emily", "frank"]
UNSIGNED = ["alice", "dean"]


@pytest.fixture
def pasture(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with ChildServer(
        "tests.federation.interop.pasture_server", workdir=tmp_path / "pasture"
    ) as info:
        yield info


def verify_actor(pasture: dict[str, Any], actor_uri: str) -> dict[str, Any]:
    response = httpx.get(
        pasture["base_url"] + "/",
        params={"actor_uri": actor_uri},
        headers={"Accept": "application/json"},
        timeout=180,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_verify_actor_accepts_our_actor(
    make_settings: Callable[..., Any], pasture: dict[str, Any]
) -> None:
    with InstanceThread(make_settings, name="holdfast") as node:
        report = verify_actor(pasture, node.actor_url)
    result, steps = report["result"], json.loads(report["messages"])
    assert result["webfinger"] is True, steps
    for name in SIGNED:
        assert result[name] == {"get_actor": True, "post_inbox": True}, (name, steps)
    for name in UNSIGNED:
        assert result[name] == {"get_actor": True, "post_inbox": False}, (name, steps)


def test_verify_actor_also_resolves_the_acct_uri(
    make_settings: Callable[..., Any], pasture: dict[str, Any]
) -> None:
    with InstanceThread(make_settings, name="holdfast") as node:
        report = verify_actor(pasture, f"acct:holdfast@{node.host}")
    steps = json.loads(report["messages"])["steps"]
    assert f"Resolved to {node.actor_url}" in steps
    assert report["result"]["webfinger"] is True


def test_verify_actor_reports_a_broken_actor(pasture: dict[str, Any]) -> None:
    # The checker can fail: pointed at its own unsigned-inbox actor, it reports that
    # alice may post without a signature, which our instance must never allow.
    report = verify_actor(pasture, pasture["base_url"] + "/alice")
    assert report["result"]["alice"]["post_inbox"] is True
