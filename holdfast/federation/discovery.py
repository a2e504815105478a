"""Discovery documents: WebFinger (RFC 7033) and NodeInfo 2.1.

WebFinger maps `acct:name@host` to the instance actor, and the actor names the
account back (`preferredUsername` at the actor's host), which is the round trip
Mastodon checks. The route serving it must add `WEBFINGER_HEADERS` (CORS: any
origin may look us up) and answer `WebFingerError.status` (400 malformed, 404
unknown) when `webfinger` raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from holdfast import __version__
from holdfast.federation.documents import ACTIVITY_JSON, InstanceIdentity
from holdfast.federation.errors import DocumentError, WebFingerError

WEBFINGER_PATH = "/.well-known/webfinger"
WEBFINGER_CONTENT_TYPE = "application/jrd+json; charset=utf-8"
WEBFINGER_HEADERS = {"Access-Control-Allow-Origin": "*"}
MAX_RESOURCE_CHARS = 512

NODEINFO_WELL_KNOWN_PATH = "/.well-known/nodeinfo"
NODEINFO_PATH = "/nodeinfo/2.1"
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_CONTENT_TYPE = f'application/json; profile="{NODEINFO_SCHEMA}#"'

_ACCT_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.~-]{0,63}")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"|\[[0-9A-Fa-f:.]+\]"
)
_PORT = re.compile(r"[0-9]{1,5}")


def parse_acct(resource: str) -> tuple[str, str]:
    """Split `acct:user@host[:port]` into (user, host); raise WebFingerError(400) if malformed."""
    if not resource.startswith("acct:"):
        raise WebFingerError(400, "not an acct: URI")
    user, at, authority = resource[len("acct:") :].rpartition("@")
    if not at or not _ACCT_USER.fullmatch(user):
        raise WebFingerError(400, f"malformed account in {resource!r}")
    host, has_port, port = authority, False, ""
    if authority.startswith("["):
        close = authority.find("]")
        after = authority[close + 1 :] if close >= 0 else ""
        if close < 0 or (after and not after.startswith(":")):
            raise WebFingerError(400, f"malformed host in {resource!r}")
        host, has_port, port = authority[: close + 1], bool(after), after[1:]
    elif ":" in authority:
        host, _, port = authority.partition(":")
        has_port = True
    if not _HOST.fullmatch(host):
        raise WebFingerError(400, f"malformed host in {resource!r}")
    if has_port and not (_PORT.fullmatch(port) and 0 < int(port) < 65536):
        raise WebFingerError(400, f"malformed port in {resource!r}")
    return user, authority.lower()


def _same_authority(host: str, identity: InstanceIdentity) -> bool:
    scheme = urlsplit(identity.base_url).scheme
    default = ":443" if scheme == "https" else ":80"
    return host.lower().removesuffix(default) == identity.host


def webfinger(resource: str | None, identity: InstanceIdentity) -> dict[str, Any]:
    """The JRD answering `?resource=`; raises WebFingerError(400 or 404)."""
    if not resource:
        raise WebFingerError(400, "the resource parameter is required")
    if len(resource) > MAX_RESOURCE_CHARS:
        raise WebFingerError(400, "resource too long")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in resource):
        raise WebFingerError(400, "resource contains whitespace or control characters")
    scheme = resource.partition(":")[0].lower() if ":" in resource else ""
    if scheme == "acct":
        user, host = parse_acct(resource)
        if not _same_authority(host, identity) or user.lower() != identity.name.lower():
            raise WebFingerError(404, f"no account {resource!r} here")
    elif scheme in ("http", "https"):
        parts = urlsplit(resource)
        if not parts.hostname:
            raise WebFingerError(400, f"malformed URL {resource!r}")
        if resource not in (identity.actor_url, identity.profile_url, identity.base_url):
            raise WebFingerError(404, f"nothing known as {resource!r}")
    elif re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        # RFC 7033 4.5: any URI scheme may name a resource; this instance knows none other.
        raise WebFingerError(404, f"nothing known as {resource!r}")
    else:
        raise WebFingerError(400, "resource must be an absolute URI")
    return {
        "subject": identity.acct,
        "aliases": [identity.actor_url, identity.profile_url],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": identity.actor_url},
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": identity.profile_url,
            },
        ],
    }


FederationMode = Literal["open", "allowlist", "blocklist"]


@dataclass(frozen=True, slots=True)
class FederationPolicy:
    """How this instance federates, as published in NodeInfo metadata.

    In `open` mode every peer may federate; `allowlist` admits only `peers`;
    `blocklist` admits everyone but `peers`. The list is published only when
    `publish_peers` is set.
    """

    mode: FederationMode = "open"
    peers: tuple[str, ...] = ()
    publish_peers: bool = False
    auto_accept_follows: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("open", "allowlist", "blocklist"):
            raise DocumentError(f"unknown federation mode {self.mode!r}")
        for peer in self.peers:
            if not isinstance(peer, str) or not _HOST.fullmatch(peer.split(":")[0]):
                raise DocumentError(f"peer {peer!r} is not a host name")

    def to_metadata(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "mode": self.mode,
            "autoAcceptFollows": self.auto_accept_follows,
        }
        if self.publish_peers and self.mode != "open":
            described["allowlist" if self.mode == "allowlist" else "blocklist"] = sorted(self.peers)
        return described


@dataclass(frozen=True, slots=True)
class NodeInfoInput:
    """The figures and settings NodeInfo reports."""

    node_name: str
    node_description: str = ""
    open_registrations: bool = False
    users_total: int = 0
    users_active_month: int = 0
    users_active_halfyear: int = 0
    datasets: int = 0
    uploads: int = 0
    policy: FederationPolicy = field(default_factory=FederationPolicy)

    def __post_init__(self) -> None:
        for name in (
            "users_total",
            "users_active_month",
            "users_active_halfyear",
            "datasets",
            "uploads",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DocumentError(f"{name} must be a non-negative integer")


def nodeinfo_discovery(base_url: str) -> dict[str, Any]:
    """`/.well-known/nodeinfo`: where the NodeInfo 2.1 document lives."""
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{base_url}{NODEINFO_PATH}"}]}


def nodeinfo_document(info: NodeInfoInput) -> dict[str, Any]:
    """The NodeInfo 2.1 document, with the federation policy in `metadata`."""
    return {
        "version": "2.1",
        "software": {"name": "holdfast", "version": __version__},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": info.open_registrations,
        "usage": {
            "users": {
                "total": info.users_total,
                "activeMonth": info.users_active_month,
                "activeHalfyear": info.users_active_halfyear,
            },
            # Mastodon-style "posts": what this instance itself published.
            "localPosts": info.datasets + info.uploads,
        },
        "metadata": {
            "nodeName": info.node_name,
            "nodeDescription": info.node_description,
            "federation": info.policy.to_metadata(),
            "catalogue": {"datasets": info.datasets, "uploads": info.uploads},
        },
    }
