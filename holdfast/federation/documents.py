"""ActivityStreams documents: the instance actor, Datasets and Uploads.

Pure functions from plain inputs to JSON-ready dicts; no database, no web app.
Every bit of caller text that ends up in HTML is escaped here, so a document can
never carry markup its inputs did not intend.

Mastodon shows a `Page` as "<h2>name</h2>", then its `summary` (HTML), then its
`url` — so the summary is written to be read in a timeline: what it is, how big,
its infohashes, and links to the `.torrent`, the magnet and the dataset.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from holdfast.federation.contexts import (
    ACTIVITYSTREAMS,
    DATA_INTEGRITY_V2,
    MULTIKEY_V1,
    SECURITY_V1,
    holdfast_terms,
)
from holdfast.federation.errors import DocumentError
from holdfast.federation.keys import multikey_block, public_key_block
from holdfast.federation.proofs import canonical_json

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"
LD_JSON_AS = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
TORRENT_MEDIA_TYPE = "application/x-bittorrent"
UPLOAD_TYPE = "holdfast:Upload"
DATASET_TYPE = "holdfast:Dataset"
DATASET_PART_TYPE = "holdfast:DatasetPart"

MAX_NAME_CHARS = 512
MAX_DESCRIPTION_CHARS = 64 * 1024
# An upload's holdfast.yaml travels in its object only up to this size (requests are
# limited to 1 MiB); a larger one stays on the origin's pages.
MAX_FEDERATED_YAML_BYTES = 256 * 1024
SUMMARY_EXCERPT_CHARS = 500
MAX_TAGS = 32

_USERNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_TAG = re.compile(r"[^\W_][\w-]{0,63}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _http_url(value: str, what: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or len(value) > 2048
        or any(char.isspace() for char in value)
    ):
        raise DocumentError(f"{what} must be an absolute http(s) URL, got {value!r}")
    return value


def _text(value: str, what: str, limit: int = MAX_NAME_CHARS, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()) or len(value) > limit:
        raise DocumentError(f"{what} must be text of 1 to {limit} characters")
    return value


def _utc(moment: datetime, what: str) -> str:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise DocumentError(f"{what} must be a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(tags: Sequence[str]) -> tuple[str, ...]:
    if len(tags) > MAX_TAGS:
        raise DocumentError(f"at most {MAX_TAGS} tags")
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise DocumentError(f"tag {tag!r} must be 1-64 letters, digits, '_' or '-'")
    return tuple(dict.fromkeys(tag.lower() for tag in tags))


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= SUMMARY_EXCERPT_CHARS:
        return flat
    return flat[: SUMMARY_EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"


def human_size(size: int) -> str:
    """Bytes in binary units, as a person reads them: '1.5 GiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    """Who an instance is on the fediverse: its public base URL and its name.

    `name` becomes the actor's `preferredUsername` and the user part of
    `acct:name@host`; `title` is the display name.
    """

    base_url: str
    name: str
    title: str
    summary: str = ""
    manually_approves_followers: bool = True

    def __post_init__(self) -> None:
        _http_url(self.base_url, "base_url")
        parts = urlsplit(self.base_url)
        if parts.query or parts.fragment or self.base_url.endswith("/"):
            raise DocumentError("base_url must have no query, fragment or trailing slash")
        if not isinstance(self.name, str) or not _USERNAME.fullmatch(self.name):
            raise DocumentError(f"instance name {self.name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        _text(self.title, "title")
        _text(self.summary, "summary", MAX_DESCRIPTION_CHARS, empty=True)

    @property
    def host(self) -> str:
        """The authority as it appears in `acct:name@host` (with a non-default port)."""
        parts = urlsplit(self.base_url)
        host = (parts.hostname or "").lower()
        if parts.port is not None and parts.port != (443 if parts.scheme == "https" else 80):
            return f"{host}:{parts.port}"
        return host

    @property
    def actor_url(self) -> str:
        return f"{self.base_url}/actor"

    @property
    def inbox_url(self) -> str:
        return f"{self.actor_url}/inbox"

    @property
    def outbox_url(self) -> str:
        return f"{self.actor_url}/outbox"

    @property
    def followers_url(self) -> str:
        return f"{self.actor_url}/followers"

    @property
    def following_url(self) -> str:
        return f"{self.actor_url}/following"

    @property
    def shared_inbox_url(self) -> str:
        return f"{self.base_url}/inbox"

    @property
    def key_id(self) -> str:
        """The `keyId` of the instance's HTTP signatures."""
        return f"{self.actor_url}#main-key"

    @property
    def profile_url(self) -> str:
        return f"{self.base_url}/"

    @property
    def acct(self) -> str:
        return f"acct:{self.name}@{self.host}"

    def tag_url(self, tag: str) -> str:
        return f"{self.base_url}/tags/{quote(tag, safe='')}"


