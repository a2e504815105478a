"""Catalogue pages: home, dataset list, search, dataset, upload, tags.

Each page asks the services with the visitor's account, so what a page (or an HTMX
fragment of it) shows is exactly what the JSON API would show the same account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from holdfast.accounts.instance_values import values_of
from holdfast.api.deps import InstanceDep
from holdfast.api.schemas import magnet_link
from holdfast.arrays.stored import dataset_metadata_views, metadata_view
from holdfast.catalogue.access import can_edit
from holdfast.catalogue.models import Scarcity, Threat, Upload
from holdfast.catalogue.text import render_markdown
from holdfast.db.base import utcnow
from holdfast.errors import InvalidInput
from holdfast.instance import Instance
from holdfast.moderation.models import ReportKind
from holdfast.seeding import SeedingStatus, seeding_status
from holdfast.swarm.history import samples
from holdfast.swarm.models import EMBEDDED, SwarmTrackerState
from holdfast.web.chart import SwarmPoint, swarm_chart_svg
from holdfast.web.feeds import feed_service
from holdfast.web.forms import PagesDep, VisitorDep, render_page
from holdfast.web.history import history
from holdfast.web.linked_data import JSONLD_TYPE, dataset_jsonld, upload_jsonld, wants_jsonld
from holdfast.web.provenance import origin_marks, provenance_of, search_marks
from holdfast.web.sizes import parse_size

router = APIRouter(include_in_schema=False)

PageNumber = Annotated[int, Query(ge=1, le=100_000)]
DATASETS_PER_PAGE = 25
UPLOADS_PER_PAGE = 20
FILES_PER_PAGE = 100
SEARCH_PER_PAGE = 20
VERSIONS_PER_PAGE = 20
TAGS_PER_PAGE = 500
JSONLD_MAX_DISTRIBUTIONS = 100
CHART_DAYS = 90
# The newest samples read for the chart (about a month at one a scrape, hourly after
# two days); the chart draws at most chart.MAX_POINTS of them.
CHART_SAMPLES = 3000
THREAT_OPTIONS = [("", "any")] + [(t.value, t.value) for t in Threat]
SCARCITY_OPTIONS = [(s.value, s.value) for s in Scarcity]
SORT_OPTIONS = [
    ("updated", "recently updated"),
    ("created", "newest"),
    ("title", "title"),
    ("uploads", "most uploads"),
]
REPORT_KINDS = [(k.value, k.value) for k in ReportKind]


def hx_target(request: Request) -> str | None:
    if request.headers.get("hx-request") != "true":
        return None
    return request.headers.get("hx-target")


def jsonld_response(data: dict[str, Any]) -> Response:
    return JSONResponse(
        data, media_type=JSONLD_TYPE, headers={"Vary": "Accept", "Cache-Control": "no-cache"}
    )


@router.get("/")
def home(request: Request, visitor: VisitorDep, pages: PagesDep, instance: InstanceDep) -> Response:
    """The instance's shop window: what the public can see, whoever is looking."""
    public = feed_service(instance)
    counts = public.counts()
    newest = public.uploads("uploads", limit=8)
    needs_seeders = public.uploads("needs-seeders", limit=8)
    endangered = instance.catalogue.list_datasets(None, threat=Threat.endangered.value, limit=6)
    return render_page(
        request,
        pages,
        visitor,
        "home.html",
        {
            "dataset_count": counts.datasets,
            "upload_count": counts.uploads,
            "newest": newest.uploads,
            "endangered": endangered,
            "needs_seeders": needs_seeders.uploads,
        },
    )


@router.get("/datasets")
def dataset_list(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
    tag: Annotated[str, Query(max_length=64)] = "",
    threat: Threat | None = None,
    sort: Annotated[str, Query(pattern="^(updated|created|title|uploads)$")] = "updated",
) -> Response:
    result = instance.catalogue.list_datasets(
        visitor.account,
        offset=(page - 1) * DATASETS_PER_PAGE,
        limit=DATASETS_PER_PAGE,
        tag=tag or None,
        threat=threat.value if threat else None,
        sort=sort,
    )
    params = {"tag": tag, "threat": threat.value if threat else "", "sort": sort}
    context = {
        "datasets": result,
        "params": params,
        "threat_options": THREAT_OPTIONS,
        "sort_options": SORT_OPTIONS,
        "origins": origin_marks(instance, datasets=[d.id for d in result.items]),
    }
    if hx_target(request) == "dataset-results":
        return render_page(request, pages, visitor, "_dataset_results.html", context)
    return render_page(request, pages, visitor, "datasets.html", context)


