"""The federation service: this instance's identity, peers, follows, outbox and policy.

`Federation(db, settings)` holds no connections; every method opens its own
transaction. Network work (fetching actors, delivering) takes an `httpx.AsyncClient`
made by `netguard.guarded_client`, so private addresses are refused unless
`settings.allow_private_addresses`.

What a catalogue change does (`on_commit`, installed by the extension): an approved
local dataset or upload becomes a signed Create (or an Update, for a new dataset
version) in the outbox, delivered to every follower; a removed one becomes a Delete.
A mirrored item that becomes visible here is Announced, with its origin's JSON and
proof embedded unchanged, so our followers obtain it even when its origin is gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from holdfast.api.schemas import magnet_link
from holdfast.catalogue.models import Dataset, DatasetVersion, Status, TorrentBlob, Upload
from holdfast.db import Changes, Database
from holdfast.db.base import utcnow
from holdfast.federation.discovery import FederationPolicy
from holdfast.federation.documents import (
    MAX_FEDERATED_YAML_BYTES,
    PUBLIC,
    DatasetPartInfo,
    DatasetVersionInfo,
    InstanceIdentity,
    UploadInfo,
    dataset_document,
    instance_actor,
    object_context,
    upload_document,
)
from holdfast.federation.errors import DocumentError, FederationError, FetchError
from holdfast.federation.fetch import fetch_json
from holdfast.federation.httpsig import sign_request
from holdfast.federation.keys import InstanceKeys, ResolvedKey, public_key_from_actor
from holdfast.federation.models import (
    FederationKeys,
    FedObject,
    Follow,
    FollowState,
    ObjectState,
    OutboxItem,
    Peer,
)
from holdfast.federation.proofs import create_proof
from holdfast.settings import Settings
from holdfast.torrents.bencode import encode

if TYPE_CHECKING:
    from holdfast.accounts.instance_values import InstanceValues

log = logging.getLogger("holdfast.federation")

INBOUND, OUTBOUND = "inbound", "outbound"
ACTOR_CACHE_SECONDS = 3600
MAX_DESCRIPTION = 60_000
# The most .torrent bytes one `outbox_torrents` answer holds.
MAX_TORRENT_BUNDLE = 32 * 1024 * 1024
TORRENT_BUNDLE_TYPE = "application/x-holdfast-torrents"
HEX = frozenset("0123456789abcdef")
# What the outbox lists only while its object is public (a Delete is listed for good).
LISTED_TYPES = ("Create", "Update", "Announce")
LISTED_CHUNK = 500  # catalogue ids per statement


def now() -> datetime:
    return datetime.now(UTC)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def slug_word(value: str) -> str | None:
    word = value.strip().lower()
    return word or None


@dataclass(frozen=True)
class PeerView:
    id: int
    actor_id: str
    host: str
    trust: str
    blocked: bool
    allowed: bool
    unreachable_since: datetime | None
    synced_at: datetime | None
    cursor: int

    @classmethod
    def of(cls, peer: Peer) -> PeerView:
        return cls(
            peer.id,
            peer.actor_id,
            peer.host,
            peer.trust,
            peer.blocked,
            peer.allowed,
            peer.unreachable_since,
            peer.synced_at,
            peer.cursor,
        )


_keys_cache: dict[str, InstanceKeys] = {}
_keys_lock = threading.Lock()

POLICY_CACHE_SECONDS = 2.0


class PeerCache:
    """Peers and host policy read recently, per database, so that the inbox does not
    read them again for every request. Emptied by every committed change to
    `federation_peers` in this process; entries from other processes' changes last
    at most `POLICY_CACHE_SECONDS`."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        self.hosts: dict[str, tuple[float, bool]] = {}
        self.peers: dict[str, tuple[float, Peer | None]] = {}

    @classmethod
    def of(cls, db: Database) -> PeerCache:
        with cls._lock:
            cache: PeerCache | None = getattr(db, "_federation_peer_cache", None)
            if cache is None:
                cache = cls()
                db._federation_peer_cache = cache  # type: ignore[attr-defined]
                db.on_commit(cache.changed)
            return cache

    def changed(self, changes: Changes) -> None:
        if any(table == Peer.__tablename__ for table, _ in changes):
            self.clear()

    def clear(self) -> None:
        self.hosts.clear()
        self.peers.clear()

    def get(self, table: dict[str, tuple[float, Any]], key: str) -> tuple[bool, Any]:
        found = table.get(key)
        if found is None or found[0] < time.monotonic():
            return False, None
        return True, found[1]

    def put(self, table: dict[str, tuple[float, Any]], key: str, value: Any) -> None:
        if len(table) > 4096:
            table.clear()
        table[key] = (time.monotonic() + POLICY_CACHE_SECONDS, value)


