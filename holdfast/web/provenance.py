"""Where a mirrored dataset or upload came from, for the pages, listings and feeds.

A peer's object is a row of `federation_objects` (kept exactly as received) pointing
at the catalogue row it maps to; several peers holding the same infohash are several
rows on one upload. The tables are read here directly, so the pages show an item's
provenance whether or not the federation extension is running; the proof of each
source is checked again from the stored JSON each time its page is shown.

- `provenance_of(instance, dataset=|upload=)`: the page section (`_provenance.html`).
- `origin_marks(instance, datasets=, uploads=)`: the "from host" mark of each mirrored
  item in a listing, keyed by `("dataset" | "upload", id)`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from holdfast.catalogue.search import SearchResult
from holdfast.federation.errors import FederationError, ProofRejected
from holdfast.federation.keys import actor_assertion_keys
from holdfast.federation.models import FedObject, ObjectState, Peer
from holdfast.federation.proofs import owner_of, verify_proof
from holdfast.federation.service import host_of
from holdfast.instance import Instance

# The newest objects read for one page: an upload has one per instance holding it, a
# dataset one per version seen.
MAX_OBJECTS = 500
MAX_NAME_CHARS = 100

STATE_TEXT = {
    ObjectState.current.value: "current",
    ObjectState.superseded.value: "an older version",
    ObjectState.fork.value: "a diverging edit, held for moderators",
    ObjectState.deleted.value: "deleted by its origin",
    ObjectState.unfetched.value: "its .torrent could not be fetched yet",
    ObjectState.pending.value: "waiting for a moderator",
}
# Which of an origin's objects speaks for it on the page.
STATE_RANK = {
    ObjectState.current.value: 0,
    ObjectState.deleted.value: 1,
    ObjectState.pending.value: 2,
    ObjectState.unfetched.value: 3,
    ObjectState.superseded.value: 4,
    ObjectState.fork.value: 5,
}


@dataclass(frozen=True)
class ProofCheck:
    status: str  # verified | unconfirmed | failed
    detail: str
    key: str = ""

    @property
    def verified(self) -> bool:
        return self.status == "verified"


@dataclass(frozen=True)
class Source:
    """One instance's copy of the item."""

    origin: str  # the origin's actor URL
    host: str
    name: str  # the instance's own title, as its actor document gives it
    object_id: str
    page_url: str | None  # the origin's web page of the object
    received_from: str | None  # the peer that relayed it, when not the origin
    received_at: datetime
    updated_at: datetime
    state: str
    state_text: str
    proof: ProofCheck
    unreachable_since: datetime | None
    blocked: bool
    objects: int  # dataset versions (or copies) seen from this origin


@dataclass(frozen=True)
class Provenance:
    kind: str  # dataset / upload
    local: bool  # published on this instance
    sources: list[Source] = field(default_factory=list)
    api_url: str | None = None  # the provenance endpoint, when federation is on
    object_url: str | None = None  # the stored object, served here for proof checks

    @property
    def mirrored(self) -> bool:
        return bool(self.sources)

    @property
    def origin(self) -> Source | None:
        return self.sources[0] if self.sources else None


def provenance_of(
    instance: Instance, *, dataset: Any | None = None, upload: Any | None = None
) -> Provenance:
    """The sources of a dataset or an upload: the peers' copies, first received first."""
    if upload is not None:
        kind, column, item = "upload", FedObject.upload_id, upload
        path = f"uploads/{upload.infohash}"
    elif dataset is not None:
        kind, column, item = "dataset", FedObject.dataset_id, dataset
        path = f"datasets/{dataset.slug}"
    else:
        raise ValueError("give dataset= or upload=")
    with instance.db.read() as s:
        newest = s.scalars(
            select(FedObject)
            .where(column == item.id, FedObject.kind == kind)
            .order_by(FedObject.id.desc())
            .limit(MAX_OBJECTS)
        )
        rows = list(reversed(list(newest)))
        # Published here: by one of our accounts (mirrored rows have none), or our object.
        local = item.account_id is not None or any(r.local for r in rows)
        remote = [r for r in rows if not r.local]
        peers = _peers(s, {r.origin for r in remote})
        sources = [_source(group, peers.get(group[0].origin)) for group in _by_origin(remote)]
    federating = instance.services.get("federation") is not None
    return Provenance(
        kind=kind,
        local=local,
        sources=sources,
        api_url=f"/api/v1/federation/provenance/{path}" if federating else None,
        object_url=f"{instance.base_url}/ap/{path}" if federating else None,
    )


def _peers(s: Session, actors: set[str]) -> dict[str, Peer]:
    if not actors:
        return {}
    return {p.actor_id: p for p in s.scalars(select(Peer).where(Peer.actor_id.in_(actors)))}


def _by_origin(rows: list[FedObject]) -> list[list[FedObject]]:
    """The objects of each origin, the one that speaks for it first; origins in the
    order they were first received."""
    groups: dict[str, list[FedObject]] = {}
    for row in rows:
        groups.setdefault(row.origin, []).append(row)
    return [
        sorted(group, key=lambda r: (STATE_RANK.get(r.state, 9), -r.id))
        for group in groups.values()
    ]


