"""Listings and search on a large catalogue: counts stop at a cap, pages know whether
another follows, search ranks a bounded set of matches, and hidden items never fill a
page in place of visible ones."""

from __future__ import annotations

import pytest

import holdfast.catalogue.search as search_module
import holdfast.catalogue.service as service_module
from holdfast.accounts.models import Role
from holdfast.catalogue.models import Status, Upload
from holdfast.catalogue.schemas import DatasetEdit
from tests.instance.helpers import make_dataset, make_upload, make_user


@pytest.fixture
def owner(instance):
    return make_user(instance, "olga", Role.uploader)


def test_listing_counts_up_to_the_cap_and_knows_the_next_page(instance, owner, monkeypatch):
    for i in range(5):
        make_dataset(instance, owner, title=f"Set {i}")
    monkeypatch.setattr(service_module, "COUNT_CAP", 3)
    first = instance.catalogue.list_datasets(None, limit=2)
    assert len(first.items) == 2
    assert (first.total, first.total_exact, first.has_next) == (3, False, True)
    last = instance.catalogue.list_datasets(None, offset=4, limit=2)
    # The last page settles the count without counting: everything before it, plus it.
    assert [d.title for d in last.items] == ["Set 0"]
    assert (last.total, last.total_exact, last.has_next) == (5, True, False)
    whole = instance.catalogue.list_datasets(None, limit=10)
    assert (whole.total, whole.total_exact, whole.has_next) == (5, True, False)
    assert [d.title for d in whole.items] == [f"Set {i}" for i in range(4, -1, -1)]


def test_listing_pages_never_hold_hidden_items(instance, owner):
    member = make_user(instance, "mick", Role.member)
    make_dataset(instance, owner, title="Public A")
    make_dataset(instance, member, title="Pending B", status=Status.pending)
    make_dataset(instance, owner, title="Public C")
    public = instance.catalogue.list_datasets(None, limit=1)
    assert [d.title for d in public.items] == ["Public C"] and public.has_next
    second = instance.catalogue.list_datasets(None, offset=1, limit=1)
    assert [d.title for d in second.items] == ["Public A"] and not second.has_next
    assert second.total == 2
    # The submitter sees their own pending dataset in place.
    own = instance.catalogue.list_datasets(member.account, limit=10)
    assert [d.title for d in own.items] == ["Public C", "Pending B", "Public A"]


