"""The federation part of the JSON API (`/api/v1/federation/...`).

Administrators manage peers (trust, block, allow), follows and see the policy;
moderators see dataset forks; anyone may read an item's provenance and check a
proof.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from holdfast.api.deps import CurrentAccount, RequireAdmin, RequireModerator
from holdfast.errors import InvalidInput, NotFound
from holdfast.federation.errors import FederationError, ProofRejected
from holdfast.federation.fetch import fetch
from holdfast.federation.keys import actor_assertion_keys
from holdfast.federation.models import FedObject, ObjectState, Peer
from holdfast.federation.proofs import owner_of, verify_proof
from holdfast.federation.service import Federation, host_of
from holdfast.federation.strictjson import loads_strict

router = APIRouter(prefix="/federation", tags=["federation"])


def _fed(request: Request) -> Federation:
    fed: Federation = request.app.state.federation
    return fed


class PeerOut(BaseModel):
    id: int
    actor: str
    host: str
    trust: str
    blocked: bool
    allowed: bool
    unreachable_since: datetime | None
    synced_at: datetime | None
    cursor: int


class PeerIn(BaseModel):
    actor: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    trust: Literal["auto", "review"] | None = None
    blocked: bool | None = None
    allowed: bool | None = None


class FollowIn(BaseModel):
    actor: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")


class FollowDecision(BaseModel):
    action: Literal["accept", "reject"]


class VerifyIn(BaseModel):
    document: dict[str, Any] | None = None
    url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")


def _peer_out(view: Any) -> PeerOut:
    return PeerOut(
        id=view.id,
        actor=view.actor_id,
        host=view.host,
        trust=view.trust,
        blocked=view.blocked,
        allowed=view.allowed,
        unreachable_since=view.unreachable_since,
        synced_at=view.synced_at,
        cursor=view.cursor,
    )


@router.get("/peers", response_model=list[PeerOut])
def list_peers(request: Request, actor: RequireAdmin) -> list[PeerOut]:
    """Every known peer with its policy and replication state."""
    return [_peer_out(p) for p in _fed(request).peers()]


@router.post("/peers", response_model=PeerOut)
def set_peer(request: Request, body: PeerIn, actor: RequireAdmin) -> PeerOut:
    """Set a peer's trust, block or allow it. Blocking drops its follows both ways."""
    return _peer_out(
        _fed(request).set_peer(
            body.actor, trust=body.trust, blocked=body.blocked, allowed=body.allowed
        )
    )


@router.post("/peers/{peer_id}/sync", status_code=202)
def sync_peer(request: Request, peer_id: int, actor: RequireAdmin) -> dict[str, Any]:
    """Read the peer's outbox again from its cursor (a background job)."""
    from holdfast.federation.jobs import queue_sync

    fed = _fed(request)
    with fed.db.write() as s:
        if s.get(Peer, peer_id) is None:
            raise NotFound("no peer with that id")
        queue_sync(s, peer_id)
    return {"ok": True}


@router.get("/policy")
def policy(request: Request, actor: RequireAdmin) -> dict[str, Any]:
    """The federation mode and the allowed and blocked hosts."""
    fed = _fed(request)
    peers = fed.peers()
    return {
        "federation": fed.settings.federation,
        "mode": fed.settings.federation_mode,
        "auto_accept_follows": fed.auto_accept,
        "allowed": sorted({p.host for p in peers if p.allowed}),
        "blocked": sorted({p.host for p in peers if p.blocked}),
        "review": sorted({p.actor_id for p in peers if p.trust == "review"}),
    }


@router.get("/follows")
def list_follows(request: Request, actor: RequireAdmin) -> list[dict[str, Any]]:
    """Follows both ways: `inbound` (peers following us) and `outbound`."""
    return _fed(request).follows()


@router.post("/follows", status_code=202)
async def follow(request: Request, body: FollowIn, actor: RequireAdmin) -> dict[str, Any]:
    """Follow a peer's actor; its catalogue is backfilled once it accepts."""
    fed = _fed(request)
    return await fed.follow(request.app.state.federation_client(), body.actor)


