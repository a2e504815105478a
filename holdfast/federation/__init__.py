"""Federation: how holdfast instances (and the wider fediverse) talk to each other.

This package holds the parts that need neither the database nor the web app:

- `keys`: an instance's RSA key (HTTP signatures) and Ed25519 key (object proofs,
  exposed as a `did:key`).
- `httpsig`: signing outgoing requests (draft-cavage, as Mastodon expects) and
  verifying incoming ones (draft-cavage and RFC 9421); `httpmessage`, `rfc9421`
  and `structured_fields` are its parts.
- `proofs`: FEP-8b32 object integrity proofs with the `eddsa-jcs-2022` cryptosuite,
  over JSON read strictly by `strictjson`.
- `documents` and `discovery`: the ActivityStreams, WebFinger and NodeInfo documents.
- `netguard` and `fetch`: outbound requests that never reach private addresses.
- `contexts`: the JSON-LD contexts we use, bundled so they are never fetched.

`holdfast verify URL-or-file` (`holdfast.cli.verify`) checks proofs from the shell.

The parts that use the database and the app:

- `models`: tables `federation_keys`, `federation_peers` (cached actor, pinned did:key,
  trust auto|review, blocked, allowed, outbox cursor, unreachable_since),
  `federation_follows` (inbound|outbound, pending|accepted|rejected),
  `federation_outbox` (our activities; `id` is the outbox position),
  `federation_objects` (every Dataset version and Upload, ours or a peer's, JSON exactly
  as made or received, mapped to its catalogue row; several objects on one upload are
  its sources; state current|superseded|fork|deleted|unfetched) and `federation_seen`.
- `service.Federation(db, settings)`: `keys`, `identity`, `actor_document()`,
  `policy()`, `host_allowed(host)`, `actor_allowed(url)`, `set_peer(actor, trust=,
  blocked=, allowed=)`, `peers()`, `await follow(client, actor_url)`, `follows(direction)`,
  `decide_follow(id, accept=)`, `unfollow(id)`, `sign(method, url, body)`,
  `activity(type, object)`, `outbox_page(after=, before=, limit=)`, `sources(upload_id=|
  dataset_id=)`, `on_commit(changes)` (publishes catalogue changes: Create / Update /
  Delete for ours, Announce for mirrored items). `outbox_page_size` (default 50) may be
  lowered on a running instance (`app.state.federation`).
- `replication.Receiver(federation, client)`: `await receive(activity, sender)` applies
  one activity; `await sync_peer(peer_id)` reads a peer's outbox oldest-first from its
  cursor (backfill and re-sync).
- `delivery.deliver(client, federation, inbox, body)`: one signed POST.
- `jobs`: `federation.deliver` {item, inbox} (one per recipient, exponential backoff),
  `federation.receive` {body, sender} (an inbox activity already checked: catalogue
  insert, dataset and `.torrent` fetches), `federation.refetch` {object} (an upload
  whose dataset or `.torrent` was unavailable, tried again at the origin's and the
  relaying peer's URL), `federation.sync` {peer}, periodic `federation.resync`.
- Peers and host policy are read through a two-second in-memory cache, emptied by
  every committed change to `federation_peers` in the process.
- `extension.install(app, instance)`: routes, the admin API and the commit listener;
  `app.state.federation` and `instance.services["federation"]` hold the service,
  `app.state.federation_client()` the shared guarded HTTP client.

Routes (ActivityStreams answers are `application/activity+json`):

- `GET /.well-known/webfinger?resource=acct:NAME@HOST`, `GET /.well-known/nodeinfo`,
  `GET /nodeinfo/2.1` (federation policy in `metadata.federation`).
- `GET /actor` (Service), `/actor/followers`, `/actor/following`.
- `GET /actor/outbox` (OrderedCollection; `last` = `?after=0`); `?after=N` pages
  oldest-first (`next` continues, `holdfast:cursor` is the last position), `?before=`
  pages newest-first.
- `POST /actor/inbox` and `POST /inbox`: signed (draft-cavage or RFC 9421) or 401 with
  `reason` (unsigned, digest_mismatch, stale, unknown_key, bad_signature,
  signer_not_actor, ...); over `federation_max_request_bytes` 413; blocked or not allowed
  peers 403; a Create, Update, Announce or Delete whose embedded objects carry a
  valid proof by their origin's key (else 401) is answered 202 `{"ok": true,
  "result": "queued"}` once stored as a `federation.receive` job (several per
  commit); other activities are applied in the request (202 with what happened).
- `GET /datasets/{slug}`, `/datasets/{slug}/versions/{hex}`, `/uploads/{infohash}` with
  `Accept: application/activity+json` (also reachable as `/ap/...`): the object as
  stored, or a Tombstone with 410 once deleted. `GET /ap/activities/{id}`: a public
  activity.
- JSON API (`/api/v1/federation`): admin: `GET/POST /peers`, `POST /peers/{id}/sync`,
  `GET /policy`, `GET/POST /follows`, `POST /follows/{id}` {action: accept|reject},
  `DELETE /follows/{id}`; moderator: `GET /forks`; anyone: `GET
  /provenance/uploads/{infohash}`, `GET /provenance/datasets/{slug}`, `POST /verify`
  {document} or {url} (proof check).

Errors form one small tree (see `errors`)::

    FederationError
    ├── KeyFormatError          key material that cannot be read
    ├── SignatureRejected       an incoming request's signature is refused (401)
    ├── ProofRejected           an object's integrity proof is refused
    ├── ProofCreationError      a proof cannot be made for this document
    ├── DocumentError           input that cannot become a federation document
    │   └── WebFingerError      a WebFinger query that is malformed (400) or unknown (404)
    ├── UnsafeAddressError      an outbound request to a refused address
    └── FetchError              an outbound fetch that failed or was too large
"""
