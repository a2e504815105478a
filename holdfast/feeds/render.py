"""RSS 2.0 and Atom documents.

Each item carries the `.torrent` as an enclosure (RSS `<enclosure>`, Atom
`<link rel="enclosure">`), which is what BitTorrent clients' RSS downloaders fetch;
RSS items also carry the ezRSS `torrent` elements (infohash, magnet link, size) that
some clients read. Documents are built as XML trees, so every value is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

ATOM_NS = "http://www.w3.org/2005/Atom"
EZRSS_NS = "http://xmlns.ezrss.it/0.1/"
TORRENT_TYPE = "application/x-bittorrent"

ET.register_namespace("atom", ATOM_NS)
ET.register_namespace("torrent", EZRSS_NS)


@dataclass
class FeedItem:
    title: str
    url: str
    torrent_url: str
    torrent_length: int
    published: datetime
    summary: str
    infohash: str  # what clients call it: v1, or the truncated v2 hash
    magnet: str
    content_length: int
    categories: list[str] = field(default_factory=list)


@dataclass
class FeedInfo:
    title: str
    description: str
    self_url: str
    page_url: str
    author: str


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def _serialise(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def rss_feed(info: FeedInfo, items: list[FeedItem]) -> bytes:
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", info.title)
    _text(channel, "link", info.page_url)
    _text(channel, "description", info.description)
    ET.SubElement(
        channel,
        f"{{{ATOM_NS}}}link",
        {"href": info.self_url, "rel": "self", "type": "application/rss+xml"},
    )
    _text(channel, "generator", "holdfast")
    if items:
        _text(channel, "lastBuildDate", format_datetime(_utc(max(i.published for i in items))))
    for item in items:
        node = ET.SubElement(channel, "item")
        _text(node, "title", item.title)
        _text(node, "link", item.url)
        _text(node, "guid", item.url, isPermaLink="true")
        _text(node, "pubDate", format_datetime(_utc(item.published)))
        _text(node, "description", item.summary)
        for category in item.categories:
            _text(node, "category", category)
        ET.SubElement(
            node,
            "enclosure",
            {"url": item.torrent_url, "length": str(item.torrent_length), "type": TORRENT_TYPE},
        )
        torrent = ET.SubElement(node, f"{{{EZRSS_NS}}}torrent")
        _text(torrent, f"{{{EZRSS_NS}}}fileName", item.title + ".torrent")
        _text(torrent, f"{{{EZRSS_NS}}}infoHash", item.infohash)
        _text(torrent, f"{{{EZRSS_NS}}}magnetURI", item.magnet)
        _text(torrent, f"{{{EZRSS_NS}}}contentLength", str(item.content_length))
    return _serialise(rss)


def atom_feed(info: FeedInfo, items: list[FeedItem], *, now: datetime | None = None) -> bytes:
    a = f"{{{ATOM_NS}}}"
    feed = ET.Element(f"{a}feed")
    _text(feed, f"{a}id", info.self_url)
    _text(feed, f"{a}title", info.title)
    _text(feed, f"{a}subtitle", info.description)
    updated = max((i.published for i in items), default=now or datetime.now(UTC))
    _text(feed, f"{a}updated", _utc(updated).isoformat())
    ET.SubElement(feed, f"{a}link", {"rel": "self", "href": info.self_url})
    ET.SubElement(feed, f"{a}link", {"rel": "alternate", "href": info.page_url})
    author = ET.SubElement(feed, f"{a}author")
    _text(author, f"{a}name", info.author)
    _text(feed, f"{a}generator", "holdfast")
    for item in items:
        entry = ET.SubElement(feed, f"{a}entry")
        _text(entry, f"{a}id", item.url)
        _text(entry, f"{a}title", item.title)
        _text(entry, f"{a}published", _utc(item.published).isoformat())
        _text(entry, f"{a}updated", _utc(item.published).isoformat())
        ET.SubElement(entry, f"{a}link", {"rel": "alternate", "href": item.url})
        ET.SubElement(
            entry,
            f"{a}link",
            {
                "rel": "enclosure",
                "type": TORRENT_TYPE,
                "length": str(item.torrent_length),
                "href": item.torrent_url,
            },
        )
        _text(entry, f"{a}summary", item.summary)
        for category in item.categories:
            ET.SubElement(entry, f"{a}category", {"term": category})
    return _serialise(feed)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
