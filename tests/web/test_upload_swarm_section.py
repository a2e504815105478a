"""The upload page shows each tracker's last answer or failure, and the seeder's status."""

from __future__ import annotations

from holdfast.accounts.models import Role
from holdfast.catalogue.schemas import UploadIn
from holdfast.db.base import utcnow
from holdfast.swarm.models import EMBEDDED, SwarmTrackerState
from tests.instance.helpers import make_dataset, make_upload, make_user
from tests.instance.torrents import make_files, make_torrent
from tests.web.helpers import HTML, text_of


def test_trackers_with_counts_failures_and_the_instance_tracker(client, instance, tmp_path):
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    with instance.db.write() as s:
        s.add(
            SwarmTrackerState(
                upload_id=upload.id,
                url=EMBEDDED,
                seeders=7,
                leechers=3,
                last_scrape_at=utcnow(),
                last_success_at=utcnow(),
            )
        )
    page = client.get(f"/uploads/{upload.infohash}", headers=HTML)
    assert page.status_code == 200
    text = text_of(page.text)
    assert "this instance" in text and instance.settings.announce_url in text
    assert "7" in text and "3" in text
    # the seeder's section says why this instance does not seed it: no data here
    assert "does not hold this upload's data" in text


def test_a_trackers_own_failure_reason_is_shown(client, instance, tmp_path):
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    url = "http://tracker.invalid/announce"
    root = make_files(tmp_path / "t" / "data", {"a.txt": b"tracked"})
    upload = instance.catalogue.create_upload(
        owner.account, UploadIn(dataset=dataset.slug), make_torrent(root, trackers=[url])
    )
    page = text_of(client.get(f"/uploads/{upload.infohash}", headers=HTML).text)
    assert url in page and "not yet asked" in page
    with instance.db.write() as s:
        s.add(
            SwarmTrackerState(
                upload_id=upload.id,
                url=url,
                last_scrape_at=utcnow(),
                failure_reason="torrent not registered with this tracker",
                error_kind="rejected",
            )
        )
    page = text_of(client.get(f"/uploads/{upload.infohash}", headers=HTML).text)
    assert "torrent not registered with this tracker" in page
    assert "not yet asked" not in page
