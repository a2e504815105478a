"""Feeds: RSS 2.0 and Atom of the catalogue's uploads, each with its .torrent as an
enclosure, so BitTorrent clients' RSS downloaders can fetch and seed them.

- `service`: which uploads a feed lists (always what anonymous readers may see).
- `render`: the RSS 2.0 and Atom documents.
"""

from holdfast.feeds.render import FeedInfo, FeedItem, atom_feed, rss_feed
from holdfast.feeds.service import FEED_KINDS, Feed, Feeds

__all__ = ["FEED_KINDS", "Feed", "FeedInfo", "FeedItem", "Feeds", "atom_feed", "rss_feed"]
