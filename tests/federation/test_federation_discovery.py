"""WebFinger and NodeInfo documents."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from holdfast import __version__
from holdfast.federation.discovery import (
    NODEINFO_CONTENT_TYPE,
    WEBFINGER_HEADERS,
    FederationPolicy,
    NodeInfoInput,
    nodeinfo_discovery,
    nodeinfo_document,
    parse_acct,
    webfinger,
)
from holdfast.federation.documents import InstanceIdentity
from holdfast.federation.errors import DocumentError, WebFingerError
from tests.federation.helpers import load_vector

IDENTITY = InstanceIdentity("https://data.example.org", "archive", "Example Archive")
LOCAL = InstanceIdentity("http://127.0.0.1:8001", "peer-a", "Peer A")
SCHEMA = load_vector("nodeinfo-2.1-schema.json")


@pytest.mark.parametrize(
    ("identity", "resource"),
    [
        (IDENTITY, "acct:archive@data.example.org"),
        (IDENTITY, "acct:ARCHIVE@Data.Example.Org"),
        (IDENTITY, "acct:archive@data.example.org:443"),
        (IDENTITY, "https://data.example.org/actor"),
        (IDENTITY, "https://data.example.org/"),
        (LOCAL, "acct:peer-a@127.0.0.1:8001"),
    ],
)
def test_webfinger_finds_the_instance(identity: InstanceIdentity, resource: str) -> None:
    jrd = webfinger(resource, identity)
    assert jrd["subject"] == identity.acct
    assert identity.actor_url in jrd["aliases"]
    self_link = next(link for link in jrd["links"] if link["rel"] == "self")
    assert self_link == {
        "rel": "self",
        "type": "application/activity+json",
        "href": identity.actor_url,
    }


def test_webfinger_round_trip_through_the_actor() -> None:
    # Mastodon checks that acct:preferredUsername@actor-host resolves back to the actor.
    jrd = webfinger(IDENTITY.acct, IDENTITY)
    user, host = parse_acct(jrd["subject"])
    assert (user, host) == (IDENTITY.name, "data.example.org")
    assert webfinger(f"acct:{user}@{host}", IDENTITY)["links"][0]["href"] == IDENTITY.actor_url


@pytest.mark.parametrize(
    "resource",
    [
        None,
        "",
        "archive@data.example.org",
        "acct:",
        "acct:archive",
        "acct:@data.example.org",
        "acct:archive@",
        "acct:arch ive@data.example.org",
        "acct:archive@data example.org",
        "acct:archive@data.example.org:0",
        "acct:archive@data.example.org:99999",
        "acct:archive@data.example.org:http",
        "acct:archive@-bad-.example",
        "acct:archive@[::1",
        "acct:arch/ive@data.example.org",
        "acct:archive@data.example.org\n",
        "acct:" + "a" * 600 + "@data.example.org",
        "https://",
        "=acct:archive@data.example.org",
    ],
)
def test_malformed_resources_get_400(resource: str | None) -> None:
    with pytest.raises(WebFingerError) as caught:
        webfinger(resource, IDENTITY)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "resource",
    [
        "acct:someone@data.example.org",
        "acct:archive@other.example.org",
        "acct:archive@data.example.org:8443",
        "https://data.example.org/users/someone",
        "https://other.example.org/actor",
        # RFC 7033 4.5: any URI scheme may name a resource; none of these is known here
        "mailto:archive@data.example.org",
        "urn:x:y",
        "foo://data.example.org/archive",
    ],
)
def test_unknown_resources_get_404(resource: str) -> None:
    with pytest.raises(WebFingerError) as caught:
        webfinger(resource, IDENTITY)
    assert caught.value.status == 404


def test_webfinger_is_open_to_any_origin() -> None:
    assert WEBFINGER_HEADERS == {"Access-Control-Allow-Origin": "*"}


def test_parse_acct_ipv6_host() -> None:
    assert parse_acct("acct:a@[::1]:8080") == ("a", "[::1]:8080")


def test_nodeinfo_discovery() -> None:
    assert nodeinfo_discovery("https://data.example.org") == {
        "links": [
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": "https://data.example.org/nodeinfo/2.1",
            }
        ]
    }
    assert NODEINFO_CONTENT_TYPE.startswith("application/json; profile=")


@pytest.mark.parametrize(
    "policy",
    [
        FederationPolicy(),
        FederationPolicy(
            mode="allowlist", peers=("b.example", "c.example:8443"), publish_peers=True
        ),
        FederationPolicy(mode="blocklist", peers=("spam.example",), auto_accept_follows=False),
    ],
)
def test_nodeinfo_document_follows_the_schema(policy: FederationPolicy) -> None:
    info = NodeInfoInput(
        node_name="Example Archive",
        node_description="Research data, kept.",
        users_total=3,
        users_active_month=2,
        users_active_halfyear=3,
        datasets=270,
        uploads=1000,
        policy=policy,
    )
    document = nodeinfo_document(info)
    jsonschema.Draft4Validator(SCHEMA).validate(document)
    assert document["software"] == {"name": "holdfast", "version": __version__}
    assert document["usage"]["localPosts"] == 1270
    federation = document["metadata"]["federation"]
    assert federation["mode"] == policy.mode
    assert federation["autoAcceptFollows"] is policy.auto_accept_follows
    if policy.mode == "allowlist":
        assert federation["allowlist"] == ["b.example", "c.example:8443"]
    else:
        assert "allowlist" not in federation
    # A blocklist is not published unless asked for.
    assert "blocklist" not in federation


def test_schema_rejects_a_broken_document() -> None:
    # The schema check above can fail: a wrong version is caught.
    document: dict[str, Any] = nodeinfo_document(NodeInfoInput(node_name="x"))
    document["version"] = "2.0"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(document)


@pytest.mark.parametrize(
    "build",
    [
        lambda: FederationPolicy(mode="closed"),  # type: ignore[arg-type]
        lambda: FederationPolicy(mode="blocklist", peers=("not a host!",)),
        lambda: NodeInfoInput(node_name="x", users_total=-1),
        lambda: NodeInfoInput(node_name="x", datasets=True),
    ],
)
def test_bad_nodeinfo_input_is_refused(build: Any) -> None:
    with pytest.raises(DocumentError):
        build()