@router.get("/search")
def search_page(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    q: Annotated[str, Query(max_length=500)] = "",
    kind: Annotated[str, Query(pattern="^(|dataset|upload)$")] = "",
    tag: Annotated[str, Query(max_length=64)] = "",
    threat: Annotated[str, Query(pattern="^(|unknown|safe|endangered|extinct)$")] = "",
    min_size: Annotated[str, Query(max_length=40)] = "",
    max_size: Annotated[str, Query(max_length=40)] = "",
    page: PageNumber = 1,
) -> Response:
    errors: dict[str, str] = {}
    sizes: dict[str, int | None] = {}
    for name, value in (("min_size", min_size), ("max_size", max_size)):
        try:
            sizes[name] = parse_size(value)
        except InvalidInput as exc:
            errors[name] = exc.message
            sizes[name] = None
    result = None
    if q.strip() and not errors:
        result = instance.search.search(
            visitor.account,
            q,
            kind=kind or None,
            tag=tag or None,
            threat=threat or None,
            min_size=sizes["min_size"],
            max_size=sizes["max_size"],
            offset=(page - 1) * SEARCH_PER_PAGE,
            limit=SEARCH_PER_PAGE,
        )
    params = {
        "q": q,
        "kind": kind,
        "tag": tag,
        "threat": threat,
        "min_size": min_size,
        "max_size": max_size,
    }
    context = {
        "result": result,
        "params": params,
        "errors": errors,
        "search_query": q,
        "threat_options": THREAT_OPTIONS,
        "origins": search_marks(instance, result),
    }
    status = 422 if errors else 200
    if hx_target(request) == "search-results":
        return render_page(request, pages, visitor, "_search_results.html", context, status=status)
    return render_page(request, pages, visitor, "search.html", context, status=status)


@router.get("/datasets/{slug}")
def dataset_page(
    slug: Annotated[str, Path(max_length=100)],
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
) -> Response:
    viewer = visitor.account
    dataset = instance.catalogue.get_dataset(viewer, slug)
    if wants_jsonld(request.headers.get("accept", "")):
        uploads = instance.catalogue.list_uploads(
            viewer, dataset=slug, limit=JSONLD_MAX_DISTRIBUTIONS
        )
        return jsonld_response(_dataset_ld(instance, dataset, uploads.items))
    uploads = instance.catalogue.list_uploads(
        viewer, dataset=slug, offset=(page - 1) * UPLOADS_PER_PAGE, limit=UPLOADS_PER_PAGE
    )
    versions = instance.catalogue.versions(viewer, slug, limit=4)
    context = {
        "dataset": dataset,
        "uploads": uploads,
        "recent_history": history(versions.items)[:3],
        "version_count": versions.total,
        "can_edit": can_edit(viewer, dataset.status, dataset.account_id),
        "jsonld": _dataset_ld(instance, dataset, uploads.items),
        "report_kinds": REPORT_KINDS,
        "params": {},
        "provenance": provenance_of(instance, dataset=dataset),
        "metadata_sections": dataset_metadata_views(instance, dataset.id),
    }
    return render_page(
        request, pages, visitor, "dataset.html", context, headers={"Vary": "Accept, Cookie"}
    )


def _dataset_ld(instance: Instance, dataset: Any, uploads: list[Upload]) -> dict[str, Any]:
    return dataset_jsonld(
        dataset,
        [u for u in uploads if u.status == "approved"] if dataset.status == "approved" else [],
        base_url=instance.base_url,
        catalog_title=values_of(instance).current().instance_title,
    )


@router.get("/datasets/{slug}/history")
def dataset_history(
    slug: Annotated[str, Path(max_length=100)],
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
) -> Response:
    dataset = instance.catalogue.get_dataset(visitor.account, slug)
    # Diffs need each version's predecessor, so the page takes one version more.
    offset = (page - 1) * VERSIONS_PER_PAGE
    versions = instance.catalogue.versions(
        visitor.account, slug, offset=offset, limit=VERSIONS_PER_PAGE + 1
    )
    window = versions.items
    return render_page(
        request,
        pages,
        visitor,
        "dataset_history.html",
        {
            "dataset": dataset,
            "history": history(window)[:VERSIONS_PER_PAGE],
            "paging": {"total": versions.total, "offset": offset, "limit": VERSIONS_PER_PAGE},
            "params": {},
        },
    )


def swarm_points(instance: Instance, upload: Upload) -> list[SwarmPoint]:
    """The swarm measurements of the last CHART_DAYS to chart, oldest first.

    Samples are stored when the counts change; the latest counts (from the upload row)
    close the line at the time they were last checked, so a swarm that has been
    steady for weeks still reaches the present. With no samples, that one point.
    """
    points: list[SwarmPoint] = list(
        samples(instance.db, upload.id, utcnow() - timedelta(days=CHART_DAYS), limit=CHART_SAMPLES)
    )
    if upload.swarm_checked_at is not None and upload.seeders is not None:
        latest = (upload.swarm_checked_at, upload.seeders, upload.leechers or 0)
        if not points or points[-1][0] < latest[0]:
            points.append(latest)
    return points


