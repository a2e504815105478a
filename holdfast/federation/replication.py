"""Applying peers' activities to this instance: follows, mirrored datasets and uploads.

`Receiver(federation, client).receive(activity, sender)` applies one activity that
`sender` is known to have sent (a verified inbox delivery, or an item of `sender`'s
outbox read over a signed fetch). Every object must carry an FEP-8b32 proof by its
origin's did:key; the key must be one the origin's actor lists, or (when the origin
cannot be reached, e.g. it was taken down) the one already pinned for it.

Mirrored items are ordinary catalogue rows (status `approved`, or `pending` for a
peer under review) with no account; `federation_objects` keeps each one's JSON as
received and its origin. The same infohash from several instances is one upload with
several objects (its sources). A dataset edit whose `prov:wasRevisionOf` is the
current version advances the dataset; any other unknown edit is kept as a `fork`.
An origin's Delete removes the item (unless another source still offers an upload)
and is relayed; an unreachable origin only marks its peer `unreachable_since`.

`sync_peer` reads a peer's outbox oldest-first from its cursor: the backfill after an
accepted follow, and the periodic re-sync.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from holdfast.catalogue.models import (
    Dataset,
    DatasetVersion,
    Scarcity,
    SearchDocument,
    Status,
    Threat,
    TorrentBlob,
    Upload,
)
from holdfast.catalogue.service import (
    _index_dataset,
    _tags,
    _upsert_document,
    add_upload_files,
    snapshot,
    upload_files_insert,
    upload_row,
    version_hash,
)
from holdfast.catalogue.text import path_index_text, render_markdown
from holdfast.db.base import utcnow
from holdfast.errors import InvalidInput
from holdfast.federation.documents import MAX_FEDERATED_YAML_BYTES
from holdfast.federation.errors import FederationError, FetchError, ProofRejected
from holdfast.federation.fetch import TORRENT_ACCEPT, fetch, fetch_json, media_type
from holdfast.federation.keys import actor_assertion_keys
from holdfast.federation.models import (
    FedObject,
    Follow,
    FollowState,
    ObjectState,
    Peer,
    SeenActivity,
    Trust,
)
from holdfast.federation.proofs import owner_of, verify_proof
from holdfast.federation.service import (
    ACTOR_CACHE_SECONDS,
    INBOUND,
    MAX_TORRENT_BUNDLE,
    OUTBOUND,
    TORRENT_BUNDLE_TYPE,
    Federation,
    dumps,
    host_of,
    moment_of,
)
from holdfast.moderation.models import Report
from holdfast.moderation.service import refresh_upload_count, refresh_upload_counts
from holdfast.torrents import TorrentError, bencode, parse_torrent
from holdfast.torrents.bencode import BencodeError

log = logging.getLogger("holdfast.federation")

MAX_TORRENT_BYTES = 64 * 1024 * 1024
MAX_SYNC_PAGES = 10_000
FETCH_CONCURRENCY = 8
PAGE_FETCHES = 16  # dataset and .torrent fetches in flight while a page is applied
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SLUG = re.compile(r"[^a-z0-9_-]+")


class Refused(FederationError):
    """An activity this instance will not apply (answered 400/403 on the inbox)."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.status = status


def types_of(document: Mapping[str, Any]) -> set[str]:
    kind = document.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def id_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _http(value: Any) -> str | None:
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and len(value) < 2048:
        return value
    return None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


