"""Full-text search over datasets, uploads and the file paths inside torrents.

User input never reaches the query language: it is reduced to words (letters and
digits), each quoted for SQLite FTS5 or passed as a lexeme to PostgreSQL, so quotes,
brackets, colons, `OR`, `NEAR` or `*` are just text. All words must match; the last
one also matches as a prefix, so results appear while typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, and_, func, literal_column, or_, select, text
from sqlalchemy.orm import aliased

from holdfast.accounts.models import Account
from holdfast.catalogue.access import dataset_visible, visible_condition
from holdfast.catalogue.models import Dataset, SearchDocument, Status, Tag, Upload, dataset_tags
from holdfast.catalogue.text import words
from holdfast.db import Database
from holdfast.errors import InvalidInput

MAX_WORDS = 16
MAX_QUERY_CHARS = 500
# Column weights: a word in a title counts most, then descriptions, then file paths.
SQLITE_WEIGHTS = "10.0, 3.0, 1.0"
DOC_COLUMNS = (SearchDocument.kind, SearchDocument.ref_id, SearchDocument.dataset_id)


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
        if self.db.is_sqlite:
            matches = (
                text(
                    # Only constants are formatted in; the user's words are a bound parameter.
                    f"SELECT rowid AS doc_id, bm25(search_fts, {SQLITE_WEIGHTS}) AS score "  # noqa: S608
                    "FROM search_fts WHERE search_fts MATCH :match"
                )
                .bindparams(match=fts5_query(terms))
                .columns(doc_id=Integer, score=Float)
                .subquery("matches")
            )
            score: Any = matches.c.score.label("score")
            order = score.asc()  # bm25: lower is better
            base = select(*DOC_COLUMNS, score).join(matches, matches.c.doc_id == SearchDocument.id)
        else:
            query = func.to_tsquery("simple", tsquery(terms))
            vector: Any = literal_column("search_documents.search_vector")
            score = func.ts_rank_cd(vector, query).label("score")
            order = score.desc()
            base = select(*DOC_COLUMNS, score).where(vector.op("@@")(query))

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
        joined = (
            base.join(Dataset, Dataset.id == SearchDocument.dataset_id)
            .outerjoin(
                upload,
                and_(SearchDocument.kind == "upload", upload.id == SearchDocument.ref_id),
            )
            .where(*conditions)
        )
        with self.db.read() as s:
            total = int(s.scalar(select(func.count()).select_from(joined.subquery())) or 0)
            # Rank and page on plain columns first, then load just that page's objects.
            rows = s.execute(
                joined.order_by(order, SearchDocument.id.desc()).offset(offset).limit(limit)
            ).all()
            datasets = {
                d.id: d
                for d in s.scalars(
                    select(Dataset).where(Dataset.id.in_({r.dataset_id for r in rows}))
                )
            }
            upload_ids = {r.ref_id for r in rows if r.kind == "upload"}
            uploads = (
                {u.id: u for u in s.scalars(select(Upload).where(Upload.id.in_(upload_ids)))}
                if upload_ids
                else {}
            )
            hits = [
                SearchHit(
                    kind=r.kind,
                    dataset=datasets[r.dataset_id],
                    upload=uploads.get(r.ref_id) if r.kind == "upload" else None,
                    score=float(r.score or 0.0),
                )
                for r in rows
            ]
        return SearchResult(q, terms, hits, total, offset, limit)


__all__ = ["Search", "SearchHit", "SearchResult"]