def object_context() -> list[Any]:
    """The @context of our objects and activities: ActivityStreams, proofs, our terms."""
    return [ACTIVITYSTREAMS, DATA_INTEGRITY_V2, holdfast_terms()]


def instance_actor(
    identity: InstanceIdentity,
    *,
    rsa_public: rsa.RSAPublicKey,
    ed25519_public: ed25519.Ed25519PublicKey,
    published: datetime | None = None,
) -> dict[str, Any]:
    """The instance actor: a `Service` with both keys, as Mastodon and FEP-521a expect."""
    actor_id = identity.actor_url
    actor: dict[str, Any] = {
        "@context": [
            ACTIVITYSTREAMS,
            SECURITY_V1,
            DATA_INTEGRITY_V2,
            MULTIKEY_V1,
            holdfast_terms(),
        ],
        "id": actor_id,
        "type": "Service",
        "preferredUsername": identity.name,
        "name": identity.title,
        "summary": f"<p>{html.escape(identity.summary)}</p>" if identity.summary else "",
        "url": identity.profile_url,
        "inbox": identity.inbox_url,
        "outbox": identity.outbox_url,
        "followers": identity.followers_url,
        "following": identity.following_url,
        "endpoints": {"sharedInbox": identity.shared_inbox_url},
        "manuallyApprovesFollowers": identity.manually_approves_followers,
        "publicKey": public_key_block(actor_id, rsa_public),
        "assertionMethod": [multikey_block(actor_id, ed25519_public)],
    }
    if published is not None:
        actor["published"] = _utc(published, "published")
    return actor


def _hashtags(identity: InstanceIdentity, tags: Sequence[str]) -> list[dict[str, str]]:
    return [{"type": "Hashtag", "name": f"#{tag}", "href": identity.tag_url(tag)} for tag in tags]


def _hashtag_html(identity: InstanceIdentity, tags: Sequence[str]) -> str:
    links = [
        f'<a href="{html.escape(identity.tag_url(tag))}" class="mention hashtag" rel="tag">'
        f"#<span>{html.escape(tag)}</span></a>"
        for tag in tags
    ]
    return f"<p>{' '.join(links)}</p>" if links else ""


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