class Receiver:
    """Applies activities for one instance (see the module docstring)."""

    def __init__(self, federation: Federation, client: httpx.AsyncClient) -> None:
        self.fed = federation
        self.db = federation.db
        self.client = client
        self.proofs_checked = False
        # .torrent files of the next outbox page, read while the current one is applied.
        self._prefetched: dict[str, asyncio.Task[bytes | None]] = {}
        self._prefetch_gate = asyncio.Semaphore(PAGE_FETCHES)

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def allowed(self, actor_or_url: str) -> bool:
        """`actor_allowed`, from memory when the policy was read recently."""
        cached = self.fed.cached_host_allowed(host_of(actor_or_url))
        if cached is not None:
            return cached
        return bool(await self.run(self.fed.actor_allowed, actor_or_url))

    # ----------------------------------------------------------------- dispatch

    async def receive(
        self,
        activity: Mapping[str, Any],
        sender: str,
        *,
        from_outbox: bool = False,
        proofs_checked: bool = False,
    ) -> str:
        """Apply `activity` sent by `sender`; returns what happened (for logs and tests).

        `proofs_checked`: the inbox already ran `precheck` on it (the proofs of its
        embedded object are not verified a second time)."""
        self.proofs_checked = proofs_checked
        actor = id_of(activity.get("actor"))
        if actor != sender:
            raise Refused(f"activity actor {actor!r} is not its sender {sender!r}", 401)
        if not await self.allowed(sender):
            raise Refused(f"{host_of(sender)} is not federated with", 403)
        activity_id = id_of(activity)
        kinds = types_of(activity)
        if activity_id and await self.run(self._seen, activity_id):
            return "duplicate"
        if "Follow" in kinds and not from_outbox:
            outcome = await self.on_follow(activity, sender)
        elif kinds & {"Accept", "Reject"} and not from_outbox:
            outcome = await self.run(self._on_answer, activity, sender, "Accept" in kinds)
        elif "Undo" in kinds:
            outcome = await self.run(self._on_undo, activity, sender)
        elif kinds & {"Create", "Update"}:
            outcome = await self.on_create(activity, sender)
        elif "Delete" in kinds:
            outcome = await self.on_delete(activity, sender, relayed_by=None)
        elif "Announce" in kinds:
            outcome = await self.on_announce(activity, sender)
        elif "Flag" in kinds and not from_outbox:
            outcome = await self.run(self._on_flag, activity, sender)
        else:
            outcome = "ignored"
        if activity_id:
            await self.run(self._mark_seen, activity_id, sender)
        return outcome

    def _seen(self, activity_id: str) -> bool:
        with self.db.read() as s:
            found = s.scalar(select(SeenActivity.id).where(SeenActivity.activity_id == activity_id))
            return found is not None

    def _mark_seen(self, activity_id: str, actor: str) -> None:
        try:
            with self.db.write() as s:
                if (
                    s.scalar(select(SeenActivity.id).where(SeenActivity.activity_id == activity_id))
                    is None
                ):
                    s.add(SeenActivity(activity_id=activity_id[:2048], actor=actor[:2048]))
        except IntegrityError:
            pass

    # ------------------------------------------------------------------ follows

    async def on_follow(self, activity: Mapping[str, Any], sender: str) -> str:
        if id_of(activity.get("object")) != self.fed.identity.actor_url:
            raise Refused("a Follow must name this instance's actor")
        peer = await self.fed.actor(self.client, sender)
        auto = self.fed.auto_accept
        follow_id = id_of(activity) or ""
        with self.db.write() as s:
            row = s.scalar(
                select(Follow).where(Follow.peer_id == peer.id, Follow.direction == INBOUND)
            )
            if row is None:
                row = Follow(peer_id=peer.id, direction=INBOUND, activity_id=follow_id)
                s.add(row)
            row.activity_id = follow_id
            row.updated_at = utcnow()
            if row.state != FollowState.accepted.value:
                row.state = (FollowState.accepted if auto else FollowState.pending).value
            if row.state == FollowState.accepted.value:
                self.fed.answer_follow(s, peer, dict(activity), accept=True)
        return "follow accepted" if auto else "follow pending"

    def _on_answer(self, activity: Mapping[str, Any], sender: str, accepted: bool) -> str:
        follow_id = id_of(activity.get("object"))
        with self.db.write() as s:
            peer = s.scalar(select(Peer).where(Peer.actor_id == sender))
            if peer is None:
                return "ignored"
            row = s.scalar(
                select(Follow).where(Follow.peer_id == peer.id, Follow.direction == OUTBOUND)
            )
            if row is None or (follow_id and follow_id != row.activity_id):
                return "ignored"
            row.state = (FollowState.accepted if accepted else FollowState.rejected).value
            row.updated_at = utcnow()
            if accepted:
                from holdfast.federation.jobs import queue_sync

                queue_sync(s, peer.id)
        return "follow accepted by peer" if accepted else "follow rejected by peer"

    def _on_undo(self, activity: Mapping[str, Any], sender: str) -> str:
        inner = activity.get("object")
        if isinstance(inner, Mapping) and "Follow" not in types_of(inner):
            return "ignored"
        with self.db.write() as s:
            peer = s.scalar(select(Peer).where(Peer.actor_id == sender))
            if peer is None:
                return "ignored"
            row = s.scalar(
                select(Follow).where(Follow.peer_id == peer.id, Follow.direction == INBOUND)
            )
            if row is None:
                return "ignored"
            if id_of(inner) not in (row.activity_id, None):
                return "ignored"
            s.delete(row)
        return "unfollowed"

    def _on_flag(self, activity: Mapping[str, Any], sender: str) -> str:
        objects = activity.get("object")
        targets = objects if isinstance(objects, list) else [objects]
        reason = f"reported by {sender}: {_text(activity.get('content'), 4000)}".strip()
        made = 0
        with self.db.write() as s:
            for target in targets[:20]:
                ident = id_of(target)
                if ident is None:
                    continue
                found = self._local_target(s, ident)
                if found is None:
                    continue
                kind, item_id = found
                s.add(
                    Report(target_type=kind, target_id=item_id, kind="other", reason=reason[:5000])
                )
                made += 1
        return f"{made} reports"

    def _local_target(self, s: Session, ident: str) -> tuple[str, int] | None:
        obj = s.scalar(select(FedObject).where(FedObject.object_id == ident))
        if obj is not None:
            if obj.kind == "upload" and obj.upload_id:
                return "upload", obj.upload_id
            if obj.kind == "dataset" and obj.dataset_id:
                return "dataset", obj.dataset_id
        base = self.fed.base_url
        if ident.startswith(f"{base}/uploads/"):
            infohash = ident.rsplit("/", 1)[-1].lower()
            upload_id = s.scalar(
                select(Upload.id).where(
                    (Upload.infohash_v2 == infohash) | (Upload.infohash_v1 == infohash)
                )
            )
            return ("upload", upload_id) if upload_id else None
        if ident.startswith(f"{base}/datasets/"):
            slug = ident[len(f"{base}/datasets/") :].split("/", 1)[0]
            dataset_id = s.scalar(select(Dataset.id).where(Dataset.slug == slug))
            return ("dataset", dataset_id) if dataset_id else None
        return None

    # ------------------------------------------------------------------- proofs

    async def check_origin_proof(self, document: Mapping[str, Any], origin: str) -> None:
        """The document carries a valid proof by a key its origin controls."""
        hit, _ = self.fed.cache.get(self.fed.cache.peers, origin)
        if hit:  # the origin's key is in memory: verify here, no thread hand-off
            key, peer, listed = self._proof_key(document, origin)
        else:
            key, peer, listed = await self.run(self._proof_key, document, origin)
        if listed:
            return
        try:
            peer = await self.fed.actor(self.client, origin, refresh=peer is not None)
        except FederationError:
            # The origin cannot be reached: the key already pinned for it decides; a
            # first key is pinned from the first valid proof.
            peer = await self.run(self.fed.peer, origin)
            if peer is not None and peer.did_key and peer.did_key != key:
                raise Refused(f"{origin} proves its objects with another key", 401) from None
            await self.run(self._pin_key, origin, key)
            return
        if key not in actor_assertion_keys(json.loads(peer.actor_json)):
            raise Refused(f"{origin} does not list {key} in its assertionMethod", 401)

    def _proof_key(self, document: Mapping[str, Any], origin: str) -> tuple[str, Peer | None, bool]:
        """Verify the proof (CPU, in a worker thread): its key, the cached origin, and
        whether that origin is already known to use the key (pinned or listed)."""
        try:
            verified = verify_proof(document)
        except ProofRejected as exc:
            raise Refused(f"proof refused: {exc}", 401) from exc
        if owner_of(document) != origin:
            raise Refused(f"the proof's document is owned by {owner_of(document)!r}, not {origin}")
        key = verified.public_key_multibase
        peer = self.fed.peer(origin)
        if peer is None:
            return key, None, False
        if peer.did_key == key:
            return key, peer, True
        fresh = peer.fetched_at is not None and (
            (datetime.now(UTC) - _aware(peer.fetched_at)).total_seconds() < ACTOR_CACHE_SECONDS
        )
        listed = fresh and bool(peer.actor_json) and key in _listed_keys(peer.actor_json)
        return key, peer, listed

    async def precheck(self, activity: Mapping[str, Any], sender: str) -> None:
        """What the inbox checks before it answers 202 and leaves the rest to a job:
        the sender is the actor and federated with (401/403), and every embedded
        object carries a valid proof by its origin's key (401)."""
        actor = id_of(activity.get("actor"))
        if actor != sender:
            raise Refused(f"activity actor {actor!r} is not its sender {sender!r}", 401)
        if not await self.allowed(sender):
            raise Refused(f"{host_of(sender)} is not federated with", 403)
        kinds = types_of(activity)
        obj = activity.get("object")
        if kinds & {"Create", "Update"}:
            if isinstance(obj, dict):
                await self.check_origin_proof(obj, sender)
            elif _http(obj) is None:
                raise Refused("the activity's object is neither embedded nor a URL")
        elif "Announce" in kinds and isinstance(obj, dict):
            origin = owner_of(obj)
            if origin is None:
                raise Refused("the announced object names no owner")
            if origin == self.fed.identity.actor_url:
                return
            if not await self.allowed(origin):
                raise Refused(f"{host_of(origin)} is not federated with", 403)
            await self.check_origin_proof(obj, origin)
        elif "Delete" in kinds:
            if id_of(obj) is None:
                raise Refused("a Delete must name its object")
            if "proof" in activity:
                await self.check_origin_proof(activity, sender)

    def _pin_key(self, origin: str, key: str) -> None:
        with self.db.write() as s:
            peer = self.fed.ensure_peer(s, origin)
            if not peer.did_key:
                peer.did_key = key

    # ------------------------------------------------------------------ objects

    async def resolve(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        url = _http(value)
        if url is None:
            raise Refused("the activity's object is neither embedded nor a URL")
        if not self.fed.actor_allowed(url):
            raise Refused(f"{host_of(url)} is not federated with", 403)
        _, document = await fetch_json(self.client, url, sign=self.fed.signer)
        if not isinstance(document, dict):
            raise Refused(f"{url} is not a JSON object")
        return document

    async def on_create(self, activity: Mapping[str, Any], sender: str) -> str:
        embedded = isinstance(activity.get("object"), dict)
        obj = await self.resolve(activity.get("object"))
        if not (embedded and self.proofs_checked):
            await self.check_origin_proof(obj, sender)
        return await self.apply_object(obj, origin=sender, received_from=sender)

    async def on_announce(self, activity: Mapping[str, Any], sender: str) -> str:
        obj = activity.get("object")
        if not isinstance(obj, dict):
            return "ignored"  # announces of mere links (boosts) carry nothing to mirror
        origin = owner_of(obj)
        if origin is None:
            raise Refused("the announced object names no owner")
        if origin == self.fed.identity.actor_url:
            return "ours"
        if not await self.allowed(origin):
            raise Refused(f"{host_of(origin)} is not federated with", 403)
        if not self.proofs_checked:
            await self.check_origin_proof(obj, origin)
        if "Delete" in types_of(obj):
            return await self.on_delete(obj, origin, relayed_by=sender)
        torrent = _http(activity.get("torrent"))
        return await self.apply_object(obj, origin=origin, received_from=sender, torrent=torrent)

    async def apply_object(
        self,
        obj: dict[str, Any],
        *,
        origin: str,
        received_from: str,
        torrent: str | None = None,
    ) -> str:
        kinds = types_of(obj)
        if origin == self.fed.identity.actor_url:
            return "ours"
        if "holdfast:Dataset" in kinds:
            return await self.run(self.apply_dataset, obj, origin, received_from)
        if "holdfast:Upload" in kinds:
            return await self.apply_upload(obj, origin, received_from, torrent)
        return "ignored"

    # datasets

    def apply_dataset(self, doc: dict[str, Any], origin: str, received_from: str) -> str:
        object_id = _http(doc.get("id"))
        dataset_ref = _http(doc.get("prov:specializationOf"))
        content_hash = doc.get("contentHash")
        if not object_id or not dataset_ref or not isinstance(content_hash, str):
            raise Refused("a dataset needs an id, prov:specializationOf and contentHash")
        parent_url = _http(doc.get("prov:wasRevisionOf"))
        parent_hash = "sha256:" + parent_url.rstrip("/").rsplit("/", 1)[-1] if parent_url else ""
        with self.db.write() as s:
            if s.scalar(select(FedObject.id).where(FedObject.object_id == object_id)):
                return "known"
            versions = list(
                s.scalars(
                    select(FedObject).where(
                        FedObject.dataset_ref == dataset_ref, FedObject.kind == "dataset"
                    )
                )
            )
            if any(v.origin != origin for v in versions):
                raise Refused("this dataset belongs to another origin", 403)
            if any(v.state == ObjectState.deleted.value for v in versions):
                return "deleted at its origin"
            current = next((v for v in versions if v.state == ObjectState.current.value), None)
            row = FedObject(
                object_id=object_id,
                kind="dataset",
                origin=origin,
                received_from=received_from,
                dataset_ref=dataset_ref,
                content_hash=content_hash[:80],
                parent_hash=parent_hash[:80],
                json=dumps(doc),
            )
            if current is None:
                dataset = self._new_dataset(s, doc, origin)
                row.dataset_id = dataset.id
                s.add(row)
                return "dataset created"
            row.dataset_id = current.dataset_id
            if any(v.parent_hash == content_hash for v in versions):
                row.state = ObjectState.superseded.value  # an ancestor read late
                s.add(row)
                return "older version"
            if parent_hash and parent_hash == current.content_hash:
                edited = s.get(Dataset, current.dataset_id) if current.dataset_id else None
                if edited is not None:
                    self._edit_dataset(s, edited, doc)
                current.state = ObjectState.superseded.value
                s.add(row)
                return "dataset updated"
            row.state = ObjectState.fork.value
            s.add(row)
            return "fork kept for moderators"

    def _status_for(self, s: Session, origin: str) -> str:
        trust = s.scalar(select(Peer.trust).where(Peer.actor_id == origin))
        return Status.pending.value if trust == Trust.review.value else Status.approved.value

    def _fields(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        threat = doc.get("threat")
        scarcity = doc.get("scarcity")
        source = _http(doc.get("sourceUrl"))
        tags = []
        for tag in doc.get("tag") or []:
            name = tag.get("name") if isinstance(tag, Mapping) else None
            if isinstance(name, str) and name.startswith("#"):
                word = name[1:].lower()
                if re.fullmatch(r"[^\W_][\w-]{0,63}", word):
                    tags.append(word)
        return {
            "title": _text(doc.get("name"), 300) or "Untitled",
            "description": _text(doc.get("description"), 64 * 1024),
            "source_urls": [source] if source else [],
            "threat": threat if threat in {t.value for t in Threat} else Threat.unknown.value,
            "scarcity": scarcity
            if scarcity in {v.value for v in Scarcity}
            else Scarcity.unknown.value,
            "tags": tags[:32],
        }

    def _free_slug(self, s: Session, wanted: str, origin: str) -> str:
        base = _SLUG.sub("-", wanted.lower()).strip("-")[:60] or "dataset"
        candidates = [base, f"{base}-{_SLUG.sub('-', host_of(origin))}"[:90]]
        candidates += [f"{candidates[1]}-{n}" for n in range(2, 50)]
        for slug in candidates:
            if s.scalar(select(Dataset.id).where(Dataset.slug == slug)) is None:
                return slug
        raise Refused("no free slug for this dataset")

    def _new_dataset(self, s: Session, doc: Mapping[str, Any], origin: str) -> Dataset:
        fields = self._fields(doc)
        slug = self._free_slug(s, _text(doc.get("slug"), 100) or fields["title"], origin)
        dataset = Dataset(
            slug=slug,
            title=fields["title"],
            description=fields["description"],
            description_html=render_markdown(fields["description"]),
            source_urls=fields["source_urls"],
            publisher=host_of(origin)[:300],
            threat=fields["threat"],
            scarcity=fields["scarcity"],
            status=self._status_for(s, origin),
            account_id=None,
        )
        dataset.tags = _tags(s, fields["tags"])
        s.add(dataset)
        s.flush()
        data = snapshot(dataset)
        s.add(
            DatasetVersion(
                dataset_id=dataset.id,
                number=1,
                summary=f"mirrored from {host_of(origin)}",
                data=data,
                content_hash=version_hash(data, None),
            )
        )
        _index_dataset(s, dataset)
        return dataset

    def _edit_dataset(self, s: Session, dataset: Dataset, doc: Mapping[str, Any]) -> None:
        fields = self._fields(doc)
        dataset.title = fields["title"]
        dataset.description = fields["description"]
        dataset.description_html = render_markdown(fields["description"])
        dataset.source_urls = fields["source_urls"]
        dataset.threat = fields["threat"]
        dataset.scarcity = fields["scarcity"]
        dataset.tags = _tags(s, fields["tags"])
        parent = s.scalar(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset.id, DatasetVersion.number == dataset.version
            )
        )
        parent_hash = parent.content_hash if parent else None
        dataset.version += 1
        dataset.updated_at = utcnow()
        data = snapshot(dataset)
        s.add(
            DatasetVersion(
                dataset_id=dataset.id,
                number=dataset.version,
                summary="edited at its origin",
                data=data,
                content_hash=version_hash(data, parent_hash),
                parent_hash=parent_hash,
            )
        )
        _index_dataset(s, dataset)

    # uploads

    async def apply_upload(
        self, doc: dict[str, Any], origin: str, received_from: str, torrent: str | None
    ) -> str:
        object_id, v1, v2, dataset_ref = _upload_refs(doc)
        infohash = v2 or v1 or ""
        known = await self.run(self._upload_known, object_id)
        if known == "known":
            return await self.run(self.refresh_upload, doc, origin) or known
        if known:
            return known
        dataset_id = await self.run(self._current_dataset, dataset_ref)
        if dataset_id is None and not recently_unavailable(self.fed.base_url, dataset_ref):
            try:
                dataset_doc = await self.resolve(dataset_ref)
                await self.check_origin_proof(dataset_doc, origin)
                await self.run(self.apply_dataset, dataset_doc, origin, received_from)
            except (FederationError, httpx.HTTPError) as exc:
                log.info("dataset %s of %s unavailable: %s", dataset_ref, object_id, exc)
                mark_unavailable(self.fed.base_url, dataset_ref)
            dataset_id = await self.run(self._current_dataset, dataset_ref)
        if dataset_id is None:
            await self.run(self._store_unfetched, doc, origin, received_from, infohash)
            return "dataset unavailable"
        if await self.run(self._link_existing, doc, origin, received_from, v1, v2, dataset_id):
            return "source added"
        data = await self.fetch_torrent(doc, torrent)
        if data is None:
            await self.run(self._store_unfetched, doc, origin, received_from, infohash)
            return "torrent unavailable"
        parsed = _checked_torrent(data, v1, v2)
        metadata = await self.run(_carried_metadata, doc, parsed)
        return await self.run(
            self._insert_upload, doc, origin, received_from, parsed, data, dataset_id, metadata
        )

    async def fetch_torrent(self, doc: Mapping[str, Any], torrent: str | None) -> bytes | None:
        """The upload's .torrent from its own link or `torrent` (a relaying peer's);
        None when neither answers (each failed URL is left alone for a while)."""
        for url in dict.fromkeys(u for u in (_http(doc.get("torrent")), torrent) if u):
            if recently_unavailable(self.fed.base_url, url) or not await self.allowed(url):
                continue
            early = self._prefetched.pop(url, None)
            if early is not None:
                data = await early
                if data is not None:
                    return data
            try:
                return await self._fetch_torrent_file(url)
            except (FederationError, httpx.HTTPError) as exc:
                log.info("torrent %s unavailable: %s", url, exc)
                mark_unavailable(self.fed.base_url, url)
        return None

    async def _fetch_torrent_file(self, url: str) -> bytes:
        """One `.torrent` file, fetched signed and bounded in size."""
        fetched = await fetch(
            self.client,
            url,
            accept=TORRENT_ACCEPT,
            max_bytes=MAX_TORRENT_BYTES,
            sign=self.fed.signer,
        )
        return fetched.body

    def prefetch_torrents(self, items: list[Any], sender: str, bundle: str | None = None) -> None:
        """Start reading the `.torrent` files that the Uploads in `items` (a page of
        `sender`'s outbox) link to on `sender`'s own host, at most `PAGE_FETCHES` at a
        time, or all in one request from `bundle` (a holdfast outbox page names one:
        `holdfast:torrents`); `fetch_torrent` takes them from here. Only bytes are read
        early: the checks (each file against the infohashes of its signed Upload) and
        the writes happen when the item is applied."""
        host = host_of(sender)
        together: asyncio.Task[dict[str, bytes]] | None = None
        if bundle and host_of(bundle) == host:
            together = asyncio.ensure_future(self._read_bundle(bundle))
        for item in items:
            if not isinstance(item, dict) or not _batchable(item, sender):
                continue
            obj = item["object"]
            url = _http(obj.get("torrent"))
            if (
                not url
                or "holdfast:Upload" not in types_of(obj)
                or host_of(url) != host
                or url in self._prefetched
                or recently_unavailable(self.fed.base_url, url)
            ):
                continue
            if together is None:
                read = self._read_early(url)
            else:
                read = self._from_bundle(together, url, obj)
            self._prefetched[url] = asyncio.ensure_future(read)

    async def _read_bundle(self, url: str) -> dict[str, bytes]:
        """{torrent URL: file} from a peer's `holdfast:torrents` link; empty on failure.
        Read at the link itself: a redirect (perhaps to another host) is a failure."""
        if not await self.allowed(url):
            return {}
        try:
            fetched = await fetch(
                self.client,
                url,
                accept=TORRENT_BUNDLE_TYPE,
                max_bytes=MAX_TORRENT_BUNDLE + 64 * 1024,
                max_redirects=0,
                sign=self.fed.signer,
            )
            if media_type(fetched.content_type) != TORRENT_BUNDLE_TYPE:
                raise FetchError(f"{url} answered {fetched.content_type or 'no content type'}")
            decode = functools.partial(bencode.decode, max_size=MAX_TORRENT_BUNDLE + 64 * 1024)
            decoded = await self.run(decode, fetched.body)
        except (FederationError, httpx.HTTPError, BencodeError) as exc:
            log.info("torrent bundle %s unavailable: %s", url, exc)
            return {}
        if not isinstance(decoded, dict):
            return {}
        return {
            key.decode("utf-8", "replace"): value
            for key, value in decoded.items()
            if isinstance(value, bytes)
        }

    async def _from_bundle(
        self, bundle: asyncio.Task[dict[str, bytes]], url: str, upload: Mapping[str, Any]
    ) -> bytes | None:
        """The `.torrent` at `url` from the bundle when it has the infohashes the signed
        `upload` names, else read by the URL itself (a wrong file taken from the bundle
        would get the upload refused, though its own file can be read)."""
        data = (await asyncio.shield(bundle)).get(url)
        if data is not None:
            try:
                _, v1, v2, _ = _upload_refs(upload)
                await self.run(_checked_torrent, data, v1, v2)
                return data
            except Refused as exc:
                log.info("torrent bundle entry %s not used: %s", url, exc)
        return await self._read_early(url)

    async def _read_early(self, url: str) -> bytes | None:
        async with self._prefetch_gate:
            if not await self.allowed(url):
                return None
            try:
                return await self._fetch_torrent_file(url)
            except (FederationError, httpx.HTTPError):
                return None  # tried again, and reported, when the item is applied

    def drop_prefetched(self, items: list[Any] | None = None) -> None:
        """Forget the early reads for `items` (all when None), e.g. of known uploads."""
        if items is None:
            urls = list(self._prefetched)
        else:
            urls = [
                u
                for i in items
                if isinstance(i, dict) and isinstance(i.get("object"), dict)
                for u in [_http(i["object"].get("torrent"))]
                if u
            ]
        for url in urls:
            task = self._prefetched.pop(url, None)
            if task is not None:
                task.cancel()

    def _upload_known(self, object_id: str) -> str | None:
        with self.db.read() as s:
            state = s.scalar(select(FedObject.state).where(FedObject.object_id == object_id))
        if state is None or state == ObjectState.unfetched.value:
            return None
        return "deleted at its origin" if state == ObjectState.deleted.value else "known"

    def refresh_upload(self, doc: Mapping[str, Any], origin: str) -> str | None:
        """A later signed version of a known upload from its origin (its holdfast.yaml
        handed over, changed or withdrawn there): its JSON is kept, and the metadata
        with it when valid. None when `doc` is not newer than what is kept. Metadata
        someone handed over on this instance is left as it is."""
        with self.db.read() as s:
            row = s.scalar(select(FedObject).where(FedObject.object_id == doc.get("id")))
            if (
                row is None
                or row.local
                or row.origin != origin
                or row.upload_id is None
                or row.state != ObjectState.current.value
                or not _newer(doc, json.loads(row.json))
            ):
                return None
            upload_id = row.upload_id
            data = None
            if isinstance(doc.get("holdfastYaml"), str):  # else nothing to check it against
                data = s.scalar(select(TorrentBlob.data).where(TorrentBlob.upload_id == upload_id))
        metadata = None
        if data is not None:
            try:
                metadata = _carried_metadata(doc, parse_torrent(data))
            except TorrentError:
                metadata = None
        with self.db.write() as s:
            row = s.scalar(select(FedObject).where(FedObject.object_id == doc.get("id")))
            if row is None or not _newer(doc, json.loads(row.json)):
                return None  # a later one got here first
            row.json = dumps(doc)
            row.updated_at = utcnow()
            _mirror_metadata(s, upload_id, metadata)
            upload = s.get(Upload, upload_id)
            if (
                upload is not None
                and upload.status == Status.approved.value
                and upload.dataset.status == Status.approved.value
            ):
                # Relayed as received, so our followers (and whoever backfills from us
                # once the origin is gone) get this version too.
                relay = self.fed.activity(
                    "Announce", dict(doc), torrent=self.fed.torrent_url(upload.infohash)
                )
                self.fed.add_outbox(s, relay, inboxes=self.fed.follower_inboxes(s))
        return "updated"

    def _current_dataset(self, dataset_ref: str) -> int | None:
        with self.db.read() as s:
            return s.scalar(
                select(FedObject.dataset_id).where(
                    FedObject.dataset_ref == dataset_ref,
                    FedObject.kind == "dataset",
                    FedObject.state == ObjectState.current.value,
                )
            )

    def _object_row(
        self, s: Session, doc: Mapping[str, Any], origin: str, received_from: str, infohash: str
    ) -> FedObject:
        row = s.scalar(select(FedObject).where(FedObject.object_id == doc["id"]))
        if row is None:
            row = FedObject(object_id=doc["id"], kind="upload", origin=origin, json=dumps(doc))
            s.add(row)
        row.received_from = received_from
        row.infohash = infohash
        row.json = dumps(doc)
        row.updated_at = utcnow()
        return row

    def _store_unfetched(
        self, doc: Mapping[str, Any], origin: str, received_from: str, infohash: str
    ) -> None:
        with self.db.write() as s:
            row = self._object_row(s, doc, origin, received_from, infohash)
            row.state = ObjectState.unfetched.value

    def _link_existing(
        self,
        doc: Mapping[str, Any],
        origin: str,
        received_from: str,
        v1: str | None,
        v2: str | None,
        dataset_id: int,
    ) -> bool:
        from sqlalchemy import or_

        conditions = []
        if v1:
            conditions.append(Upload.infohash_v1 == v1)
        if v2:
            conditions.append(Upload.infohash_v2 == v2)
        with self.db.read() as s:  # most uploads are new: no write transaction for them
            if s.scalar(select(Upload.id).where(or_(*conditions))) is None:
                return False
        with self.db.write() as s:
            upload = s.scalar(select(Upload).where(or_(*conditions)))
            if upload is None:
                return False
            row = self._object_row(s, doc, origin, received_from, upload.infohash)
            row.state = ObjectState.current.value
            row.upload_id = upload.id
            row.dataset_id = upload.dataset_id
            return True

    def _insert_upload(
        self,
        doc: Mapping[str, Any],
        origin: str,
        received_from: str,
        torrent: Any,
        data: bytes,
        dataset_id: int,
        metadata: tuple[str, tuple[dict[str, Any], str]] | None = None,
    ) -> str:
        with self.db.write() as s:
            conditions = []
            if torrent.infohash_v1:
                conditions.append(Upload.infohash_v1 == torrent.infohash_v1)
            if torrent.infohash_v2:
                conditions.append(Upload.infohash_v2 == torrent.infohash_v2)
            from sqlalchemy import or_

            upload = s.scalar(select(Upload).where(or_(*conditions)))
            dataset = s.get(Dataset, dataset_id)
            if dataset is None:
                raise Refused("the upload's dataset is gone")
            if upload is None:
                upload = _new_upload(torrent, doc, dataset_id, self._status_for(s, origin))
                description = upload.description
                s.add(upload)
                s.flush()
                s.add(TorrentBlob(upload_id=upload.id, data=data))
                paths = add_upload_files(s, upload.id, torrent)
                body = " ".join([description, dataset.title, torrent.comment or ""])
                _upsert_document(
                    s, "upload", upload.id, dataset_id, torrent.name, body, path_index_text(paths)
                )
                dataset.updated_at = utcnow()
                refresh_upload_count(s, dataset_id)
                if metadata is not None:
                    _mirror_metadata(s, upload.id, metadata)
            row = self._object_row(s, doc, origin, received_from, upload.infohash)
            row.state = ObjectState.current.value
            row.upload_id = upload.id
            row.dataset_id = upload.dataset_id
        return "upload created"

    # ------------------------------------------------------------------ deletes

    async def on_delete(
        self, activity: Mapping[str, Any], origin: str, *, relayed_by: str | None
    ) -> str:
        target = id_of(activity.get("object"))
        if target is None:
            raise Refused("a Delete must name its object")
        if target == origin:
            return "ignored"  # an actor deleting itself: its items stay (never lost)
        if relayed_by is None and "proof" in activity and not self.proofs_checked:
            await self.check_origin_proof(activity, origin)
        outcome = await self.run(self._apply_delete, dict(activity), target, origin)
        return outcome

    def _apply_delete(self, activity: dict[str, Any], target: str, origin: str) -> str:
        with self.db.write() as s:
            rows = list(
                s.scalars(
                    select(FedObject).where(
                        (FedObject.object_id == target) | (FedObject.dataset_ref == target)
                    )
                )
            )
            if not rows:
                return "unknown object"
            if any(r.origin != origin for r in rows):
                raise Refused("only an object's origin may delete it", 403)
            touched_datasets: set[int] = set()
            for row in rows:
                row.state = ObjectState.deleted.value
                row.deleted_at = utcnow()
                if row.kind == "upload" and row.upload_id:
                    self._maybe_remove_upload(s, row.upload_id)
                if row.kind == "dataset" and row.dataset_id:
                    touched_datasets.add(row.dataset_id)
            for dataset_id in touched_datasets:
                dataset = s.get(Dataset, dataset_id)
                if dataset is not None and dataset.account_id is None:
                    dataset.status = Status.removed.value
                    dataset.removed_at = utcnow()
                    dataset.moderation_note = f"deleted at its origin {host_of(origin)}"
                    for upload in s.scalars(select(Upload).where(Upload.dataset_id == dataset_id)):
                        for obj in s.scalars(
                            select(FedObject).where(
                                FedObject.upload_id == upload.id, FedObject.origin == origin
                            )
                        ):
                            obj.state = ObjectState.deleted.value
                            obj.deleted_at = utcnow()
                        self._maybe_remove_upload(s, upload.id)
            if "proof" in activity:
                self.fed.relay_delete(s, activity, rows)
        return "deleted"

    def _maybe_remove_upload(self, s: Session, upload_id: int) -> None:
        live = s.scalar(
            select(FedObject.id).where(
                FedObject.upload_id == upload_id, FedObject.state == ObjectState.current.value
            )
        )
        upload = s.get(Upload, upload_id)
        if upload is None or live is not None or upload.account_id is not None:
            return
        upload.status = Status.removed.value
        upload.removed_at = utcnow()
        upload.moderation_note = "deleted at its origin"
        refresh_upload_count(s, upload.dataset_id)

    # ------------------------------------------------------------- outbox pages

    async def apply_page(self, items: list[Any], sender: str) -> dict[str, int]:
        """Apply one page of `sender`'s outbox, in order; returns how many items were
        applied and how many failed. Runs of Creates, Updates and Announces of
        embedded datasets and uploads are applied together (`_apply_batch`); any
        other activity alone, between them, through `receive`."""
        counts = {"items": 0, "failed": 0}
        batch: list[dict[str, Any]] = []

        async def flush() -> None:
            if batch:
                applied, failed = await self._apply_batch(list(batch), sender)
                counts["items"] += applied
                counts["failed"] += failed
                batch.clear()

        for item in items:
            if not isinstance(item, dict):
                continue
            if _batchable(item, sender):
                batch.append(item)
                continue
            await flush()
            try:
                await self.receive(item, sender, from_outbox=True)
                counts["items"] += 1
            except (FederationError, httpx.HTTPError) as exc:
                counts["failed"] += 1
                log.info("outbox item of %s not applied: %s", sender, exc)
        await flush()
        return counts

    async def apply_inbox(
        self, activities: list[dict[str, Any]], sender: str
    ) -> list[str | Exception]:
        """What `receive(activity, sender, proofs_checked=True)` does for each of
        `activities` (inbox deliveries of `sender` whose signature and proofs the inbox
        already checked), in order; returns each one's outcome, or the error that
        stopped it (the others go on). Runs of Creates, Updates and Announces of
        embedded datasets and uploads are applied together as `apply_page` applies
        them; any other activity alone, between them, through `receive`."""
        results: list[str | Exception] = ["ignored"] * len(activities)
        run: list[int] = []

        async def flush() -> None:
            if not run:
                return
            indexes = list(run)
            run.clear()
            try:
                outcomes = await self._apply_run(
                    [activities[i] for i in indexes], sender, proofs_checked=True
                )
            except Exception as exc:  # then one at a time, each failing alone
                log.info("inbox activities of %s applied one by one: %s", sender, exc)
                for i in indexes:
                    results[i] = await self._receive_checked(activities[i], sender)
                return
            for i, outcome in zip(indexes, outcomes, strict=True):
                results[i] = outcome

        for index, activity in enumerate(activities):
            if _batchable(activity, sender):
                run.append(index)
                continue
            await flush()
            results[index] = await self._receive_checked(activity, sender)
        await flush()
        return results

    async def _receive_checked(self, activity: dict[str, Any], sender: str) -> str | Exception:
        try:
            outcome: str = await self.receive(activity, sender, proofs_checked=True)
            return outcome
        except Exception as exc:  # the caller fails this activity alone
            return exc

    async def _apply_batch(self, items: list[dict[str, Any]], sender: str) -> tuple[int, int]:
        """`_apply_run` for outbox items, counted: (applied, failed)."""
        outcomes = await self._apply_run(items, sender, proofs_checked=False)
        failed = sum(1 for o in outcomes if isinstance(o, Exception))
        return len(outcomes) - failed, failed

    async def _apply_run(
        self, items: list[dict[str, Any]], sender: str, *, proofs_checked: bool
    ) -> list[str | Exception]:
        """What `receive(item, sender, ...)` does for each item, with the I/O of the
        whole run overlapped: datasets first (in order), then every missing dataset
        and `.torrent` fetched at once (at most `PAGE_FETCHES` in flight), then the
        uploads and the applied marks written in one transaction. Returns each item's
        outcome or the error that stopped it. An item that fails is not marked applied
        (a later sync or retry tries it again); an upload whose files cannot be fetched
        is kept `unfetched` and retried later. `proofs_checked`: the inbox verified the
        embedded objects' proofs already."""
        self.proofs_checked = proofs_checked
        results: list[str | Exception] = ["ignored"] * len(items)
        if not await self.allowed(sender):
            log.info("activities of %s not applied: not federated with", sender)
            return [Refused(f"{host_of(sender)} is not federated with", 403) for _ in items]
        ids = [i for i in (id_of(item) for item in items) if i]
        seen = await self.run(self._seen_many, ids) if ids else set()
        entries: list[_Entry] = []
        where: dict[int, int] = {}  # id(entry) -> index in items
        for index, item in enumerate(items):
            activity_id = id_of(item)
            if activity_id and activity_id in seen:
                results[index] = "duplicate"
                continue
            if activity_id:
                seen.add(activity_id)
            try:
                entry = await self._entry(item, sender, proofs_checked=proofs_checked)
            except (FederationError, httpx.HTTPError) as exc:
                results[index] = exc
                log.info("activity of %s not applied: %s", sender, exc)
                continue
            where[id(entry)] = index
            entries.append(entry)
        for entry in entries:
            if entry.outcome is None and "holdfast:Dataset" in types_of(entry.obj):
                try:
                    entry.outcome = await self.run(
                        self.apply_dataset, entry.obj, entry.origin, sender
                    )
                except (FederationError, httpx.HTTPError) as exc:
                    entry.error = exc
        uploads = [e for e in entries if e.outcome is None and e.error is None]
        written = await self._apply_uploads(uploads, entries, sender)
        done = [e for e in entries if e.error is None]
        if not written:  # the marks were not part of the uploads' transaction
            marks = [e.activity_id for e in done if e.activity_id]
            await self.run(self._mark_seen_many, marks, sender)
        for entry in entries:
            if entry.error is not None:
                log.info("activity of %s not applied: %s", sender, entry.error)
                results[where[id(entry)]] = entry.error
            else:
                results[where[id(entry)]] = entry.outcome or "applied"
        return results

    async def _entry(
        self, item: dict[str, Any], sender: str, *, proofs_checked: bool = False
    ) -> _Entry:
        obj = item["object"]
        torrent = None
        if "Announce" in types_of(item):
            origin = owner_of(obj)
            if origin is None:
                raise Refused("the announced object names no owner")
            if origin == self.fed.identity.actor_url:
                return _Entry(item, obj, origin, None, outcome="ours")
            if not await self.allowed(origin):
                raise Refused(f"{host_of(origin)} is not federated with", 403)
            torrent = _http(item.get("torrent"))
        else:
            origin = sender
        if not proofs_checked:
            await self.check_origin_proof(obj, origin)
        if origin == self.fed.identity.actor_url:
            return _Entry(item, obj, origin, None, outcome="ours")
        return _Entry(item, obj, origin, torrent)

    async def _apply_uploads(
        self, entries: list[_Entry], batch: list[_Entry], received_from: str
    ) -> bool:
        """`apply_upload` for many `entries` of `batch`; True when the applied marks of
        the batch's entries that did not fail were written in the same transaction."""
        pending: list[_Entry] = []
        for e in entries:
            try:
                e.read_upload()
                pending.append(e)
            except Refused as exc:
                e.error = exc
        if not pending:
            return False
        states, datasets, existing = await self.run(self._batch_lookup, pending)
        for e in pending:
            state = states.get(e.object_id)
            if state is not None and state != ObjectState.unfetched.value:
                deleted = state == ObjectState.deleted.value
                e.outcome = "deleted at its origin" if deleted else "known"
                if e.outcome == "known" and "updated" in e.obj:
                    e.outcome = await self.run(self.refresh_upload, e.obj, e.origin) or "known"
        pending = [e for e in pending if e.outcome is None]
        gate = asyncio.Semaphore(PAGE_FETCHES)
        missing: dict[str, str] = {}
        for e in pending:
            ref = e.dataset_ref
            if datasets.get(ref) is None and not recently_unavailable(self.fed.base_url, ref):
                missing.setdefault(ref, e.origin)

        async def fetch_dataset(ref: str, origin: str) -> None:
            async with gate:
                try:
                    document = await self.resolve(ref)
                    await self.check_origin_proof(document, origin)
                    await self.run(self.apply_dataset, document, origin, received_from)
                except (FederationError, httpx.HTTPError) as exc:
                    log.info("dataset %s unavailable: %s", ref, exc)
                    mark_unavailable(self.fed.base_url, ref)

        if missing:
            await asyncio.gather(*(fetch_dataset(ref, o) for ref, o in missing.items()))
            _, datasets, existing = await self.run(self._batch_lookup, pending)
        need: list[_Entry] = []
        for e in pending:
            e.dataset_id = datasets.get(e.dataset_ref)
            if e.dataset_id is None:
                e.action, e.outcome = "unfetched", "dataset unavailable"
            elif (e.v1 and e.v1 in existing) or (e.v2 and e.v2 in existing):
                e.action, e.outcome = "link", "source added"
            else:
                need.append(e)

        async def fetch_one(e: _Entry) -> None:
            async with gate:
                e.data = await self.fetch_torrent(e.obj, e.torrent)

        await asyncio.gather(*(fetch_one(e) for e in need))

        def parse_all() -> None:
            for e in need:
                if e.data is None:
                    e.action, e.outcome = "unfetched", "torrent unavailable"
                    continue
                try:
                    e.parsed = _checked_torrent(e.data, e.v1, e.v2)
                    e.action, e.outcome = "insert", "upload created"
                except Refused as exc:
                    e.error = exc
                    continue
                e.metadata = _carried_metadata(e.obj, e.parsed)

        if need:
            await self.run(parse_all)
        marks = [e.activity_id for e in batch if e.error is None and e.activity_id]
        writes = [e for e in pending if e.error is None]
        try:
            await self.run(self._write_uploads, writes, received_from, marks)
            return True
        except (FederationError, SQLAlchemyError) as exc:
            # e.g. the same upload just arrived by another way: one item at a time.
            log.info("a page of %s applied item by item: %s", received_from, exc)
        for e in writes:
            try:
                e.outcome = await self.apply_upload(e.obj, e.origin, received_from, e.torrent)
            except (FederationError, httpx.HTTPError) as exc:
                e.error = exc
        return False

    def _seen_many(self, activity_ids: list[str]) -> set[str]:
        with self.db.read() as s:
            return set(
                s.scalars(
                    select(SeenActivity.activity_id).where(
                        SeenActivity.activity_id.in_(activity_ids)
                    )
                )
            )

    def _mark_seen_many(self, activity_ids: list[str], actor: str) -> None:
        if not activity_ids:
            return
        try:
            with self.db.write() as s:
                self._add_seen(s, activity_ids, actor)
        except IntegrityError:  # marked meanwhile by another way: one at a time
            for activity_id in activity_ids:
                self._mark_seen(activity_id, actor)

    def _add_seen(self, s: Session, activity_ids: list[str], actor: str) -> None:
        wanted = list(dict.fromkeys(a[:2048] for a in activity_ids))
        known = set(
            s.scalars(select(SeenActivity.activity_id).where(SeenActivity.activity_id.in_(wanted)))
        )
        s.add_all(SeenActivity(activity_id=a, actor=actor[:2048]) for a in wanted if a not in known)

    def _batch_lookup(
        self, entries: list[_Entry]
    ) -> tuple[dict[str, str], dict[str, int | None], set[str]]:
        """In one read: each entry's object state, each dataset's current catalogue
        row, and which of the entries' infohashes the catalogue already has."""
        object_ids = [e.object_id for e in entries]
        refs = list({e.dataset_ref for e in entries})
        v1s = [e.v1 for e in entries if e.v1]
        v2s = [e.v2 for e in entries if e.v2]
        with self.db.read() as s:
            states = dict(
                s.execute(
                    select(FedObject.object_id, FedObject.state).where(
                        FedObject.object_id.in_(object_ids)
                    )
                ).all()
            )
            datasets: dict[str, int | None] = dict(
                s.execute(
                    select(FedObject.dataset_ref, FedObject.dataset_id).where(
                        FedObject.dataset_ref.in_(refs),
                        FedObject.kind == "dataset",
                        FedObject.state == ObjectState.current.value,
                    )
                ).all()
            )
            existing: set[str] = set()
            if v1s:
                found = select(Upload.infohash_v1).where(Upload.infohash_v1.in_(v1s))
                existing.update(h for h in s.scalars(found) if h)
            if v2s:
                found = select(Upload.infohash_v2).where(Upload.infohash_v2.in_(v2s))
                existing.update(h for h in s.scalars(found) if h)
        return states, datasets, existing

    def _write_uploads(self, entries: list[_Entry], received_from: str, marks: list[str]) -> None:
        """One transaction: new uploads (with their .torrent, files and search
        document), sources added to known ones, unfetched ones kept, applied marks."""
        from sqlalchemy import or_

        with self.db.write() as s:
            rows = {
                r.object_id: r
                for r in s.scalars(
                    select(FedObject).where(FedObject.object_id.in_([e.object_id for e in entries]))
                )
            }

            def object_row(e: _Entry, infohash: str) -> FedObject:
                row = rows.get(e.object_id)
                if row is None:
                    row = FedObject(
                        object_id=e.object_id, kind="upload", origin=e.origin, json=dumps(e.obj)
                    )
                    rows[e.object_id] = row
                    s.add(row)
                row.received_from = received_from
                row.infohash = infohash
                row.json = dumps(e.obj)
                row.updated_at = utcnow()
                return row

            hashes_v1 = [h for e in entries for h in (e.v1, _attr(e.parsed, "infohash_v1")) if h]
            hashes_v2 = [h for e in entries for h in (e.v2, _attr(e.parsed, "infohash_v2")) if h]
            by_hash: dict[str, Upload] = {}
            if hashes_v1 or hashes_v2:
                for upload in s.scalars(
                    select(Upload).where(
                        or_(Upload.infohash_v1.in_(hashes_v1), Upload.infohash_v2.in_(hashes_v2))
                    )
                ):
                    for h in (upload.infohash_v1, upload.infohash_v2):
                        if h:
                            by_hash[h] = upload
            statuses: dict[str, str] = {}
            created: list[tuple[_Entry, Upload]] = []
            for e in entries:
                if e.action == "unfetched":
                    object_row(e, e.infohash).state = ObjectState.unfetched.value
                    continue
                hashes = [
                    e.v1,
                    e.v2,
                    _attr(e.parsed, "infohash_v1"),
                    _attr(e.parsed, "infohash_v2"),
                ]
                found = next((by_hash[h] for h in hashes if h and h in by_hash), None)
                if found is not None:
                    e.outcome = "source added"
                    e.upload = found
                else:
                    if e.action != "insert" or e.dataset_id is None:
                        raise Refused("a known upload is gone")
                    if e.origin not in statuses:
                        statuses[e.origin] = self._status_for(s, e.origin)
                    upload = _new_upload(e.parsed, e.obj, e.dataset_id, statuses[e.origin])
                    for h in (upload.infohash_v1, upload.infohash_v2):
                        if h:
                            by_hash[h] = upload
                    created.append((e, upload))
                    s.add(upload)
            if created:
                s.flush()
                datasets = {
                    d.id: d
                    for d in s.scalars(
                        select(Dataset).where(Dataset.id.in_({u.dataset_id for _, u in created}))
                    )
                }
                files: list[dict[str, Any]] = []
                for e, upload in created:
                    dataset = datasets.get(upload.dataset_id)
                    if dataset is None:
                        raise Refused("the upload's dataset is gone")
                    s.add(TorrentBlob(upload_id=upload.id, data=e.data))
                    torrent = e.parsed
                    paths = [f.path for f in torrent.files]
                    files.extend(
                        {"upload_id": upload.id, "idx": idx, "path": f.path, "size": f.size}
                        for idx, f in enumerate(torrent.files)
                    )
                    if len(files) >= 5000:
                        s.connection().execute(upload_files_insert, files)
                        files = []
                    body = " ".join([upload.description, dataset.title, torrent.comment or ""])
                    s.add(
                        SearchDocument(
                            kind="upload",
                            ref_id=upload.id,
                            dataset_id=upload.dataset_id,
                            title=torrent.name,
                            body=body,
                            paths=path_index_text(paths),
                        )
                    )
                    e.upload = upload
                if files:
                    s.connection().execute(upload_files_insert, files)
                for dataset in datasets.values():
                    dataset.updated_at = utcnow()
                refresh_upload_counts(s, datasets.values())
            for e in entries:
                if e.upload is not None:
                    row = object_row(e, e.upload.infohash)
                    row.state = ObjectState.current.value
                    row.upload_id = e.upload.id
                    row.dataset_id = e.upload.dataset_id
                    if e.metadata is not None:  # in page order: a later version wins
                        _mirror_metadata(s, e.upload.id, e.metadata)
            self._add_seen(s, marks, received_from)

    # -------------------------------------------------------------- outbox sync

    async def sync_peer(self, peer_id: int, *, max_pages: int = MAX_SYNC_PAGES) -> dict[str, int]:
        """Read a followed peer's outbox oldest-first from its cursor; returns counts."""
        peer = await self.run(self._peer_by_id, peer_id)
        if peer is None or peer.blocked or not self.fed.host_allowed(peer.host):
            return {"pages": 0, "items": 0, "failed": 0}
        counts = {"pages": 0, "items": 0, "failed": 0}
        try:
            if not peer.outbox:
                peer = await self.fed.fetch_actor(self.client, peer.actor_id)
            cursor = peer.cursor
            outbox = peer.outbox

            async def read_page(after: int) -> dict[str, Any]:
                url = f"{outbox}?after={after}"
                _, page = await fetch_json(self.client, url, sign=self.fed.signer)
                if not isinstance(page, dict):
                    raise FetchError(f"{url} is not a collection page")
                items = page.get("orderedItems")
                if isinstance(items, list):
                    ids = [i for i in (id_of(item) for item in items) if i]
                    seen = await self.run(self._seen_many, ids) if ids else set()
                    fresh = [item for item in items if id_of(item) not in seen]
                    bundle = _http(page.get("holdfast:torrents"))
                    self.prefetch_torrents(fresh, peer.actor_id, bundle if fresh else None)
                return page

            # The next page is read while this one is applied.
            upcoming: asyncio.Task[dict[str, Any]] | None = None
            try:
                for n in range(max_pages):
                    page = await (upcoming or read_page(cursor))
                    upcoming = None
                    items = page.get("orderedItems") or []
                    counts["pages"] += 1
                    if not isinstance(items, list) or not items:
                        break
                    try:
                        following: int | None = _next_cursor(page, cursor)
                    except FetchError:
                        following = None  # raised again once this page is applied
                    if following is not None and n + 1 < max_pages and following != cursor:
                        upcoming = asyncio.ensure_future(read_page(following))
                    applied = await self.apply_page(items, peer.actor_id)
                    self.drop_prefetched(items)
                    counts["items"] += applied["items"]
                    counts["failed"] += applied["failed"]
                    cursor = _next_cursor(page, cursor) if following is None else following
                    await self.run(self._save_cursor, peer_id, cursor, None)
            finally:
                if upcoming is not None and not upcoming.done():
                    upcoming.cancel()
                self.drop_prefetched()
        except (FederationError, httpx.HTTPError) as exc:
            log.info("peer %s unreachable: %s", peer.actor_id, exc)
            await self.run(self._save_cursor, peer_id, None, exc)
            raise
        await self.run(self._save_cursor, peer_id, None, None)
        await self.retry_unfetched(peer.actor_id)
        return counts

    async def retry_unfetched(self, received_from: str) -> None:
        """Try again the uploads from `received_from` whose dataset or .torrent could not
        be fetched: at the origin's URL and, for a relayed one, at the relaying peer's."""
        with self.db.read() as s:
            rows = list(
                s.execute(
                    select(FedObject.json, FedObject.origin, FedObject.infohash).where(
                        FedObject.received_from == received_from,
                        FedObject.state == ObjectState.unfetched.value,
                    )
                ).all()
            )
        for text, origin, infohash in rows[:500]:
            try:
                await self.apply_object(
                    json.loads(text),
                    origin=origin,
                    received_from=received_from,
                    torrent=relay_torrent_url(received_from, origin, infohash),
                )
            except (FederationError, httpx.HTTPError) as exc:
                log.info("unfetched object still unavailable: %s", exc)

    async def retry_object(self, object_id: str) -> str | None:
        """Try one unfetched upload again (see `retry_unfetched`); None if it is gone."""
        with self.db.read() as s:
            row = s.execute(
                select(
                    FedObject.json,
                    FedObject.origin,
                    FedObject.received_from,
                    FedObject.infohash,
                    FedObject.state,
                ).where(FedObject.object_id == object_id)
            ).first()
        if row is None:
            return None
        text, origin, received_from, infohash, state = row
        if state != ObjectState.unfetched.value:
            return str(state)
        return await self.apply_object(
            json.loads(text),
            origin=origin,
            received_from=received_from,
            torrent=relay_torrent_url(received_from, origin, infohash),
        )

    def _peer_by_id(self, peer_id: int) -> Peer | None:
        with self.db.read() as s:
            return s.get(Peer, peer_id)

    def _save_cursor(self, peer_id: int, cursor: int | None, error: Exception | None) -> None:
        with self.db.write() as s:
            peer = s.get(Peer, peer_id)
            if peer is None:
                return
            if cursor is not None:
                peer.cursor = cursor
                peer.unreachable_since = None
            elif error is not None:
                peer.unreachable_since = peer.unreachable_since or utcnow()
            else:
                peer.synced_at = utcnow()
                peer.unreachable_since = None


# URLs (datasets, .torrent files) whose fetch just failed: the many uploads of one
# unavailable dataset do not each try it again; `federation.refetch` comes later.
UNAVAILABLE_SECONDS = 20.0
_unavailable: dict[str, float] = {}


def recently_unavailable(instance: str, url: str) -> bool:
    until = _unavailable.get(f"{instance} {url}")
    return until is not None and until > time.monotonic()


def mark_unavailable(instance: str, url: str) -> None:
    if len(_unavailable) > 10_000:
        _unavailable.clear()
    _unavailable[f"{instance} {url}"] = time.monotonic() + UNAVAILABLE_SECONDS


def relay_torrent_url(received_from: str, origin: str, infohash: str) -> str | None:
    """Where the relaying holdfast instance serves an upload's .torrent (None when the
    upload came straight from its origin)."""
    if received_from == origin or not infohash or not received_from.endswith("/actor"):
        return None
    return f"{received_from.removesuffix('/actor')}/api/v1/uploads/{infohash}/torrent"


@dataclass(eq=False)
class _Entry:
    """One outbox item of a page being applied together with its neighbours."""

    activity: dict[str, Any]
    obj: dict[str, Any]
    origin: str
    torrent: str | None  # where a relaying peer serves the .torrent
    outcome: str | None = None
    error: Exception | None = None
    object_id: str = ""
    v1: str | None = None
    v2: str | None = None
    dataset_ref: str = ""
    dataset_id: int | None = None
    action: str | None = None  # unfetched | link | insert
    data: bytes | None = None
    parsed: Any = None
    upload: Upload | None = None
    metadata: tuple[str, tuple[dict[str, Any], str]] | None = None  # (yaml, checked)

    @property
    def activity_id(self) -> str | None:
        return id_of(self.activity)

    @property
    def infohash(self) -> str:
        return self.v2 or self.v1 or ""

    def read_upload(self) -> None:
        self.object_id, self.v1, self.v2, self.dataset_ref = _upload_refs(self.obj)


def _upload_refs(doc: Mapping[str, Any]) -> tuple[str, str | None, str | None, str]:
    """An Upload's id, v1 and v2 infohashes and dataset; Refused when one is missing."""
    object_id = _http(doc.get("id"))
    v1 = doc.get("infohashV1")
    v2 = doc.get("infohashV2")
    v1 = v1 if isinstance(v1, str) and _HEX40.fullmatch(v1) else None
    v2 = v2 if isinstance(v2, str) and _HEX64.fullmatch(v2) else None
    dataset_ref = _http(doc.get("dataset"))
    if not object_id or not (v1 or v2) or not dataset_ref:
        raise Refused("an upload needs an id, an infohash and its dataset")
    return object_id, v1, v2, dataset_ref


def _batchable(item: Mapping[str, Any], sender: str) -> bool:
    """A Create, Update or Announce by `sender` of an embedded dataset or upload."""
    obj = item.get("object")
    kinds = types_of(item)
    if id_of(item.get("actor")) != sender or len(kinds) != 1 or not isinstance(obj, dict):
        return False
    if not types_of(obj) & {"holdfast:Upload", "holdfast:Dataset"}:
        return False
    return bool(kinds & {"Create", "Update", "Announce"})


def _attr(value: Any, name: str) -> Any:
    return getattr(value, name, None) if value is not None else None


def _new_upload(torrent: Any, doc: Mapping[str, Any], dataset_id: int, status: str) -> Upload:
    """A mirrored upload: no account here, the description its origin signed."""
    description = _text(doc.get("description"), 64 * 1024)
    return upload_row(
        torrent, dataset_id=dataset_id, account_id=None, description=description, status=status
    )


def _carried_metadata(
    doc: Mapping[str, Any], torrent: Any
) -> tuple[str, tuple[dict[str, Any], str]] | None:
    """The holdfast.yaml an Upload object carries, with its checked fields, when it is
    the torrent's own file and valid; else None (the upload is kept without it)."""
    text = doc.get("holdfastYaml")
    if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_FEDERATED_YAML_BYTES:
        return None
    from holdfast.arrays.stored import check_yaml

    try:
        return text, check_yaml(torrent, text)
    except InvalidInput as exc:
        log.info("the holdfast.yaml of %s is not kept: %s", doc.get("id"), exc)
        return None


def _mirror_metadata(
    s: Session, upload_id: int, metadata: tuple[str, tuple[dict[str, Any], str]] | None
) -> None:
    """Keep a peer's checked holdfast.yaml for an upload (None: forget the one it sent
    before), unless someone handed one over on this instance (that one stays)."""
    from holdfast.arrays.models import UploadMetadata
    from holdfast.arrays.stored import put_metadata

    handed = s.scalar(
        select(UploadMetadata.account_id).where(UploadMetadata.upload_id == upload_id)
    )
    if handed is None:
        text, checked = metadata if metadata is not None else (None, None)
        put_metadata(s, upload_id, text, checked, None, publish=False)


def _newer(doc: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether `doc` is a later version of the same object than `than` (by `updated`)."""
    mine, theirs = moment_of(doc.get("updated")), moment_of(than.get("updated"))
    return mine is not None and (theirs is None or mine > theirs)


def _checked_torrent(data: bytes, v1: str | None, v2: str | None) -> Any:
    try:
        parsed = parse_torrent(data)
    except TorrentError as exc:
        raise Refused(f"the upload's .torrent is invalid: {exc}") from exc
    if (v1 and parsed.infohash_v1 != v1) or (v2 and parsed.infohash_v2 != v2):
        raise Refused("the .torrent does not have the infohash its upload names")
    return parsed


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _listed_keys(actor_json: str) -> list[str]:
    try:
        return list(actor_assertion_keys(json.loads(actor_json)))
    except (ValueError, FederationError):
        return []


def _next_cursor(page: Mapping[str, Any], cursor: int) -> int:
    value = page.get("holdfast:cursor")
    if isinstance(value, int) and not isinstance(value, bool) and value >= cursor:
        return value
    following = page.get("next")
    if isinstance(following, str):
        after = parse_qs(urlsplit(following).query).get("after")
        if after and after[0].isdigit() and int(after[0]) >= cursor:
            return int(after[0])
    raise FetchError("the outbox page gives no next position")
