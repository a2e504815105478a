"""JSON-LD contexts, bundled so that nothing is ever fetched to read our documents.

`BUNDLED` maps each context URL we use to the file holding it. The ActivityStreams,
security, data-integrity and multikey contexts are copies of the published ones;
`holdfast-v1.jsonld` defines our own terms and is embedded inline in the documents
we publish (so consumers need not fetch it either).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

ACTIVITYSTREAMS = "https://www.w3.org/ns/activitystreams"
SECURITY_V1 = "https://w3id.org/security/v1"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
HOLDFAST_V1 = "https://w3id.org/holdfast/v1"

BUNDLED: dict[str, str] = {
    ACTIVITYSTREAMS: "activitystreams.jsonld",
    SECURITY_V1: "security-v1.jsonld",
    DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
    MULTIKEY_V1: "multikey-v1.jsonld",
    HOLDFAST_V1: "holdfast-v1.jsonld",
}

# Other spellings of the same documents that peers put in their @context.
ALIASES: dict[str, str] = {
    "https://www.w3.org/ns/activitystreams.jsonld": ACTIVITYSTREAMS,
    "http://www.w3.org/ns/activitystreams": ACTIVITYSTREAMS,
    "https://w3id.org/security/v1.jsonld": SECURITY_V1,
}


@cache
def _load(filename: str) -> str:
    return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")


def bundled_context(url: str) -> dict[str, Any] | None:
    """The bundled context document for `url` (a fresh copy), or None if we do not bundle it."""
    filename = BUNDLED.get(ALIASES.get(url, url))
    if filename is None:
        return None
    document: dict[str, Any] = json.loads(_load(filename))
    return document


def holdfast_terms() -> dict[str, Any]:
    """Our term definitions, for embedding inline in a document's @context."""
    document = bundled_context(HOLDFAST_V1)
    if document is None:  # pragma: no cover - the file ships with the package
        raise RuntimeError("holdfast-v1.jsonld is missing from the installation")
    terms: dict[str, Any] = document["@context"]
    return terms
