"""An instance's catalogue outlives it: three real instances on 127.0.0.1.

A publishes datasets with uploads; B follows A and mirrors them. Then A is stopped for
good, and a fresh instance C follows B. C must end up with every one of A's uploads,
each still carrying A's own proof, verifying against A's key: nothing was re-signed on
the way, and nothing needed A to be reachable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from holdfast.federation.models import FedObject
from holdfast.federation.proofs import owner_of, verify_proof
from tests.federation.interop import ops
from tests.federation.interop.instances import InstanceThread, wait_until

pytestmark = [pytest.mark.slow]

UPLOADS = 4


def objects_from(node: InstanceThread, origin: str, kind: str) -> list[dict[str, Any]]:
    with node.instance.db.read() as s:
        rows = s.scalars(
            select(FedObject.json).where(FedObject.origin == origin, FedObject.kind == kind)
        ).all()
    return [json.loads(row) for row in rows]


def test_a_catalogue_survives_its_instance(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    a = InstanceThread(make_settings, name="alpha", federation_auto_accept=True).start()
    try:
        with InstanceThread(make_settings, name="beta", federation_auto_accept=True) as b:
            a_key = ops.federation(a).keys.public_key_multibase
            published = {
                ops.federation(a).upload_url(
                    ops.publish_upload(a, tmp_path / f"a{n}", title=f"Survey {n}").infohash
                )
                for n in range(UPLOADS)
            }
            ops.follow(b, a.actor_url)
            wait_until(
                lambda: {o["id"] for o in objects_from(b, a.actor_url, "upload")} >= published,
                timeout=120,
                what="B to mirror A's uploads",
            )
            a.stop()

            with InstanceThread(make_settings, name="gamma", federation_auto_accept=True) as c:
                ops.follow(c, b.actor_url)
                wait_until(
                    lambda: {o["id"] for o in objects_from(c, a.actor_url, "upload")} >= published,
                    timeout=120,
                    what="C to obtain A's uploads through B",
                )
                uploads = objects_from(c, a.actor_url, "upload")
                datasets = objects_from(c, a.actor_url, "dataset")
    finally:
        a.stop()

    assert {o["id"] for o in uploads} == published
    assert len(datasets) >= UPLOADS
    for document in uploads + datasets:
        assert owner_of(document) == a.actor_url
        assert verify_proof(document).public_key_multibase == a_key


def test_a_changed_copy_does_not_verify(make_settings: Callable[..., Any], tmp_path: Path) -> None:
    # The check above can fail: the same Upload, altered by a relay, no longer verifies.
    from holdfast.federation.errors import ProofRejected

    with InstanceThread(make_settings, name="alpha") as a:
        ops.publish_upload(a, tmp_path / "a")
        (document,) = objects_from(a, a.actor_url, "upload")
    assert verify_proof(document).public_key_multibase
    with pytest.raises(ProofRejected):
        verify_proof(dict(document, name="A different name"))
