"""What a person may submit to the catalogue, validated before anything changes."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from holdfast.catalogue.models import Scarcity, Threat

SLUG_RE = r"^[a-z0-9][a-z0-9-]{0,99}$"
TAG_RE = re.compile(r"[^a-z0-9]+")


def slugify(text: str, *, max_length: int = 100) -> str:
    """A URL-safe slug: 'NOAA SST 1981-2025' -> 'noaa-sst-1981-2025'."""
    # Separate words first, so punctuation such as an en dash still splits them.
    spaced = re.sub(r"[\W_]+", " ", text)
    ascii_text = unicodedata.normalize("NFKD", spaced).encode("ascii", "ignore").decode("ascii")
    slug = TAG_RE.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].strip("-")


def _check_url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "ftp", "ftps") or not parts.netloc:
        raise ValueError("must be an http(s) or ftp URL")
    if len(value) > 2000:
        raise ValueError("URL too long")
    return value


def _check_tag(value: str) -> str:
    tag = slugify(value, max_length=64)
    if not tag:
        raise ValueError("a tag needs at least one letter or digit")
    return tag


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and no person means one: refuse it everywhere.
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


NoNul = AfterValidator(_no_nul)
Slug = Annotated[str, StringConstraints(pattern=SLUG_RE, max_length=100)]
SourceUrl = Annotated[str, AfterValidator(_check_url)]
TagName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_tag)]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), NoNul
]
LongText = Annotated[str, StringConstraints(max_length=100_000), NoNul]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NoNul]


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    title: ShortText = ""
    description: LongText = ""


class DatasetIn(BaseModel):
    """A new dataset."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    slug: Slug | None = Field(default=None, description="Derived from the title when omitted.")
    description: LongText = Field(default="", description="Markdown.")
    source_urls: list[SourceUrl] = Field(default_factory=list, max_length=50)
    license: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), NoNul] = ""
    publisher: ShortText = ""
    threat: Threat = Threat.unknown
    scarcity: Scarcity = Scarcity.unknown
    tags: list[TagName] = Field(default_factory=list, max_length=30)
    parts: list[PartIn] = Field(default_factory=list, max_length=1000)


class DatasetEdit(BaseModel):
    """Changes to a dataset. Omitted fields stay as they are; every edit is a new version."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: LongText | None = None
    source_urls: list[SourceUrl] | None = Field(default=None, max_length=50)
    license: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), NoNul] | None
    ) = None
    publisher: ShortText | None = None
    threat: Threat | None = None
    scarcity: Scarcity | None = None
    tags: list[TagName] | None = Field(default=None, max_length=30)
    summary: ShortText = Field(default="", description="What changed, for the edit history.")
    base_version: int | None = Field(
        default=None,
        description="The version this edit was made from; a stale one is refused (409).",
    )


class UploadIn(BaseModel):
    """The fields sent with a .torrent file."""

    model_config = ConfigDict(extra="forbid")

    dataset: Slug
    description: LongText = ""
    method: LongText = Field(default="", description="How the data was obtained (Markdown).")
    parts: list[Slug] = Field(default_factory=list, max_length=1000)