def test_api_listing_documents_capped_counts(client, instance, owner, monkeypatch):
    for i in range(4):
        make_dataset(instance, owner, title=f"Set {i}")
    monkeypatch.setattr(service_module, "COUNT_CAP", 2)
    page = client.get("/api/v1/datasets?per_page=1").json()
    assert page["total"] == 2 and page["total_exact"] is False and page["has_next"] is True
    assert page["pages"] == 2  # a lower bound while the count is capped
    last = client.get("/api/v1/datasets?per_page=1&page=4").json()
    assert last["total"] == 4 and last["total_exact"] is True and last["has_next"] is False
    schema = client.get("/api/v1/openapi.json").json()
    listing = schema["paths"]["/api/v1/datasets"]["get"]["responses"]["200"]
    ref = listing["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = schema["components"]["schemas"][ref]["properties"]
    assert {"total", "total_exact", "has_next", "pages", "items"} <= set(fields)


def test_uploads_by_seeders_fewest_first_unmeasured_last(instance, owner, tmp_path):
    dataset = make_dataset(instance, owner)
    uploads = [make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(4)]
    counts = [5, 0, None, 2]
    with instance.db.write() as s:
        for upload, seeders in zip(uploads, counts, strict=True):
            s.get(Upload, upload.id).seeders = seeders
    page = instance.catalogue.list_uploads(None, sort="seeders", limit=10)
    assert [u.seeders for u in page.items] == [0, 2, 5, None]
    newest = instance.catalogue.list_uploads(None, limit=2)
    assert [u.id for u in newest.items] == [uploads[3].id, uploads[2].id] and newest.has_next


def test_versions_are_read_a_page_at_a_time(instance, owner):
    dataset = make_dataset(instance, owner, title="Edited")
    for n in range(3):
        instance.catalogue.edit_dataset(
            owner.account, dataset.slug, DatasetEdit(title=f"Edited {n}", summary=f"edit {n}")
        )
    page = instance.catalogue.versions(None, dataset.slug, offset=1, limit=2)
    assert page.total == 4 and page.has_next
    assert [v.number for v in page.items] == [3, 2]
    assert [v.summary for v in page.items] == ["edit 1", "edit 0"]
    last = instance.catalogue.versions(None, dataset.slug, offset=3, limit=2)
    assert [v.number for v in last.items] == [1] and not last.has_next


def test_tags_are_paged_most_used_first(instance, owner):
    make_dataset(instance, owner, tags=["alpha", "beta"])
    make_dataset(instance, owner, tags=["alpha"])
    first = instance.catalogue.tags(None, limit=1)
    assert first.items == [("alpha", 2)] and first.has_next
    second = instance.catalogue.tags(None, offset=1, limit=1)
    assert second.items == [("beta", 1)] and not second.has_next


def titles(result):
    return [hit.dataset.title for hit in result.hits]


def test_search_count_stops_at_the_cap(instance, owner, monkeypatch):
    for i in range(4):
        make_dataset(instance, owner, title=f"Walrus census {i}")
    monkeypatch.setattr(search_module, "SEARCH_COUNT_CAP", 2)
    result = instance.search.search(None, "walrus", limit=1)
    assert len(result.hits) == 1
    assert (result.total, result.total_exact, result.has_next) == (2, False, True)
    last = instance.search.search(None, "walrus", offset=3, limit=1)
    assert (last.total, last.total_exact, last.has_next) == (4, True, False)
    assert result.ranked_newest is None


def test_hidden_best_matches_do_not_shorten_a_page(instance, owner, monkeypatch):
    """The best-ranked window is read first; when hidden items fill it, it grows."""
    member = make_user(instance, "mallory", Role.member)
    make_dataset(instance, owner, title="Field notes", description="one zebra seen")
    make_dataset(instance, owner, title="Survey", description="a zebra and a zebra")
    make_dataset(instance, owner, title="Transect", description="zebra tracks")
    for i in range(6):
        make_dataset(
            instance, member, title=f"Zebra zebra {i}", status=Status.pending, description="zebra"
        )
    monkeypatch.setattr(search_module, "FIRST_WINDOW", 1)
    result = instance.search.search(None, "zebra", limit=2)
    assert len(result.hits) == 2 and result.has_next
    assert all("Zebra zebra" not in t for t in titles(result))
    everything = instance.search.search(None, "zebra", limit=20)
    assert sorted(titles(everything)) == ["Field notes", "Survey", "Transect"]
    assert everything.total == 3 and everything.total_exact
    # The same words for the submitter: their pending datasets rank first.
    own = instance.search.search(member.account, "zebra", limit=20)
    assert len(own.hits) == 9 and titles(own)[0].startswith("Zebra zebra")


def test_common_words_rank_the_newest_matches(instance, owner, monkeypatch):
    for i in range(5):
        make_dataset(instance, owner, title=f"Ocean {i}", tags=["sea"] if i == 0 else ["misc"])
    monkeypatch.setattr(search_module, "RANK_POOL", 3)
    result = instance.search.search(None, "ocean", limit=10)
    if instance.db.is_sqlite:
        assert result.ranked_newest == 3
        assert sorted(titles(result)) == ["Ocean 2", "Ocean 3", "Ocean 4"]
    else:  # PostgreSQL ranks every match
        assert result.ranked_newest is None and len(result.hits) == 5
    # A filter could leave none of the newest matches: then every match is ranked.
    tagged = instance.search.search(None, "ocean", tag="sea", limit=10)
    assert titles(tagged) == ["Ocean 0"] and tagged.ranked_newest is None
    # Few matches: all ranked.
    monkeypatch.setattr(search_module, "RANK_POOL", 5)
    assert len(instance.search.search(None, "ocean", limit=10).hits) == 5


@pytest.mark.parametrize("q", ['"', "OR", "NEAR(a b)", "a:b", "(x", "*", "-", "ocean OR"])
def test_hostile_words_are_still_safe(instance, owner, q):
    make_dataset(instance, owner, title="Ocean or not")
    result = instance.search.search(None, q)
    assert result.total == len(result.hits)
