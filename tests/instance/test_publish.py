"""Publishing a new dataset with its torrent is one transaction."""

from __future__ import annotations

import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.schemas import DatasetIn, UploadIn
from holdfast.errors import Conflict
from tests.instance.helpers import make_user
from tests.instance.torrents import sample_torrent


def test_publish_creates_dataset_and_upload_together(instance, tmp_path):
    user = make_user(instance, "publisher", Role.uploader)
    data = sample_torrent(tmp_path, "both")
    torrent = instance.catalogue.check_torrent(user.account, data)
    upload = instance.catalogue.publish(
        user.account,
        UploadIn(dataset="ignored-until-created"),
        torrent,
        data,
        new_dataset=DatasetIn(title="Made together"),
    )
    assert upload.infohash == torrent.infohash
    assert instance.catalogue.get_dataset(None, "made-together").upload_count == 1


def test_a_refused_upload_leaves_no_new_dataset(instance, tmp_path):
    """The race the form cannot catch: the same torrent stored between check and publish."""
    first = make_user(instance, "first", Role.uploader)
    second = make_user(instance, "second", Role.uploader)
    data = sample_torrent(tmp_path, "raced")
    checked = instance.catalogue.check_torrent(second.account, data)  # passes: not stored yet
    instance.catalogue.publish(
        first.account, UploadIn(dataset="x"), checked, data, new_dataset=DatasetIn(title="Winner")
    )
    with pytest.raises(Conflict):
        instance.catalogue.publish(
            second.account,
            UploadIn(dataset="x"),
            checked,
            data,
            new_dataset=DatasetIn(title="Loser"),
        )
    assert instance.catalogue.list_datasets(None).total == 1
    assert [d.slug for d in instance.catalogue.list_datasets(None).items] == ["winner"]
    with pytest.raises(Conflict):
        instance.catalogue.check_torrent(second.account, data)
