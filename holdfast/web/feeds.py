"""Feed routes: RSS 2.0 and Atom for all uploads, a tag, a dataset, and "needs seeders".

    /feeds/uploads.rss            newest uploads
    /feeds/needs-seeders.rss      fewest seeders first
    /feeds/tags/{tag}.rss         newest uploads of datasets with this tag
    /feeds/datasets/{slug}.rss    newest uploads of one dataset

(each also as `.atom`). Feeds show what anonymous readers see, whoever asks. An
upload mirrored from a peer names the instance it came from.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from holdfast.accounts.instance_values import values_of
from holdfast.api.deps import InstanceDep
from holdfast.api.schemas import magnet_link
from holdfast.catalogue.models import Upload
from holdfast.errors import NotFound
from holdfast.feeds import Feed, FeedInfo, FeedItem, Feeds, atom_feed, rss_feed
from holdfast.instance import Instance
from holdfast.web.provenance import origin_marks
from holdfast.web.rendering import filesize

router = APIRouter(include_in_schema=False)

MEDIA_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml"}
Limit = Annotated[int, Query(ge=1, le=100)]


def feed_service(instance: Instance) -> Feeds:
    feeds = instance.services.get("feeds")
    if not isinstance(feeds, Feeds):
        feeds = Feeds(instance.db)
        instance.services["feeds"] = feeds
    return feeds


def _item(upload: Upload, base: str, torrent_length: int, origin: str | None = None) -> FeedItem:
    seeders = "not measured yet" if upload.seeders is None else str(upload.seeders)
    summary = (
        f"{upload.name}, part of the dataset {upload.dataset.title}. "
        f"{filesize(upload.total_size)} in {upload.file_count} file"
        f"{'' if upload.file_count == 1 else 's'}. Seeders: {seeders}."
    )
    if origin is not None:
        summary += f" Mirrored from {origin}."
    return FeedItem(
        title=f"{upload.name} ({upload.dataset.title})",
        url=f"{base}/uploads/{upload.infohash}",
        torrent_url=f"{base}/api/v1/uploads/{upload.infohash}/torrent",
        torrent_length=torrent_length,
        published=upload.created_at,
        summary=summary,
        infohash=upload.infohash_v1 or upload.infohash_v2_short or "",
        magnet=magnet_link(upload),
        content_length=upload.total_size,
        categories=upload.dataset.tag_names,
    )


def check_format(fmt: str) -> None:
    if fmt not in MEDIA_TYPES:
        raise NotFound("feeds are .rss or .atom")


def _respond(instance: Instance, feed: Feed, fmt: str, info: FeedInfo) -> Response:
    base = instance.base_url
    origins = origin_marks(instance, uploads=[u.id for u in feed.uploads])
    items = [
        _item(u, base, feed.torrent_sizes.get(u.id, 0), origins.host("upload", u))
        for u in feed.uploads
    ]
    body = rss_feed(info, items) if fmt == "rss" else atom_feed(info, items)
    return Response(
        body,
        media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def _info(instance: Instance, title: str, description: str, path: str, page: str) -> FeedInfo:
    base = instance.base_url
    instance_title = values_of(instance).current().instance_title
    return FeedInfo(
        title=f"{title} — {instance_title}",
        description=description,
        self_url=base + path,
        page_url=base + page,
        author=instance_title,
    )


@router.get("/feeds/uploads.{fmt}")
def uploads_feed(fmt: str, instance: InstanceDep, limit: Limit = 50) -> Response:
    check_format(fmt)
    feed = feed_service(instance).uploads("uploads", limit=limit)
    info = _info(instance, "New uploads", "The newest uploads.", f"/feeds/uploads.{fmt}", "/")
    return _respond(instance, feed, fmt, info)


@router.get("/feeds/needs-seeders.{fmt}")
def needs_seeders_feed(fmt: str, instance: InstanceDep, limit: Limit = 50) -> Response:
    check_format(fmt)
    feed = feed_service(instance).uploads("needs-seeders", limit=limit)
    info = _info(
        instance,
        "Uploads that need seeders",
        "Uploads with the fewest seeders first. Point your client's RSS downloader here "
        "to keep the rarest data alive.",
        f"/feeds/needs-seeders.{fmt}",
        "/",
    )
    return _respond(instance, feed, fmt, info)


@router.get("/feeds/tags/{tag}.{fmt}")
def tag_feed(
    tag: Annotated[str, Path(max_length=64)], fmt: str, instance: InstanceDep, limit: Limit = 50
) -> Response:
    check_format(fmt)
    feed = feed_service(instance).uploads("tag", tag, limit=limit)
    info = _info(
        instance,
        f"Uploads tagged {tag}",
        f"The newest uploads of datasets tagged '{tag}'.",
        f"/feeds/tags/{tag}.{fmt}",
        f"/tags/{tag}",
    )
    return _respond(instance, feed, fmt, info)


@router.get("/feeds/datasets/{slug}.{fmt}")
def dataset_feed(
    slug: Annotated[str, Path(max_length=100)], fmt: str, instance: InstanceDep, limit: Limit = 50
) -> Response:
    check_format(fmt)
    feed = feed_service(instance).uploads("dataset", slug, limit=limit)
    title = feed.dataset.title if feed.dataset else slug
    info = _info(
        instance,
        f"Uploads of {title}",
        f"The newest uploads of the dataset '{title}'.",
        f"/feeds/datasets/{slug}.{fmt}",
        f"/datasets/{slug}",
    )
    return _respond(instance, feed, fmt, info)
