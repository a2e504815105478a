"""Markdown to sanitised HTML, and text prepared for the search index."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}


def render_markdown(text: str) -> str:
    """Markdown rendered to HTML that is safe to embed in any page."""
    if not text:
        return ""
    # Raw HTML in the source is escaped by the renderer (html=False); nh3 then removes
    # anything dangerous the Markdown itself produced (javascript: links, for one).
    return nh3.clean(
        _md.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "ftp", "mailto", "magnet"},
        link_rel="nofollow noopener",
    )


_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_PATH_INDEX_CHARS = 200_000


def words(text: str) -> list[str]:
    """The searchable words of a text: letters and digits, split at everything else."""
    return _WORD.findall(text.lower())


def path_index_text(paths: list[str] | tuple[str, ...]) -> str:
    """The distinct words of a torrent's file paths, bounded in size.

    A 100,000-file torrent repeats most of its words; indexing each once keeps the
    index small (and under PostgreSQL's 1 MB tsvector limit) while every word that
    appears in a path can still be found.
    """
    seen: dict[str, None] = {}
    total = 0
    for path in paths:
        for word in _WORD.findall(path.lower()):
            if word not in seen:
                seen[word] = None
                total += len(word) + 1
                if total > MAX_PATH_INDEX_CHARS:
                    return " ".join(seen)
    return " ".join(seen)
