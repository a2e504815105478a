"""`db.on_commit`: other parts of the instance learn what each committed write changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.catalogue.schemas import DatasetEdit
from holdfast.instance import Instance
from tests.instance.helpers import make_dataset, make_upload, make_user, set_status


def test_listener_sees_rows_changed_by_committed_writes(instance: Instance, tmp_path: Path) -> None:
    seen: list[frozenset[tuple[str, int]]] = []
    instance.db.on_commit(seen.append)
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    assert any(("datasets", dataset.id) in changes for changes in seen)

    seen.clear()
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    assert any(("uploads", upload.id) in changes for changes in seen)

    seen.clear()
    instance.catalogue.edit_dataset(owner.account, dataset.slug, DatasetEdit(title="New title"))
    assert any(("datasets", dataset.id) in changes for changes in seen)

    seen.clear()
    set_status(instance, Upload, upload.id, Status.removed)
    # that write alone is one notification (other areas' listeners may write more)
    assert frozenset({("uploads", upload.id)}) in seen


def test_rolled_back_write_notifies_nobody(instance: Instance) -> None:
    seen: list[object] = []
    instance.db.on_commit(seen.append)
    owner = make_user(instance, "owner", Role.uploader)
    seen.clear()
    with pytest.raises(RuntimeError), instance.db.write() as s:
        s.add(Dataset(slug="never", title="Never", account_id=owner.account.id))
        s.flush()
        raise RuntimeError("abort")
    assert seen == []


def test_a_failing_listener_does_not_undo_the_write(instance: Instance) -> None:
    def broken(_changes: object) -> None:
        raise ValueError("listener bug")

    instance.db.on_commit(broken)
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    with instance.db.read() as s:
        assert s.get(Dataset, dataset.id) is not None


def test_a_listener_may_write(instance: Instance) -> None:
    writes: list[int] = []

    def follow_up(changes: frozenset[tuple[str, int]]) -> None:
        if any(table == "datasets" for table, _ in changes) and not writes:
            with instance.db.write() as s:
                writes.append(len(s.query(Dataset).all()))

    instance.db.on_commit(follow_up)
    owner = make_user(instance, "owner", Role.uploader)
    make_dataset(instance, owner)
    assert writes == [1]


def test_a_nested_write_fails_loudly_instead_of_hanging(instance: Instance) -> None:
    with (
        pytest.raises(RuntimeError, match="inside another"),
        instance.db.write(),
        instance.db.write(),
    ):
        pass
    # the outer failure released the lock: writing works again
    owner = make_user(instance, "owner", Role.uploader)
    assert owner.account.id
