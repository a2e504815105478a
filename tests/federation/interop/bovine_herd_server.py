"""Child process: a bovine-herd server (PyPI `bovine-herd`) with one registered actor.

Run as `python -m tests.federation.interop.bovine_herd_server HANDLE` in an empty
folder (bovine keeps its JSON-LD cache in the working folder). It binds 127.0.0.1,
creates its database, registers HANDLE at http://127.0.0.1:PORT, gives the actor a
did:key for its client (bovine's "Moo-Auth-1" client-to-server login), announces
`{"port", "domain", "actor_id", "secret"}` and serves with hypercorn until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from pathlib import Path

from holdfast.federation.contexts import ACTIVITYSTREAMS, ALIASES, BUNDLED, bundled_context
from tests.federation.interop.children import announce, bind_loopback

# Offline, bovine caches a context it cannot fetch as *empty*, after which keys and
# most terms vanish from what it stores. Seed its cache with the published contexts.
JSONLD_CACHE = "bovine_jsonld_cache.sqlite"
# The terms bovine's own documents take from the DID context (not bundled by us).
DID_V1 = "https://www.w3.org/ns/did/v1"
DID_V1_TERMS = {
    "@protected": True,
    "id": "@id",
    "type": "@type",
    "alsoKnownAs": {"@id": "https://www.w3.org/ns/activitystreams#alsoKnownAs", "@type": "@id"},
    "assertionMethod": {
        "@id": "https://w3id.org/security#assertionMethod",
        "@type": "@id",
        "@container": "@set",
    },
    "authentication": {
        "@id": "https://w3id.org/security#authenticationMethod",
        "@type": "@id",
        "@container": "@set",
    },
    "controller": {"@id": "https://w3id.org/security#controller", "@type": "@id"},
    "service": {"@id": "https://www.w3.org/ns/did#service", "@type": "@id", "@container": "@set"},
    "serviceEndpoint": {"@id": "https://www.w3.org/ns/did#serviceEndpoint", "@type": "@id"},
}


def seed_jsonld_cache(folder: Path) -> None:
    rows = [(DID_V1, json.dumps(DID_V1_TERMS))]
    for url in [*BUNDLED, *ALIASES]:
        if url == ACTIVITYSTREAMS:
            continue  # bovine serves its own copy of this one
        document = bundled_context(url)
        if document is not None:
            rows.append((url, json.dumps(document["@context"])))
    with sqlite3.connect(folder / JSONLD_CACHE) as db:
        db.execute("CREATE TABLE IF NOT EXISTS jsonld (url TEXT PRIMARY KEY, context TEXT)")
        db.executemany("INSERT OR REPLACE INTO jsonld VALUES (?, ?)", rows)


async def prepare(db_url: str, domain: str, handle: str) -> tuple[str, str]:
    from bovine.crypto import generate_ed25519_private_key, private_key_to_did_key
    from bovine.types import Visibility
    from bovine_store import bovine_admin_store
    from tortoise import Tortoise

    async with bovine_admin_store(db_url=db_url, domain=domain) as store:
        await Tortoise.generate_schemas()
        bovine_name = await store.register(handle)
        secret = generate_ed25519_private_key()
        did_key = private_key_to_did_key(secret)
        await store.add_identity_string_to_actor(
            bovine_name, did_key.removeprefix("did:key:"), did_key
        )
        actor = await store.actor_for_name(bovine_name)
        actor_id = actor.actor_object.build(visibility=Visibility.OWNER)["id"]
        await actor.session.close()
    return actor_id, secret


def main() -> None:
    handle = sys.argv[1]
    folder = Path.cwd()
    seed_jsonld_cache(folder)
    sock = bind_loopback()
    port = sock.getsockname()[1]
    domain = f"http://127.0.0.1:{port}"
    db_url = f"sqlite://{folder / 'bovine.sqlite3'}"
    actor_id, secret = asyncio.run(prepare(db_url, domain, handle))

    from bovine_herd import BovineHerd
    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from quart import Quart

    app = BovineHerd(Quart("bovine_herd_server"), db_url=db_url)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = "-"
    config.errorlog = "-"
    config.graceful_timeout = 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        announce({"port": port, "domain": domain, "actor_id": actor_id, "secret": secret})
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(run())


if __name__ == "__main__":
    main()