@router.get("/uploads/{infohash}")
def upload_page(
    infohash: Annotated[str, Path(max_length=64)],
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
    prefix: Annotated[str, Query(max_length=4096)] = "",
) -> Response:
    viewer = visitor.account
    upload = instance.catalogue.get_upload(viewer, infohash)
    if wants_jsonld(request.headers.get("accept", "")):
        return jsonld_response(
            upload_jsonld(
                upload,
                base_url=instance.base_url,
                catalog_title=values_of(instance).current().instance_title,
            )
        )
    files = instance.catalogue.upload_files(
        viewer,
        infohash,
        offset=(page - 1) * FILES_PER_PAGE,
        limit=FILES_PER_PAGE,
        prefix=prefix or None,
    )
    context = {
        "upload": upload,
        "files": files,
        "prefix": prefix,
        "breadcrumbs": _breadcrumbs(prefix),
        "params": {"prefix": prefix},
        "can_edit": can_edit(viewer, upload.status, upload.account_id),
        "report_kinds": REPORT_KINDS,
        "magnet": magnet_link(upload),
        "method_html": render_markdown(upload.method),
    }
    if hx_target(request) == "files":
        return render_page(request, pages, visitor, "_files.html", context)
    context["chart"] = swarm_chart_svg(
        swarm_points(instance, upload), title=f"Swarm health of {upload.name}"
    )
    context["tracker_rows"] = tracker_rows(instance, upload)
    context["seeding"] = seeding_of(instance, upload)
    context["provenance"] = provenance_of(instance, upload=upload)
    context["metadata_sections"] = [m for m in [metadata_view(instance, upload.id)] if m]
    context["jsonld"] = (
        upload_jsonld(
            upload,
            base_url=instance.base_url,
            catalog_title=values_of(instance).current().instance_title,
        )
        if upload.status == "approved"
        else None
    )
    return render_page(
        request, pages, visitor, "upload.html", context, headers={"Vary": "Accept, Cookie"}
    )


@dataclass(frozen=True)
class TrackerRow:
    tier: int | None  # None: the instance's own tracker, not named in the torrent
    url: str
    seeders: int | None = None
    leechers: int | None = None
    checked_at: datetime | None = None
    failure: str | None = None


def tracker_rows(instance: Instance, upload: Any) -> list[TrackerRow]:
    """Each tracker of the torrent with its last answer (or failure reason), and the
    instance's own tracker first when it tracks this upload."""
    with instance.db.read() as s:
        states = {
            st.url: st
            for st in s.scalars(
                select(SwarmTrackerState).where(SwarmTrackerState.upload_id == upload.id)
            )
        }

    def row(tier: int | None, url: str, key: str) -> TrackerRow:
        st = states.get(key)
        if st is None:
            return TrackerRow(tier, url)
        return TrackerRow(
            tier,
            url,
            st.seeders,
            st.leechers,
            st.last_success_at or st.last_scrape_at,
            st.failure_reason if st.error_kind else None,
        )

    rows = []
    if EMBEDDED in states:
        rows.append(row(None, instance.settings.announce_url, EMBEDDED))
    for tier, urls in enumerate(upload.trackers, 1):
        rows.extend(row(tier, url, url) for url in urls)
    return rows


def seeding_of(instance: Instance, upload: Any) -> SeedingStatus:
    """The instance seeder's status for this upload."""
    return seeding_status(instance, upload)


def _breadcrumbs(prefix: str) -> list[tuple[str, str]]:
    """('name', 'prefix/up/to/name/') for each folder of a prefix."""
    crumbs = []
    path = ""
    for part in [p for p in prefix.split("/") if p]:
        path += part + "/"
        crumbs.append((part, path))
    return crumbs


@router.get("/tags")
def tag_list(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
) -> Response:
    tags = instance.catalogue.tags(
        visitor.account, offset=(page - 1) * TAGS_PER_PAGE, limit=TAGS_PER_PAGE
    )
    return render_page(
        request, pages, visitor, "tags.html", {"tags": tags.items, "paging": tags, "params": {}}
    )


@router.get("/tags/{name}")
def tag_page(
    name: Annotated[str, Path(max_length=64)],
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
    sort: Annotated[str, Query(pattern="^(updated|created|title|uploads)$")] = "updated",
) -> Response:
    result = instance.catalogue.list_datasets(
        visitor.account,
        tag=name,
        offset=(page - 1) * DATASETS_PER_PAGE,
        limit=DATASETS_PER_PAGE,
        sort=sort,
    )
    return render_page(
        request,
        pages,
        visitor,
        "tag.html",
        {"tag": name, "datasets": result, "params": {"sort": sort}, "sort_options": SORT_OPTIONS},
    )
