"""Full-text search over datasets, uploads and the file paths inside torrents.

User input never reaches the query language: it is reduced to words (letters and
digits), each quoted for SQLite FTS5 or passed as a lexeme to PostgreSQL, so quotes,
brackets, colons, `OR`, `NEAR` or `*` are just text. All words must match; the last
one also matches as a prefix, so results appear while typing.

A page costs about the same whatever the catalogue's size: the best-ranked matches
are read first and only then joined to their datasets and uploads for the visibility
rules, matches are counted only up to SEARCH_COUNT_CAP, and on SQLite a word found in
more than RANK_POOL documents is ranked among the newest of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, Select, and_, func, literal_column, or_, select, text
from sqlalchemy.orm import Session, aliased

from holdfast.accounts.models import Account
from holdfast.catalogue.access import dataset_visible, visible_condition
from holdfast.catalogue.models import Dataset, SearchDocument, Status, Tag, Upload, dataset_tags
from holdfast.catalogue.service import Page
from holdfast.catalogue.text import words
from holdfast.db import Database
from holdfast.errors import InvalidInput

MAX_WORDS = 16
MAX_QUERY_CHARS = 500
# Column weights: a word in a title counts most, then descriptions, then file paths.
SQLITE_WEIGHTS = "10.0, 3.0, 1.0"
DOC_COLUMNS = (SearchDocument.kind, SearchDocument.ref_id, SearchDocument.dataset_id)
# Matches are counted up to here ("1,000+ results"); the exact count of a common word
# would cost a join of every match on every request.
SEARCH_COUNT_CAP = 1000
# The best-ranked matches are read first, a window of this many (or of twice the
# matches wanted, if more), before the visibility filters; the window grows fourfold
# while hidden items leave it short, and past the last size every match is ranked.
FIRST_WINDOW = 100
WINDOW_GROWTH = 4
LAST_WINDOW = 25_600
# On SQLite a query matching more documents than this (a common word) is ranked among
# the newest this many matches: bm25 costs about a microsecond per match, and every
# match of a word found in most documents would take longer than a page may. Add
# words to narrow. (PostgreSQL's ts_rank reads less per match and ranks them all.)
RANK_POOL = 5_000


@dataclass
class SearchHit:
    kind: str  # "dataset" or "upload"
    dataset: Dataset
    upload: Upload | None
    score: float


@dataclass
class SearchResult:
    query: str
    words: list[str]
    hits: list[SearchHit]
    total: int
    offset: int
    limit: int
    total_exact: bool = True
    has_next: bool = False
    # Set when the query matched so many documents that only the newest this many
    # were ranked (see RANK_POOL).
    ranked_newest: int | None = None

    @property
    def page(self) -> Page:
        return Page(self.hits, self.total, self.offset, self.limit, self.total_exact, self.has_next)


def fts5_query(terms: list[str]) -> str:
    quoted = [f'"{t}"' for t in terms]
    quoted[-1] += "*"
    return " ".join(quoted)


def tsquery(terms: list[str]) -> str:
    return " & ".join([*terms[:-1], terms[-1] + ":*"])


@dataclass
class Search:
    db: Database

    def search(
        self,
        viewer: Account | None,
        q: str,
        *,
        kind: str | None = None,
        tag: str | None = None,
        threat: str | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> SearchResult:
        if kind not in (None, "dataset", "upload"):
            raise InvalidInput("kind must be 'dataset' or 'upload'", fields={"kind": "invalid"})
        terms = words(q[:MAX_QUERY_CHARS])[:MAX_WORDS]
        if not terms:
            return SearchResult(q, [], [], 0, offset, limit)

        upload = aliased(Upload)
        conditions: list[Any] = [
            dataset_visible(viewer),
            Dataset.status != Status.removed.value,
            or_(
                SearchDocument.kind == "dataset",
                and_(visible_condition(upload, viewer), upload.status != Status.removed.value),
            ),
        ]
        if kind:
            conditions.append(SearchDocument.kind == kind)
        if threat:
            conditions.append(Dataset.threat == threat)
        if min_size is not None or max_size is not None:
            conditions.append(SearchDocument.kind == "upload")
            if min_size is not None:
                conditions.append(upload.total_size >= min_size)
            if max_size is not None:
                conditions.append(upload.total_size <= max_size)
        if tag:
            conditions.append(
                Dataset.id.in_(
                    select(dataset_tags.c.dataset_id)
                    .join(Tag, Tag.id == dataset_tags.c.tag_id)
                    .where(Tag.name == tag)
                )
            )

        def filtered(query: Select[Any]) -> Select[Any]:
            return (
                query.join(Dataset, Dataset.id == SearchDocument.dataset_id)
                .outerjoin(
                    upload,
                    and_(SearchDocument.kind == "upload", upload.id == SearchDocument.ref_id),
                )
                .where(*conditions)
            )

        narrowed = bool(kind or tag or threat or min_size is not None or max_size is not None)
        want = offset + limit + 1  # one more than the page, to know whether one follows
        window: int | None = max(FIRST_WINDOW, 2 * want)
        with self.db.read() as s:
            pool: int | None = None
            candidates: int | None = None  # how many matches may be ranked; None: not known
            if self.db.is_sqlite:
                every = self._matching(terms).limit(RANK_POOL + 1).subquery()
                matches = int(s.scalar(select(func.count()).select_from(every)) or 0)
                # A common word: rank the newest matches only, unless filters narrow
                # the results (then the newest matches might hold none of them).
                pool = RANK_POOL if matches > RANK_POOL and not narrowed else None
                candidates = matches if matches <= RANK_POOL else pool
            while True:
                ranked, order = self._ranked(terms, window, pool)
                rows = s.execute(
                    filtered(
                        select(*DOC_COLUMNS, ranked.c.score).join(
                            ranked, ranked.c.doc_id == SearchDocument.id
                        )
                    )
                    .order_by(order, SearchDocument.id.desc())
                    .offset(offset)
                    .limit(limit + 1)
                ).all()
                if window is None or len(rows) > limit:
                    break
                # Short of a full page (hidden items): done if the window held every
                # candidate, else rank more.
                if candidates is None:
                    every = self._matching(terms).limit(window + 1).subquery()
                    candidates = int(s.scalar(select(func.count()).select_from(every)) or 0)
                    if candidates > window:
                        candidates = None  # more than this window; count again if needed
                if candidates is not None and candidates <= window:
                    break
                window = window * WINDOW_GROWTH
                if window >= (candidates or LAST_WINDOW):
                    window = None
            has_next = len(rows) > limit
            rows = rows[:limit]
            if not has_next and (rows or offset == 0):
                total, exact = offset + len(rows), True
            else:
                cap = max(SEARCH_COUNT_CAP, offset + len(rows))
                matching = filtered(self._matching(terms))
                n = int(
                    s.scalar(select(func.count()).select_from(matching.limit(cap + 1).subquery()))
                    or 0
                )
                total, exact = min(n, cap), n <= cap
            hits = self._load(s, rows)
        result = SearchResult(q, terms, hits, total, offset, limit, exact, has_next)
        result.ranked_newest = pool
        return result

    def _matching(self, terms: list[str]) -> Select[Any]:
        """Ids of the search documents matching every word (no ranking)."""
        if self.db.is_sqlite:
            # A join, not `IN (...)`: SQLite then starts from the full-text index.
            matches = (
                text("SELECT rowid AS doc_id FROM search_fts WHERE search_fts MATCH :match")
                .bindparams(match=fts5_query(terms))
                .columns(doc_id=Integer)
                .subquery("matches")
            )
            return select(SearchDocument.id).join(matches, matches.c.doc_id == SearchDocument.id)
        vector: Any = literal_column("search_documents.search_vector")
        return select(SearchDocument.id).where(
            vector.op("@@")(func.to_tsquery("simple", tsquery(terms)))
        )

    def _ranked(self, terms: list[str], window: int | None, pool: int | None) -> tuple[Any, Any]:
        """The `window` best-ranked matching documents (all when None) as a subquery of
        (doc_id, score), and the order of the score, best first. With a `pool` (SQLite),
        only that many of the newest matches are ranked."""
        if self.db.is_sqlite:
            # Only constants are formatted in; the user's words are a bound parameter.
            scored = (
                f"SELECT rowid AS doc_id, bm25(search_fts, {SQLITE_WEIGHTS}) AS score "  # noqa: S608
                "FROM search_fts WHERE search_fts MATCH :match"
            )
            if pool is not None:
                scored += " ORDER BY rowid DESC LIMIT :pool"
            ranked = (
                text(
                    f"SELECT doc_id, score FROM ({scored}) "  # noqa: S608
                    "ORDER BY score, doc_id DESC LIMIT :window"
                )
                .bindparams(match=fts5_query(terms), window=-1 if window is None else window)
                .columns(doc_id=Integer, score=Float)
            )
            if pool is not None:
                ranked = ranked.bindparams(pool=pool)
            sub = ranked.subquery("ranked")
            return sub, sub.c.score.asc()  # bm25: lower is better
        # PostgreSQL ranks every match: ts_rank reads only the stored vector's weights
        # and counts (ts_rank_cd, which needs positions, costs twice as much).
        query = func.to_tsquery("simple", tsquery(terms))
        vector: Any = literal_column("search_documents.search_vector")
        score = func.ts_rank(vector, query)
        sub = (
            select(SearchDocument.id.label("doc_id"), score.label("score"))
            .where(vector.op("@@")(query))
            .order_by(score.desc(), SearchDocument.id.desc())
            .limit(window)
            .subquery("ranked")
        )
        return sub, sub.c.score.desc()

    def _load(self, s: Session, rows: Sequence[Any]) -> list[SearchHit]:
        """The datasets and uploads of one page of ranked rows, loaded in two queries."""
        if not rows:
            return []
        datasets = {
            d.id: d
            for d in s.scalars(select(Dataset).where(Dataset.id.in_({r.dataset_id for r in rows})))
        }
        upload_ids = {r.ref_id for r in rows if r.kind == "upload"}
        uploads = (
            {u.id: u for u in s.scalars(select(Upload).where(Upload.id.in_(upload_ids)))}
            if upload_ids
            else {}
        )
        return [
            SearchHit(
                kind=r.kind,
                dataset=datasets[r.dataset_id],
                upload=uploads.get(r.ref_id) if r.kind == "upload" else None,
                score=float(r.score or 0.0),
            )
            for r in rows
        ]


__all__ = ["Search", "SearchHit", "SearchResult"]