class Federation:
    """One instance's federation state (see the module docstring)."""

    outbox_page_size = 50

    def __init__(
        self, db: Database, settings: Settings, values: InstanceValues | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        # Run-time settings an admin may change without a restart (title, auto-accept).
        self.values = values
        self._identity = InstanceIdentity(
            base_url=settings.base_url,
            name=settings.instance_name,
            title=settings.instance_title,
            manually_approves_followers=not settings.federation_auto_accept,
        )
        self._resolved_keys: dict[tuple[str, int], ResolvedKey | None] = {}
        self.cache = PeerCache.of(db)

    # ------------------------------------------------------------------ identity

    @property
    def identity(self) -> InstanceIdentity:
        if self.values is None:
            return self._identity
        current = self.values.current()
        return dataclasses.replace(
            self._identity,
            title=current.instance_title,
            manually_approves_followers=not current.federation_auto_accept,
        )

    @property
    def auto_accept(self) -> bool:
        """Whether follows from peers are accepted without an admin's review."""
        if self.values is None:
            return self.settings.federation_auto_accept
        return self.values.current().federation_auto_accept

    @property
    def open_registration(self) -> bool:
        if self.values is None:
            return self.settings.open_registration
        return self.values.current().open_registration

    @property
    def base_url(self) -> str:
        return self.identity.base_url

    @property
    def keys(self) -> InstanceKeys:
        """The instance keys, made and stored on first use (the same in every process)."""
        cache_key = self.db.url
        with _keys_lock:
            cached = _keys_cache.get(cache_key)
            if cached is not None:
                return cached
            with self.db.read() as s:
                row = s.scalar(select(FederationKeys).order_by(FederationKeys.id).limit(1))
                stored = (
                    {
                        "rsa_private_pem": row.rsa_private_pem,
                        "ed25519_private_pem": row.ed25519_private_pem,
                    }
                    if row
                    else None
                )
            if stored is None:
                fresh = InstanceKeys.generate().to_storage()
                try:
                    with self.db.write() as s:
                        if s.scalar(select(func.count(FederationKeys.id))) == 0:
                            s.add(FederationKeys(id=1, **fresh))
                except IntegrityError:
                    pass
                with self.db.read() as s:
                    row = s.get(FederationKeys, 1)
                    assert row is not None
                    stored = {
                        "rsa_private_pem": row.rsa_private_pem,
                        "ed25519_private_pem": row.ed25519_private_pem,
                    }
            keys = InstanceKeys.from_storage(stored)
            _keys_cache[cache_key] = keys
            return keys

    def actor_document(self) -> dict[str, Any]:
        keys = self.keys
        return instance_actor(
            self.identity, rsa_public=keys.rsa_public, ed25519_public=keys.ed25519_public
        )

    def policy(self) -> FederationPolicy:
        with self.db.read() as s:
            flag = Peer.allowed if self.settings.federation_mode == "allowlist" else Peer.blocked
            hosts = sorted({h for h in s.scalars(select(Peer.host).where(flag.is_(True)))})
        return FederationPolicy(
            mode=self.settings.federation_mode,
            peers=tuple(hosts),
            publish_peers=False,
            auto_accept_follows=self.auto_accept,
        )

    def sign(self, method: str, url: str, body: bytes | None = None) -> dict[str, str]:
        return sign_request(
            method, url, private_key=self.keys.rsa_private, key_id=self.identity.key_id, body=body
        )

    def signer(self, method: str, url: str) -> Mapping[str, str]:
        return self.sign(method, url)

    def new_id(self, kind: str) -> str:
        return f"{self.base_url}/ap/{kind}/{secrets.token_hex(12)}"

    # -------------------------------------------------------------------- policy

    def host_allowed(self, host: str, session: Session | None = None) -> bool:
        """Whether this instance talks to `host` at all (mode, allow- and blocklist)."""
        if not self.settings.federation:
            return False
        host = host.lower()
        if host == self.identity.host:
            return True

        def check(s: Session) -> bool:
            rows = s.execute(select(Peer.blocked, Peer.allowed).where(Peer.host == host)).all()
            if any(blocked for blocked, _ in rows):
                return False
            if self.settings.federation_mode == "allowlist":
                return any(allowed for _, allowed in rows)
            return True

        if session is not None:
            return check(session)
        hit, allowed = self.cache.get(self.cache.hosts, host)
        if hit:
            return bool(allowed)
        with self.db.read() as s:
            allowed = check(s)
        self.cache.put(self.cache.hosts, host, allowed)
        return bool(allowed)

    def cached_host_allowed(self, host: str) -> bool | None:
        """`host_allowed` from memory, or None when it would need a read."""
        if not self.settings.federation:
            return False
        hit, allowed = self.cache.get(self.cache.hosts, host.lower())
        return bool(allowed) if hit else None

    def actor_allowed(self, actor_id: str) -> bool:
        return self.host_allowed(host_of(actor_id))

    # --------------------------------------------------------------------- peers

    def peer(self, actor_id: str) -> Peer | None:
        """The peer row (detached; read again at most every `POLICY_CACHE_SECONDS`)."""
        hit, peer = self.cache.get(self.cache.peers, actor_id)
        if hit:
            return peer
        with self.db.read() as s:
            peer = s.scalar(select(Peer).where(Peer.actor_id == actor_id))
            if peer is not None:
                s.expunge(peer)
        self.cache.put(self.cache.peers, actor_id, peer)
        return peer

    def peers(self) -> list[PeerView]:
        with self.db.read() as s:
            return [PeerView.of(p) for p in s.scalars(select(Peer).order_by(Peer.id))]

    def ensure_peer(self, s: Session, actor_id: str) -> Peer:
        peer = s.scalar(select(Peer).where(Peer.actor_id == actor_id))
        if peer is None:
            peer = Peer(actor_id=actor_id, host=host_of(actor_id))
            s.add(peer)
            s.flush()
        return peer

    def set_peer(
        self,
        actor_id: str,
        *,
        trust: str | None = None,
        blocked: bool | None = None,
        allowed: bool | None = None,
    ) -> PeerView:
        """Change a peer's policy; blocking drops its follows both ways."""
        with self.db.write() as s:
            peer = self.ensure_peer(s, actor_id)
            if trust is not None:
                peer.trust = trust
            if allowed is not None:
                peer.allowed = allowed
            if blocked is not None:
                peer.blocked = blocked
                if blocked:
                    s.execute(delete(Follow).where(Follow.peer_id == peer.id))
            s.flush()
            return PeerView.of(peer)

    def store_actor(self, actor: Mapping[str, Any], raw: bytes | str) -> Peer:
        """Cache a fetched actor document (its inboxes, outbox and proof key)."""
        actor_id = actor.get("id")
        if not isinstance(actor_id, str):
            raise DocumentError("actor has no id")
        endpoints = actor.get("endpoints")
        shared = endpoints.get("sharedInbox") if isinstance(endpoints, Mapping) else None
        from holdfast.federation.keys import actor_assertion_keys

        did_keys = actor_assertion_keys(actor)
        with self.db.write() as s:
            peer = self.ensure_peer(s, actor_id)
            peer.inbox = str(actor.get("inbox") or "")[:2048]
            peer.shared_inbox = str(shared or "")[:2048]
            peer.outbox = str(actor.get("outbox") or "")[:2048]
            peer.actor_json = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            peer.fetched_at = utcnow()
            if did_keys:
                peer.did_key = did_keys[0]
            s.flush()
            s.expunge(peer)
            return peer

    async def fetch_actor(self, client: httpx.AsyncClient, actor_id: str) -> Peer:
        if not self.actor_allowed(actor_id):
            raise FederationError(f"{host_of(actor_id)} is not federated with")
        fetched, document = await fetch_json(client, actor_id, sign=self.signer)
        if not isinstance(document, dict) or document.get("id") != actor_id:
            raise FetchError(f"{actor_id} did not answer with its own actor document")
        return self.store_actor(document, fetched.body)

    async def actor(
        self, client: httpx.AsyncClient, actor_id: str, *, refresh: bool = False
    ) -> Peer:
        peer = self.peer(actor_id)
        fresh = (
            peer is not None
            and peer.actor_json
            and peer.fetched_at is not None
            and (now() - peer.fetched_at).total_seconds() < ACTOR_CACHE_SECONDS
        )
        if peer is not None and fresh and not refresh:
            return peer
        return await self.fetch_actor(client, actor_id)

    def _cached_key(self, actor_id: str, key_id: str) -> tuple[bool, Peer | None, Any]:
        """(allowed, cached peer, its key `key_id` or None): one read, off the event loop."""
        if not self.host_allowed(host_of(actor_id)):
            return False, None, None
        peer = self.peer(actor_id)
        if peer is None or not peer.actor_json:
            return True, peer, None
        return True, peer, self._parsed_key(peer.actor_json, key_id)

    def _parsed_key(self, actor_json: str, key_id: str) -> ResolvedKey | None:
        cache_key = (key_id, hash(actor_json))
        with _keys_lock:
            if cache_key in self._resolved_keys:
                return self._resolved_keys[cache_key]
        try:
            key = public_key_from_actor(json.loads(actor_json), key_id)
        except (ValueError, FederationError):
            key = None
        with _keys_lock:
            if len(self._resolved_keys) > 1024:
                self._resolved_keys.clear()
            self._resolved_keys[cache_key] = key
        return key

    def key_resolver(self, client: httpx.AsyncClient) -> Any:
        """A `KeyResolver` for one request: cache first, one re-fetch at most.

        The cached actor is read in a worker thread and its parsed key kept in memory,
        so a known peer's request costs the event loop no database work."""
        fetched: set[str] = set()

        async def resolve(key_id: str, *, refresh: bool) -> ResolvedKey | None:
            actor_id = key_id.split("#", 1)[0]
            allowed = self.cached_host_allowed(host_of(actor_id))
            hit, peer = self.cache.get(self.cache.peers, actor_id)
            if allowed is not None and hit:  # all in memory: no thread, no read
                key = self._parsed_key(peer.actor_json, key_id) if peer and allowed else None
            else:
                allowed, peer, key = await asyncio.to_thread(self._cached_key, actor_id, key_id)
            if not allowed:
                return None
            if key is not None and not refresh:
                return key
            if peer is None or not peer.actor_json or (refresh and actor_id not in fetched):
                fetched.add(actor_id)
                try:
                    peer = await self.fetch_actor(client, actor_id)
                except FederationError:
                    if peer is None or not peer.actor_json:
                        return None  # unreachable, and never seen: the key is unknown
            if peer is None or not peer.actor_json:
                return None
            return self._parsed_key(peer.actor_json, key_id)

        return resolve

    # ------------------------------------------------------------------- follows

    def follows(self, direction: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            query = select(Follow, Peer).join(Peer, Peer.id == Follow.peer_id)
            if direction:
                query = query.where(Follow.direction == direction)
            return [
                {
                    "id": f.id,
                    "direction": f.direction,
                    "actor": p.actor_id,
                    "state": f.state,
                    "activity": f.activity_id,
                    "created_at": f.created_at,
                }
                for f, p in s.execute(query.order_by(Follow.id)).all()
            ]

    def follower_inboxes(self, s: Session) -> list[str]:
        rows = s.execute(
            select(Peer.shared_inbox, Peer.inbox)
            .join(Follow, Follow.peer_id == Peer.id)
            .where(
                Follow.direction == INBOUND,
                Follow.state == FollowState.accepted.value,
                Peer.blocked.is_(False),
            )
        ).all()
        return sorted({shared or inbox for shared, inbox in rows if shared or inbox})

    def collection_actors(self, direction: str) -> list[str]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(Peer.actor_id)
                    .join(Follow, Follow.peer_id == Peer.id)
                    .where(
                        Follow.direction == direction, Follow.state == FollowState.accepted.value
                    )
                    .order_by(Follow.id)
                )
            )

    # -------------------------------------------------------------------- outbox

    def add_outbox(
        self,
        s: Session,
        activity: dict[str, Any],
        *,
        inboxes: Iterable[str] | None = None,
        public: bool = True,
        sign: bool = True,
    ) -> OutboxItem:
        """Store an activity (proved by our key) and queue one delivery per inbox."""
        if sign:
            activity = create_proof(activity, self.keys.ed25519_private)
        obj = activity.get("object")
        object_id = obj if isinstance(obj, str) else (obj or {}).get("id", "")
        item = OutboxItem(
            activity_id=activity["id"],
            type=str(activity["type"]),
            object_id=str(object_id or "")[:2048],
            public=public,
            json=dumps(activity),
        )
        s.add(item)
        targets = self.follower_inboxes(s) if inboxes is None else sorted(set(inboxes))
        if targets:
            from holdfast.federation.jobs import queue_deliveries

            s.flush()  # the deliveries name the item's id

            queue_deliveries(s, item.id, targets)
        return item

    def activity(self, kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "@context": object_context(),
            "id": self.new_id("activities"),
            "type": kind,
            "actor": self.identity.actor_url,
            "object": obj,
            "published": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": [PUBLIC],
            "cc": [self.identity.followers_url],
        }
        activity.update(extra)
        return activity

    def outbox_page(self, *, after: int | None, before: int | None, limit: int) -> dict[str, Any]:
        """One outbox page: `after` pages oldest-first, `before` newest-first."""
        outbox = self.identity.outbox_url
        with self.db.read() as s:
            query = select(OutboxItem.id, OutboxItem.json).where(OutboxItem.public.is_(True))
            if after is not None:
                query = query.where(OutboxItem.id > after).order_by(OutboxItem.id)
            else:
                if before is not None:
                    query = query.where(OutboxItem.id < before)
                query = query.order_by(OutboxItem.id.desc())
            rows = s.execute(query.limit(limit)).all()
        page: dict[str, Any] = {
            "@context": object_context(),
            "id": f"{outbox}?after={after}" if after is not None else f"{outbox}?before={before}",
            "type": "OrderedCollectionPage",
            "partOf": outbox,
            "orderedItems": [json.loads(text) for _, text in rows],
        }
        if after is not None:
            last = rows[-1][0] if rows else after
            page["next"] = f"{outbox}?after={last}"
            page["holdfast:cursor"] = last
            if rows:  # every .torrent the page links to here, in one response
                page["holdfast:torrents"] = f"{outbox}/torrents?after={after}"
        elif rows:
            page["next"] = f"{outbox}?before={rows[-1][0]}"
        return page

    def outbox_torrents(self, *, after: int, limit: int) -> bytes:
        """The `.torrent` files that the page `?after=` of the outbox links to on this
        instance, as one bencoded dictionary {torrent URL: file}: a peer backfilling
        the catalogue reads a page's files in one request instead of one each. Only
        public uploads in public datasets; files past `MAX_TORRENT_BUNDLE` bytes in
        all are left out (the peer reads those one by one)."""
        prefix, suffix = f"{self.base_url}/api/v1/uploads/", "/torrent"
        with self.db.read() as s:
            texts = s.scalars(
                select(OutboxItem.json)
                .where(OutboxItem.public.is_(True), OutboxItem.id > after)
                .order_by(OutboxItem.id)
                .limit(limit)
            ).all()
            urls: dict[str, str] = {}  # infohash in the URL -> URL
            for text in texts:
                activity = json.loads(text)
                obj = activity.get("object")
                links = [activity.get("torrent")]
                if isinstance(obj, dict):
                    links.append(obj.get("torrent"))
                for url in links:
                    if isinstance(url, str) and url.startswith(prefix) and url.endswith(suffix):
                        hexhash = url[len(prefix) : -len(suffix)].lower()
                        if len(hexhash) in (40, 64) and all(c in HEX for c in hexhash):
                            urls[hexhash] = url
            if not urls:
                return encode({})
            rows = s.execute(
                select(
                    Upload.infohash_v1,
                    Upload.infohash_v2,
                    Upload.infohash_v2_short,
                    TorrentBlob.data,
                )
                .join(Dataset, Dataset.id == Upload.dataset_id)
                .join(TorrentBlob, TorrentBlob.upload_id == Upload.id)
                .where(
                    Upload.status == Status.approved.value,
                    Dataset.status == Status.approved.value,
                    or_(
                        Upload.infohash_v1.in_(urls),
                        Upload.infohash_v2.in_(urls),
                        Upload.infohash_v2_short.in_(urls),
                    ),
                )
            ).all()
        bundle: dict[bytes, bytes] = {}
        size = 0
        for v1, v2, v2_short, data in rows:
            for infohash in (v1, v2, v2_short):
                link = urls.get(infohash or "")
                if link is None or link.encode() in bundle:
                    continue
                if size + len(data) > MAX_TORRENT_BUNDLE:
                    break
                bundle[link.encode()] = data
                size += len(data)
        return encode(bundle)

    def outbox_collection(self) -> dict[str, Any]:
        outbox = self.identity.outbox_url
        with self.db.read() as s:
            total = s.scalar(select(func.count(OutboxItem.id)).where(OutboxItem.public.is_(True)))
        return {
            "@context": object_context(),
            "id": outbox,
            "type": "OrderedCollection",
            "totalItems": int(total or 0),
            "first": f"{outbox}?before=",
            # Oldest first: `?after=0`, then each page's `next`.
            "last": f"{outbox}?after=0",
        }

    def outbox_item(self, activity_id: str) -> str | None:
        with self.db.read() as s:
            return s.scalar(
                select(OutboxItem.json).where(
                    OutboxItem.activity_id == activity_id, OutboxItem.public.is_(True)
                )
            )

    # ---------------------------------------------------------- local documents

    def dataset_url(self, slug: str) -> str:
        return f"{self.base_url}/datasets/{slug}"

    def upload_url(self, infohash: str) -> str:
        return f"{self.base_url}/uploads/{infohash}"

    def torrent_url(self, infohash: str) -> str:
        return f"{self.base_url}/api/v1/uploads/{infohash}/torrent"

    def _dataset_info(self, dataset: Dataset, parent_hash: str | None) -> DatasetVersionInfo:
        return DatasetVersionInfo(
            dataset_url=self.dataset_url(dataset.slug),
            slug=dataset.slug,
            title=dataset.title,
            published=dataset.created_at,
            description=dataset.description[:MAX_DESCRIPTION],
            tags=tuple(dataset.tag_names),
            source_url=dataset.source_urls[0] if dataset.source_urls else None,
            threat=slug_word(dataset.threat),
            scarcity=slug_word(dataset.scarcity),
            parts=tuple(DatasetPartInfo(p.slug, p.title or p.slug) for p in dataset.parts),
            parent_hash=parent_hash,
            updated=dataset.updated_at if dataset.version > 1 else None,
        )

    def _upload_info(
        self, upload: Upload, *, metadata_yaml: str | None = None, updated: datetime | None = None
    ) -> UploadInfo:
        dataset = upload.dataset
        return UploadInfo(
            metadata_yaml=metadata_yaml,
            updated=updated,
            url=self.upload_url(upload.infohash),
            name=upload.name[:512] or upload.infohash,
            dataset_url=self.dataset_url(dataset.slug),
            dataset_title=dataset.title,
            torrent_url=self.torrent_url(upload.infohash),
            magnet=magnet_link(upload),
            total_size=upload.total_size,
            file_count=max(upload.file_count, 1),
            piece_length=upload.piece_length,
            published=upload.created_at,
            infohash_v1=upload.infohash_v1,
            infohash_v2=upload.infohash_v2,
            description=upload.description[:MAX_DESCRIPTION],
            tags=tuple(dataset.tag_names),
        )

    # ------------------------------------------------------- catalogue changes

    def on_commit(self, changes: Changes) -> None:
        """Publish what a committed catalogue change made visible or removed."""
        if not self.settings.federation:
            return
        datasets: set[int] = set()
        uploads: set[int] = set()
        versions: set[int] = set()
        described: set[int] = set()  # uploads whose holdfast.yaml was handed over or withdrawn
        for table, ident in changes:
            if table == "datasets":
                datasets.add(ident)
            elif table == "uploads":
                uploads.add(ident)
            elif table == "dataset_versions":
                versions.add(ident)
            elif table == "upload_metadata":
                described.add(ident)
        uploads |= described
        if not (datasets or uploads or versions):
            return
        try:
            self.keys  # noqa: B018 - made (in its own transaction) before ours begins
            with self.db.write() as s:
                if versions:
                    datasets.update(
                        s.scalars(
                            select(DatasetVersion.dataset_id).where(DatasetVersion.id.in_(versions))
                        )
                    )
                self.publish_datasets(s, sorted(datasets))
                for upload_id in self._announce_mirrored(s, sorted(uploads)):
                    self.publish_upload(s, upload_id, described=upload_id in described)
                self.list_in_outbox(s, datasets, uploads)
        except Exception:
            log.exception("publishing catalogue changes failed")

    def list_in_outbox(self, s: Session, dataset_ids: set[int], upload_ids: set[int]) -> None:
        """The Creates, Updates and Announces of what is no longer public (an upload or
        dataset taken down or sent back to review, an upload whose dataset is) leave
        the public outbox, and come back when it is public again. A Delete stays."""
        uploads = set(upload_ids)
        if dataset_ids:
            hidden = set(
                s.scalars(
                    select(Dataset.id).where(
                        Dataset.id.in_(dataset_ids), Dataset.status != Status.approved.value
                    )
                )
            )
            withdrawn = set(
                s.scalars(
                    select(FedObject.dataset_id)
                    .join(OutboxItem, OutboxItem.object_id == FedObject.object_id)
                    .where(
                        FedObject.dataset_id.in_(dataset_ids),
                        FedObject.kind == "dataset",
                        OutboxItem.public.is_(False),
                        OutboxItem.type.in_(LISTED_TYPES),
                    )
                )
            )
            changed = hidden | {d for d in withdrawn if d is not None}
            if changed:
                uploads.update(s.scalars(select(Upload.id).where(Upload.dataset_id.in_(changed))))
            self._set_listed(s, "dataset_id", dataset_ids, hidden)
        if uploads:
            hidden = set(
                s.scalars(
                    select(Upload.id)
                    .join(Dataset, Dataset.id == Upload.dataset_id)
                    .where(
                        Upload.id.in_(uploads),
                        (Upload.status != Status.approved.value)
                        | (Dataset.status != Status.approved.value),
                    )
                )
            )
            self._set_listed(s, "upload_id", uploads, hidden)

    def _set_listed(self, s: Session, column: str, ids: set[int], hidden: set[int]) -> None:
        ordered = sorted(ids)
        for start in range(0, len(ordered), LISTED_CHUNK):
            self._set_listed_chunk(s, column, ordered[start : start + LISTED_CHUNK], hidden)

    def _set_listed_chunk(self, s: Session, column: str, ids: list[int], hidden: set[int]) -> None:
        key = getattr(FedObject, column)
        query = select(FedObject.object_id, key).where(key.in_(ids))
        if column == "dataset_id":
            query = query.where(FedObject.kind == "dataset")
        rows = s.execute(query).all()
        for public, wanted in (
            (False, [o for o, i in rows if i in hidden]),
            (True, [o for o, i in rows if i not in hidden]),
        ):
            if wanted:
                s.execute(
                    update(OutboxItem)
                    .where(
                        OutboxItem.object_id.in_(wanted),
                        OutboxItem.type.in_(LISTED_TYPES),
                        OutboxItem.public.is_(not public),
                    )
                    .values(public=public)
                )

    def _local_current(self, s: Session, **where: Any) -> FedObject | None:
        query = select(FedObject).where(
            FedObject.local.is_(True), FedObject.state == ObjectState.current.value
        )
        for name, value in where.items():
            query = query.where(getattr(FedObject, name) == value)
        return s.scalar(query.order_by(FedObject.id.desc()).limit(1))

    def _mirrored(self, s: Session, **where: Any) -> list[FedObject]:
        query = select(FedObject).where(FedObject.local.is_(False))
        for name, value in where.items():
            query = query.where(getattr(FedObject, name) == value)
        return list(s.scalars(query.order_by(FedObject.id)))

    def publish_dataset(self, s: Session, dataset_id: int) -> FedObject | None:
        """Create, Update, Delete or Announce a dataset as its state requires."""
        dataset = s.get(Dataset, dataset_id)
        if dataset is None:
            return None
        mirrored = self._mirrored(s, dataset_id=dataset_id, kind="dataset")
        if mirrored:
            if dataset.status == Status.approved.value:
                live = [o for o in mirrored if o.state == ObjectState.current.value]
                for obj in live[-1:]:
                    self.announce(s, obj)
                return live[-1] if live else None
            return None
        current = self._local_current(s, dataset_id=dataset_id, kind="dataset")
        if dataset.status != Status.approved.value:
            if current is not None and dataset.status == Status.removed.value:
                self._delete_local(s, current, "dataset")
                for obj in s.scalars(
                    select(FedObject).where(
                        FedObject.local.is_(True),
                        FedObject.kind == "upload",
                        FedObject.state == ObjectState.current.value,
                        FedObject.upload_id.in_(
                            select(Upload.id).where(Upload.dataset_id == dataset_id)
                        ),
                    )
                ):
                    self._delete_local(s, obj, "upload")
            return None
        info = self._dataset_info(dataset, current.content_hash if current else None)
        if current is not None:
            # Unchanged when the content (given the same parent) would be that of the parent.
            same = self._dataset_info(dataset, current.parent_hash or None)
            if same.content_hash == current.content_hash:
                return current
        document = create_proof(dataset_document(self.identity, info), self.keys.ed25519_private)
        obj = FedObject(
            object_id=document["id"],
            kind="dataset",
            origin=self.identity.actor_url,
            local=True,
            received_from=self.identity.actor_url,
            dataset_ref=info.dataset_url,
            content_hash=info.content_hash,
            parent_hash=info.parent_hash or "",
            dataset_id=dataset_id,
            json=dumps(document),
        )
        existing = s.scalar(select(FedObject).where(FedObject.object_id == obj.object_id))
        if existing is not None:  # an edit back to an earlier content: same version URL
            return existing
        s.add(obj)
        if current is not None:
            current.state = ObjectState.superseded.value
        s.flush()
        self.add_outbox(s, self.activity("Update" if current else "Create", document))
        return obj

    def _announce_mirrored(self, s: Session, upload_ids: list[int]) -> list[int]:
        """What `publish_upload` does for the mirrored uploads among `upload_ids`, with a
        few reads for all of them (a page of a peer's backfill commits many at once);
        returns the others, in order, for `publish_upload`."""
        if len(upload_ids) < 2:
            return upload_ids
        uploads = {u.id: u for u in s.scalars(select(Upload).where(Upload.id.in_(upload_ids)))}
        mirrored: dict[int, list[FedObject]] = {}
        local: set[int] = set()
        for obj in s.scalars(
            select(FedObject).where(FedObject.upload_id.in_(upload_ids)).order_by(FedObject.id)
        ):
            if obj.local:
                if obj.kind == "upload" and obj.state == ObjectState.current.value:
                    local.add(int(obj.upload_id or 0))
            else:
                mirrored.setdefault(int(obj.upload_id or 0), []).append(obj)
        rest: list[int] = []
        announce: list[tuple[FedObject, Upload]] = []
        for upload_id in upload_ids:
            upload = uploads.get(upload_id)
            if upload is None or upload_id not in mirrored or upload_id in local:
                rest.append(upload_id)
                continue
            visible = (
                upload.status == Status.approved.value
                and upload.dataset.status == Status.approved.value
            )
            if not visible:
                continue
            live = [o for o in mirrored[upload_id] if o.state == ObjectState.current.value]
            if live:
                announce.append((live[0], upload))
        inboxes = self.follower_inboxes(s) if announce else []
        self.publish_datasets(s, sorted({u.dataset_id for _, u in announce}), inboxes)
        if announce:
            done = set(
                s.scalars(
                    select(OutboxItem.object_id).where(
                        OutboxItem.type == "Announce",
                        OutboxItem.object_id.in_({o.object_id[:2048] for o, _ in announce}),
                    )
                )
            )
            for obj, upload in announce:
                if obj.object_id[:2048] in done:
                    continue
                done.add(obj.object_id[:2048])
                activity = self.activity(
                    "Announce", json.loads(obj.json), torrent=self.torrent_url(upload.infohash)
                )
                self.add_outbox(s, activity, inboxes=inboxes)
        return rest

    def publish_datasets(
        self, s: Session, dataset_ids: list[int], inboxes: list[str] | None = None
    ) -> None:
        """`publish_dataset` for many datasets (a page of a peer's backfill changes many
        at once), with three reads for the mirrored ones: each mirrored, approved
        dataset's latest current object is announced once; the others go through
        `publish_dataset`. `inboxes`: our followers' (read here when None)."""
        if not dataset_ids:
            return
        statuses = dict(
            s.execute(select(Dataset.id, Dataset.status).where(Dataset.id.in_(dataset_ids))).all()
        )
        mirrored: set[int] = set()
        latest: dict[int, FedObject] = {}
        for obj in s.scalars(
            select(FedObject)
            .where(
                FedObject.dataset_id.in_(dataset_ids),
                FedObject.kind == "dataset",
                FedObject.local.is_(False),
            )
            .order_by(FedObject.id)
        ):
            dataset_id = int(obj.dataset_id or 0)
            mirrored.add(dataset_id)
            if obj.state == ObjectState.current.value:
                latest[dataset_id] = obj
        wanted = [
            latest[d]
            for d in dataset_ids
            if d in latest and statuses.get(d) == Status.approved.value
        ]
        done = set(
            s.scalars(
                select(OutboxItem.object_id).where(
                    OutboxItem.type == "Announce",
                    OutboxItem.object_id.in_({o.object_id for o in wanted}),
                )
            )
            if wanted
            else ()
        )
        for obj in wanted:
            if obj.object_id not in done:
                done.add(obj.object_id)
                if inboxes is None:
                    inboxes = self.follower_inboxes(s)
                self.add_outbox(s, self.activity("Announce", json.loads(obj.json)), inboxes=inboxes)
        for dataset_id in dataset_ids:
            if dataset_id not in mirrored and dataset_id in statuses:
                self.publish_dataset(s, dataset_id)

    def publish_upload(
        self, s: Session, upload_id: int, *, described: bool = False
    ) -> FedObject | None:
        """Create, Delete or Announce an upload as its state requires; with `described`
        (its holdfast.yaml handed over or withdrawn in this commit) an Update of its
        object when what it carries changed."""
        upload = s.get(Upload, upload_id)
        if upload is None:
            return None
        visible = (
            upload.status == Status.approved.value
            and upload.dataset.status == Status.approved.value
        )
        mirrored = self._mirrored(s, upload_id=upload_id)
        current = self._local_current(s, upload_id=upload_id, kind="upload")
        if mirrored and current is None:
            if visible:
                self.publish_dataset(s, upload.dataset_id)
                live = [o for o in mirrored if o.state == ObjectState.current.value]
                for obj in live[:1]:
                    self.announce(s, obj, torrent=self.torrent_url(upload.infohash))
            return None
        if not visible:
            if current is not None and upload.status == Status.removed.value:
                self._delete_local(s, current, "upload")
            return None
        if current is not None:
            if not described:
                return current
            metadata_yaml = federated_yaml(s, upload_id)
            kept = json.loads(current.json)
            if kept.get("holdfastYaml") != metadata_yaml:
                # Its holdfast.yaml was handed over (or withdrawn) after the Create: the
                # same object, signed again, goes out as an Update. `updated` (to the
                # second) grows with each version, so peers can tell the later one.
                updated = utcnow().replace(microsecond=0)
                previous = moment_of(kept.get("updated"))
                if previous is not None and updated <= previous:
                    updated = previous + timedelta(seconds=1)
                info = self._upload_info(upload, metadata_yaml=metadata_yaml, updated=updated)
                document = create_proof(
                    upload_document(self.identity, info), self.keys.ed25519_private
                )
                current.json = dumps(document)
                current.updated_at = utcnow()
                self.add_outbox(s, self.activity("Update", document))
            return current
        if self.publish_dataset(s, upload.dataset_id) is None:
            return None
        metadata_yaml = federated_yaml(s, upload_id)
        document = create_proof(
            upload_document(self.identity, self._upload_info(upload, metadata_yaml=metadata_yaml)),
            self.keys.ed25519_private,
        )
        existing = s.scalar(select(FedObject).where(FedObject.object_id == document["id"]))
        if existing is not None:
            return existing
        obj = FedObject(
            object_id=document["id"],
            kind="upload",
            origin=self.identity.actor_url,
            local=True,
            received_from=self.identity.actor_url,
            infohash=upload.infohash,
            upload_id=upload_id,
            dataset_id=upload.dataset_id,
            json=dumps(document),
        )
        s.add(obj)
        s.flush()
        self.add_outbox(s, self.activity("Create", document))
        return obj

    def _delete_local(self, s: Session, obj: FedObject, kind: str) -> None:
        obj.state = ObjectState.deleted.value
        obj.deleted_at = utcnow()
        former = ["Page", "holdfast:Dataset" if kind == "dataset" else "holdfast:Upload"]
        target = obj.dataset_ref if kind == "dataset" and obj.dataset_ref else obj.object_id
        tomb = {"id": target, "type": "Tombstone", "formerType": former}
        self.add_outbox(s, self.activity("Delete", tomb))
        if kind == "dataset":
            for older in s.scalars(
                select(FedObject).where(
                    FedObject.dataset_ref == obj.dataset_ref, FedObject.local.is_(True)
                )
            ):
                older.state = ObjectState.deleted.value
                older.deleted_at = older.deleted_at or utcnow()

    def announce(self, s: Session, obj: FedObject, **extra: Any) -> None:
        """Relay a mirrored object (its JSON and proof unchanged) to our followers, once."""
        done = s.scalar(
            select(OutboxItem.id).where(
                OutboxItem.object_id == obj.object_id, OutboxItem.type == "Announce"
            )
        )
        if done is not None:
            return
        self.add_outbox(s, self.activity("Announce", json.loads(obj.json), **extra))

    # ---------------------------------------------------------------- objects

    def stored_object(self, object_id: str) -> FedObject | None:
        with self.db.read() as s:
            return s.scalar(select(FedObject).where(FedObject.object_id == object_id))

    def dataset_object(self, slug: str) -> FedObject | None:
        """The current object of the dataset shown here at /datasets/{slug}."""
        with self.db.read() as s:
            dataset_id = s.scalar(select(Dataset.id).where(Dataset.slug == slug))
            if dataset_id is None:
                return None
            return s.scalar(
                select(FedObject)
                .where(FedObject.dataset_id == dataset_id, FedObject.kind == "dataset")
                .order_by(
                    (FedObject.state == ObjectState.current.value).desc(), FedObject.id.desc()
                )
                .limit(1)
            )

    def upload_object(self, infohash: str) -> FedObject | None:
        """The object of the upload at /uploads/{infohash}: ours first, else its first source."""
        with self.db.read() as s:
            return s.scalar(
                select(FedObject)
                .where(FedObject.infohash == infohash.lower(), FedObject.kind == "upload")
                .order_by(FedObject.local.desc(), FedObject.id)
                .limit(1)
            )

    def sources(
        self, *, upload_id: int | None = None, dataset_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Where an item came from: every object (ours or a peer's) that maps to it."""
        with self.db.read() as s:
            query = select(FedObject)
            if upload_id is not None:
                query = query.where(FedObject.upload_id == upload_id, FedObject.kind == "upload")
            else:
                query = query.where(FedObject.dataset_id == dataset_id, FedObject.kind == "dataset")
            rows = list(s.scalars(query.order_by(FedObject.id)))
            unreachable = {
                p.actor_id: p.unreachable_since
                for p in s.scalars(select(Peer).where(Peer.actor_id.in_({r.origin for r in rows})))
            }
        return [
            {
                "object": r.object_id,
                "origin": r.origin,
                "local": r.local,
                "received_from": r.received_from,
                "state": r.state,
                "content_hash": r.content_hash or None,
                "origin_unreachable_since": unreachable.get(r.origin),
            }
            for r in rows
        ]

    # ------------------------------------------------------- follow management

    def answer_follow(
        self, s: Session, peer: Peer, follow: dict[str, Any], *, accept: bool
    ) -> None:
        """Send Accept or Reject of a peer's Follow to that peer alone."""
        answer = self.activity("Accept" if accept else "Reject", follow)
        answer["to"] = [peer.actor_id]
        answer.pop("cc", None)
        self.add_outbox(s, answer, inboxes=[peer.inbox or peer.shared_inbox], public=False)

    def decide_follow(self, follow_id: int, *, accept: bool) -> dict[str, Any]:
        """An admin accepts or rejects a pending inbound follow."""
        from holdfast.errors import InvalidInput, NotFound

        with self.db.write() as s:
            row = s.get(Follow, follow_id)
            if row is None or row.direction != INBOUND:
                raise NotFound("no inbound follow with that id")
            peer = s.get(Peer, row.peer_id)
            assert peer is not None
            if row.state != FollowState.pending.value:
                raise InvalidInput(f"this follow is {row.state}, not pending")
            follow = {
                "id": row.activity_id,
                "type": "Follow",
                "actor": peer.actor_id,
                "object": self.identity.actor_url,
            }
            self.answer_follow(s, peer, follow, accept=accept)
            row.state = (FollowState.accepted if accept else FollowState.rejected).value
            row.updated_at = utcnow()
            return {"id": row.id, "state": row.state, "actor": peer.actor_id}

    async def follow(self, client: httpx.AsyncClient, actor_id: str) -> dict[str, Any]:
        """Follow a peer's actor (by URL); the backfill starts when it accepts."""
        from holdfast.errors import InvalidInput, PermissionDenied

        if actor_id == self.identity.actor_url:
            raise InvalidInput("an instance cannot follow itself")
        if not self.actor_allowed(actor_id):
            raise PermissionDenied(f"{host_of(actor_id)} is not federated with (policy)")
        try:
            peer = await self.fetch_actor(client, actor_id)
        except FederationError as exc:
            raise InvalidInput(f"cannot read the actor {actor_id}: {exc}") from exc
        if not (peer.inbox or peer.shared_inbox):
            raise InvalidInput(f"{actor_id} has no inbox")
        with self.db.write() as s:
            row = s.scalar(
                select(Follow).where(Follow.peer_id == peer.id, Follow.direction == OUTBOUND)
            )
            activity = self.activity("Follow", actor_id)
            activity["to"] = [actor_id]
            activity.pop("cc", None)
            if row is None:
                row = Follow(peer_id=peer.id, direction=OUTBOUND, activity_id=activity["id"])
                s.add(row)
            row.activity_id = activity["id"]
            row.state = FollowState.pending.value
            row.updated_at = utcnow()
            self.add_outbox(s, activity, inboxes=[peer.inbox or peer.shared_inbox], public=False)
            s.flush()
            return {
                "id": row.id,
                "state": row.state,
                "actor": actor_id,
                "activity": row.activity_id,
            }

    def unfollow(self, follow_id: int) -> None:
        """End a follow: Undo ours, or drop a peer's (it gets no more deliveries)."""
        from holdfast.errors import NotFound

        with self.db.write() as s:
            row = s.get(Follow, follow_id)
            if row is None:
                raise NotFound("no follow with that id")
            peer = s.get(Peer, row.peer_id)
            assert peer is not None
            if row.direction == OUTBOUND and not peer.blocked:
                follow = {
                    "id": row.activity_id,
                    "type": "Follow",
                    "actor": self.identity.actor_url,
                    "object": peer.actor_id,
                }
                undo = self.activity("Undo", follow)
                undo["to"] = [peer.actor_id]
                undo.pop("cc", None)
                self.add_outbox(s, undo, inboxes=[peer.inbox or peer.shared_inbox], public=False)
            elif row.direction == INBOUND and not peer.blocked and row.state == "accepted":
                follow = {
                    "id": row.activity_id,
                    "type": "Follow",
                    "actor": peer.actor_id,
                    "object": self.identity.actor_url,
                }
                self.answer_follow(s, peer, follow, accept=False)
            s.delete(row)

    def relay_delete(self, s: Session, delete: dict[str, Any], rows: list[FedObject]) -> None:
        """Pass an origin's signed Delete on to our followers, if we relayed its object."""
        ids = [r.object_id for r in rows]
        announced = s.scalar(
            select(OutboxItem.id).where(
                OutboxItem.object_id.in_(ids), OutboxItem.type == "Announce"
            )
        )
        if announced is None:
            return
        relay = self.activity("Announce", delete)
        self.add_outbox(s, relay)


def federated_yaml(s: Session, upload_id: int) -> str | None:
    """The upload's holdfast.yaml as its object carries it: None when there is none, or
    when it is too large to travel (it then stays on this instance's pages)."""
    from holdfast.arrays.stored import stored_yaml

    text = stored_yaml(s, upload_id)
    if text is None or len(text.encode("utf-8")) > MAX_FEDERATED_YAML_BYTES:
        return None
    return text


def moment_of(value: Any) -> datetime | None:
    """A document's `published`/`updated` time, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