@dataclass(frozen=True, slots=True)
class UploadInfo:
    """What the catalogue knows of an upload, in plain values."""

    url: str
    name: str
    dataset_url: str
    dataset_title: str
    torrent_url: str
    magnet: str
    total_size: int
    file_count: int
    piece_length: int
    published: datetime
    infohash_v1: str | None = None
    infohash_v2: str | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    metadata_yaml: str | None = None  # the torrent's holdfast.yaml, as handed over
    updated: datetime | None = None

    def __post_init__(self) -> None:
        if self.metadata_yaml is not None and (
            not isinstance(self.metadata_yaml, str)
            or len(self.metadata_yaml.encode("utf-8")) > MAX_FEDERATED_YAML_BYTES
        ):
            raise DocumentError(
                f"metadata_yaml must be text of at most {MAX_FEDERATED_YAML_BYTES} bytes"
            )
        for what in ("url", "dataset_url", "torrent_url"):
            _http_url(getattr(self, what), what)
        _text(self.name, "name")
        _text(self.dataset_title, "dataset_title")
        _text(self.description, "description", MAX_DESCRIPTION_CHARS, empty=True)
        if not isinstance(self.magnet, str) or not self.magnet.startswith("magnet:?"):
            raise DocumentError("magnet must be a magnet: URI")
        if len(self.magnet) > 8192 or any(char.isspace() for char in self.magnet):
            raise DocumentError("magnet URI too long or contains spaces")
        if self.infohash_v1 is None and self.infohash_v2 is None:
            raise DocumentError("an upload needs a v1 or v2 infohash")
        if self.infohash_v1 is not None and not _HEX40.fullmatch(self.infohash_v1):
            raise DocumentError("infohash_v1 must be 40 lowercase hex digits")
        if self.infohash_v2 is not None and not _HEX64.fullmatch(self.infohash_v2):
            raise DocumentError("infohash_v2 must be 64 lowercase hex digits")
        for what in ("total_size", "file_count", "piece_length"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DocumentError(f"{what} must be a non-negative integer")
        if self.piece_length < 16384 or self.piece_length & (self.piece_length - 1):
            raise DocumentError("piece_length must be a power of two of at least 16 KiB")
        if self.file_count < 1:
            raise DocumentError("an upload has at least one file")
        _tags(self.tags)


def upload_document(identity: InstanceIdentity, upload: UploadInfo) -> dict[str, Any]:
    """An Upload as ActivityStreams: `["Page", "holdfast:Upload"]`, readable in Mastodon."""
    tags = _tags(upload.tags)
    hashes = []
    if upload.infohash_v2:
        hashes.append(f"v2 <code>{upload.infohash_v2}</code>")
    if upload.infohash_v1:
        hashes.append(f"v1 <code>{upload.infohash_v1}</code>")
    files = "1 file" if upload.file_count == 1 else f"{upload.file_count} files"
    paragraphs = [
        f"<p>New upload of {_link(upload.dataset_url, upload.dataset_title)}: "
        f"{human_size(upload.total_size)} in {files}.</p>",
    ]
    if upload.description.strip():
        paragraphs.append(f"<p>{html.escape(_excerpt(upload.description))}</p>")
    paragraphs.append(f"<p>Infohash {' · '.join(hashes)}</p>")
    paragraphs.append(
        f"<p>{_link(upload.torrent_url, 'Download the .torrent')} · "
        f"{_link(upload.magnet, 'magnet link')}</p>"
    )
    paragraphs.append(_hashtag_html(identity, tags))
    document: dict[str, Any] = {
        "@context": object_context(),
        "id": upload.url,
        "type": ["Page", UPLOAD_TYPE],
        "attributedTo": identity.actor_url,
        "name": upload.name,
        "summary": "".join(paragraphs),
        "url": [
            {"type": "Link", "href": upload.url, "mediaType": "text/html"},
            {"type": "Link", "href": upload.torrent_url, "mediaType": TORRENT_MEDIA_TYPE},
            {
                "type": "Link",
                "href": upload.magnet,
                "mediaType": TORRENT_MEDIA_TYPE,
                "rel": "magnet",
            },
        ],
        "torrent": upload.torrent_url,
        "magnet": upload.magnet,
        "dataset": upload.dataset_url,
        "totalSize": upload.total_size,
        "fileCount": upload.file_count,
        "pieceLength": upload.piece_length,
        "tag": _hashtags(identity, tags),
        "published": _utc(upload.published, "published"),
        "to": [PUBLIC],
        "cc": [identity.followers_url],
    }
    if upload.description:
        document["description"] = upload.description
    if upload.infohash_v1:
        document["infohashV1"] = upload.infohash_v1
    if upload.infohash_v2:
        document["infohashV2"] = upload.infohash_v2
    if upload.metadata_yaml is not None:
        document["holdfastYaml"] = upload.metadata_yaml
    if upload.updated is not None:
        document["updated"] = _utc(upload.updated, "updated")
    return document


@dataclass(frozen=True, slots=True)
class DatasetPartInfo:
    slug: str
    title: str

    def __post_init__(self) -> None:
        if not isinstance(self.slug, str) or not _SLUG.fullmatch(self.slug):
            raise DocumentError(f"part slug {self.slug!r} must be lowercase letters, digits, - _")
        _text(self.title, "part title")


@dataclass(frozen=True, slots=True)
class DatasetVersionInfo:
    """One immutable version of a dataset.

    `parent_hash` is the content hash of the version this one edits (None for the
    first). The content hash covers the content and the parent, so versions form a
    chain that peers can follow and in which a divergent edit shows as a fork.
    """

    dataset_url: str
    slug: str
    title: str
    published: datetime
    description: str = ""
    tags: tuple[str, ...] = ()
    source_url: str | None = None
    threat: str | None = None
    scarcity: str | None = None
    parts: tuple[DatasetPartInfo, ...] = ()
    parent_hash: str | None = None
    updated: datetime | None = field(default=None)

    def __post_init__(self) -> None:
        _http_url(self.dataset_url, "dataset_url")
        if not isinstance(self.slug, str) or not _SLUG.fullmatch(self.slug):
            raise DocumentError(f"slug {self.slug!r} must be lowercase letters, digits, - _")
        _text(self.title, "title")
        _text(self.description, "description", MAX_DESCRIPTION_CHARS, empty=True)
        _tags(self.tags)
        if self.source_url is not None:
            _http_url(self.source_url, "source_url")
        for what in ("threat", "scarcity"):
            value = getattr(self, what)
            if value is not None and (not isinstance(value, str) or not _SLUG.fullmatch(value)):
                raise DocumentError(f"{what} must be a short lowercase word")
        if len({part.slug for part in self.parts}) != len(self.parts) or len(self.parts) > 1024:
            raise DocumentError("part slugs must be distinct (and at most 1024 parts)")
        if self.parent_hash is not None and not re.fullmatch(
            r"sha256:[0-9a-f]{64}", self.parent_hash
        ):
            raise DocumentError("parent_hash must be 'sha256:' and 64 hex digits")

    def content(self) -> dict[str, Any]:
        """The fields the content hash covers."""
        return {
            "dataset": self.dataset_url,
            "slug": self.slug,
            "title": self.title,
            "description": self.description,
            "tags": sorted(_tags(self.tags)),
            "sourceUrl": self.source_url,
            "threat": self.threat,
            "scarcity": self.scarcity,
            "parts": [{"slug": part.slug, "title": part.title} for part in self.parts],
            "parent": self.parent_hash,
        }

    @property
    def content_hash(self) -> str:
        """'sha256:' + the SHA-256 of the JCS form of `content()`: the same on every instance."""
        return "sha256:" + hashlib.sha256(canonical_json(self.content())).hexdigest()

    def version_url(self, content_hash: str | None = None) -> str:
        digest = (content_hash or self.content_hash).removeprefix("sha256:")
        return f"{self.dataset_url}/versions/{digest}"


def dataset_document(identity: InstanceIdentity, version: DatasetVersionInfo) -> dict[str, Any]:
    """A dataset version as ActivityStreams: `["Page", "holdfast:Dataset"]`.

    Its `id` is the version's own (immutable) URL; `prov:specializationOf` names
    the dataset across versions and `prov:wasRevisionOf` the parent version.
    """
    tags = _tags(version.tags)
    content_hash = version.content_hash
    paragraphs = []
    if version.description.strip():
        paragraphs.append(f"<p>{html.escape(_excerpt(version.description))}</p>")
    facts = []
    if version.threat:
        facts.append(f"Threat: {html.escape(version.threat)}")
    if version.scarcity:
        facts.append(f"Scarcity: {html.escape(version.scarcity)}")
    if version.source_url:
        facts.append(f"Source: {_link(version.source_url, version.source_url)}")
    if facts:
        paragraphs.append(f"<p>{' · '.join(facts)}</p>")
    paragraphs.append(_hashtag_html(identity, tags))
    document: dict[str, Any] = {
        "@context": object_context(),
        "id": version.version_url(content_hash),
        "type": ["Page", DATASET_TYPE],
        "attributedTo": identity.actor_url,
        "name": version.title,
        "summary": "".join(paragraphs),
        "url": [{"type": "Link", "href": version.dataset_url, "mediaType": "text/html"}],
        "slug": version.slug,
        "contentHash": content_hash,
        "prov:specializationOf": version.dataset_url,
        "datasetParts": [
            {"type": DATASET_PART_TYPE, "slug": part.slug, "name": part.title}
            for part in version.parts
        ],
        "tag": _hashtags(identity, tags),
        "published": _utc(version.published, "published"),
        "to": [PUBLIC],
        "cc": [identity.followers_url],
    }
    if version.description:
        document["description"] = version.description
    if version.parent_hash is not None:
        document["prov:wasRevisionOf"] = version.version_url(version.parent_hash)
    if version.updated is not None:
        document["updated"] = _utc(version.updated, "updated")
    for key, value in (
        ("sourceUrl", version.source_url),
        ("threat", version.threat),
        ("scarcity", version.scarcity),
    ):
        if value is not None:
            document[key] = value
    return document


def tombstone(object_id: str, former_type: str | list[str], deleted: datetime) -> dict[str, Any]:
    """What a deleted object's URL answers (with HTTP 410 Gone)."""
    _http_url(object_id, "object_id")
    return {
        "@context": ACTIVITYSTREAMS,
        "id": object_id,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": _utc(deleted, "deleted"),
    }