@router.post("/follows/{follow_id}")
def decide_follow(
    request: Request, follow_id: int, body: FollowDecision, actor: RequireAdmin
) -> dict[str, Any]:
    """Accept or reject a pending inbound follow."""
    return _fed(request).decide_follow(follow_id, accept=body.action == "accept")


@router.delete("/follows/{follow_id}", status_code=204)
def end_follow(request: Request, follow_id: int, actor: RequireAdmin) -> Response:
    """Unfollow a peer (Undo), or remove a follower."""
    _fed(request).unfollow(follow_id)
    return Response(status_code=204)


@router.get("/forks")
def forks(request: Request, actor: RequireModerator) -> list[dict[str, Any]]:
    """Dataset edits from peers that do not build on the version held here."""
    fed = _fed(request)
    with fed.db.read() as s:
        rows = s.scalars(
            select(FedObject)
            .where(FedObject.state == ObjectState.fork.value)
            .order_by(FedObject.id.desc())
            .limit(500)
        )
        return [
            {
                "object": r.object_id,
                "origin": r.origin,
                "dataset_id": r.dataset_id,
                "dataset": r.dataset_ref,
                "content_hash": r.content_hash,
                "parent_hash": r.parent_hash or None,
                "received_at": r.created_at,
                "document": json.loads(r.json),
            }
            for r in rows
        ]


@router.get("/provenance/uploads/{infohash}")
def upload_provenance(request: Request, infohash: str, viewer: CurrentAccount) -> dict[str, Any]:
    """Where an upload came from: each instance that published it, and its state."""
    upload = request.app.state.instance.catalogue.get_upload(viewer, infohash)
    return {"infohash": upload.infohash, "sources": _fed(request).sources(upload_id=upload.id)}


@router.get("/provenance/datasets/{slug}")
def dataset_provenance(request: Request, slug: str, viewer: CurrentAccount) -> dict[str, Any]:
    """Where a dataset came from: its origin and every version object seen."""
    dataset = request.app.state.instance.catalogue.get_dataset(viewer, slug)
    return {"slug": dataset.slug, "sources": _fed(request).sources(dataset_id=dataset.id)}


@router.post("/verify")
async def verify(request: Request, body: VerifyIn, viewer: CurrentAccount) -> dict[str, Any]:
    """Check an object's FEP-8b32 proof: give the `document`, or a `url` to fetch it from.

    `valid` says whether the proof verifies against its did:key; `owner_lists_key`
    whether the owner's actor (as cached or fetched here) lists that key.
    """
    fed = _fed(request)
    if (body.document is None) == (body.url is None):
        raise InvalidInput("give either document or url")
    document = body.document
    if body.url is not None:
        try:
            fetched = await fetch(request.app.state.federation_client(), body.url, sign=fed.signer)
            document = loads_strict(fetched.body)
        except FederationError as exc:
            raise InvalidInput(f"cannot read {body.url}: {exc}") from exc
        if not isinstance(document, dict):
            raise InvalidInput(f"{body.url} is not a JSON object")
    assert document is not None
    owner = owner_of(document)
    try:
        verified = verify_proof(document)
    except ProofRejected as exc:
        return {"valid": False, "reason": exc.reason.value, "detail": str(exc), "owner": owner}
    listed: bool | None = None
    if owner is not None:
        peer = await run_in_threadpool(fed.peer, owner)
        if owner == fed.identity.actor_url:
            listed = verified.public_key_multibase == fed.keys.public_key_multibase
        elif peer is not None and peer.actor_json:
            listed = (
                verified.public_key_multibase in actor_assertion_keys(json.loads(peer.actor_json))
                or verified.public_key_multibase == peer.did_key
            )
    return {
        "valid": True,
        "verification_method": verified.verification_method,
        "key": verified.public_key_multibase,
        "created": verified.created,
        "owner": owner,
        "owner_host": host_of(owner) if owner else None,
        "owner_lists_key": listed,
    }