def _source(group: list[FedObject], peer: Peer | None) -> Source:
    row = group[0]
    document = _loads(row.json)
    received_from = row.received_from if row.received_from not in ("", row.origin) else None
    return Source(
        origin=row.origin,
        host=host_of(row.origin),
        name=_peer_name(peer),
        object_id=row.object_id,
        page_url=_page_url(document) or _http(row.object_id),
        received_from=received_from,
        received_at=min(r.created_at for r in group),
        updated_at=max(r.updated_at for r in group),
        state=row.state,
        state_text=STATE_TEXT.get(row.state, row.state),
        proof=check_proof(document, row.origin, peer),
        unreachable_since=peer.unreachable_since if peer else None,
        blocked=bool(peer and peer.blocked),
        objects=len(group),
    )


def check_proof(document: Mapping[str, Any] | None, origin: str, peer: Peer | None) -> ProofCheck:
    """Whether the stored object's proof verifies, and by a key its origin controls
    (the key pinned for the peer, or one its actor document lists)."""
    if document is None:
        return ProofCheck("failed", "the stored object is not readable JSON")
    try:
        verified = verify_proof(document)
    except ProofRejected as exc:
        return ProofCheck("failed", exc.detail)
    key = verified.public_key_multibase
    if owner_of(document) != origin:
        return ProofCheck("failed", "the object names another owner", key)
    if peer is not None and (peer.did_key == key or key in _listed_keys(peer.actor_json)):
        return ProofCheck("verified", "signed by its origin's key", key)
    return ProofCheck("unconfirmed", "the signature is valid; its key is not confirmed", key)


def _listed_keys(actor_json: str) -> list[str]:
    actor = _loads(actor_json)
    if actor is None:
        return []
    try:
        return actor_assertion_keys(actor)
    except FederationError:
        return []


def _peer_name(peer: Peer | None) -> str:
    actor = _loads(peer.actor_json) if peer else None
    name = actor.get("name") if actor else None
    if not isinstance(name, str):
        name = actor.get("preferredUsername") if actor else None
    return name.strip()[:MAX_NAME_CHARS] if isinstance(name, str) else ""


def _page_url(document: Mapping[str, Any] | None) -> str | None:
    """The object's web page at its origin (its `text/html` link)."""
    if document is None:
        return None
    links = document.get("url")
    for link in links if isinstance(links, list) else [links]:
        if isinstance(link, str):
            return _http(link)
        if isinstance(link, Mapping) and link.get("mediaType", "text/html") == "text/html":
            href = link.get("href")
            if isinstance(href, str) and _http(href):
                return href
    return None


def _http(url: str) -> str | None:
    return url if urlsplit(url).scheme in ("http", "https") else None


def _loads(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ------------------------------------------------------------------- listings


@dataclass(frozen=True)
class OriginMarks:
    """The origin host of each mirrored item in a listing."""

    hosts: dict[tuple[str, int], str] = field(default_factory=dict)

    def host(self, kind: str, item: Any) -> str | None:
        """The origin of a dataset or upload; None for one published here."""
        if item.account_id is not None:  # one of our accounts published it
            return None
        return self.hosts.get((kind, item.id))

    def entry(self, entry: Markup, kind: str, item: Any) -> Markup:
        """A listing entry (from `macros.html`) with "from host" added to its meta line."""
        host = self.host(kind, item)
        if host is None:
            return entry
        mark = Markup('<span class="origin">from {}</span>').format(host)
        opening = '<div class="meta">'
        at = entry.find(opening)
        if at < 0:
            return entry + mark
        at += len(opening)
        return entry[:at] + mark + entry[at:]


def origin_marks(
    instance: Instance, *, datasets: Iterable[int] = (), uploads: Iterable[int] = ()
) -> OriginMarks:
    """For the items not published here, the host they were first received from."""
    wanted = {"dataset": set(datasets), "upload": set(uploads)}
    hosts: dict[tuple[str, int], str] = {}
    local: set[tuple[str, int]] = set()
    with instance.db.read() as s:
        for kind, ids in wanted.items():
            if not ids:
                continue
            column = FedObject.dataset_id if kind == "dataset" else FedObject.upload_id
            first = func.min(FedObject.id)
            rows = s.execute(
                select(column, FedObject.origin, FedObject.local, first)
                .where(column.in_(ids), FedObject.kind == kind)
                .group_by(column, FedObject.origin, FedObject.local)
                .order_by(first)
            )
            for item_id, origin, is_local, _ in rows:
                if item_id is None:
                    continue
                key = (kind, item_id)
                if is_local:
                    local.add(key)
                else:
                    hosts.setdefault(key, host_of(origin))
    return OriginMarks({k: v for k, v in hosts.items() if k not in local})


def search_marks(instance: Instance, result: SearchResult | None) -> OriginMarks:
    """The marks of a page of search results."""
    if result is None:
        return OriginMarks()
    return origin_marks(
        instance,
        datasets=[h.dataset.id for h in result.hits if h.kind == "dataset"],
        uploads=[h.upload.id for h in result.hits if h.kind == "upload" and h.upload],
    )
