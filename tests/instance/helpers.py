"""Helpers for instance tests: accounts with tokens, datasets and uploads in a given state."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from holdfast.accounts.models import Account, Role
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.catalogue.schemas import DatasetIn, UploadIn
from holdfast.instance import Instance
from tests.instance.torrents import sample_torrent

PASSWORD = "correct horse battery staple"
_counter = itertools.count()


@dataclass
class User:
    account: Account
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(instance: Instance, name: str, role: Role = Role.member) -> User:
    account = instance.accounts.register(
        name, PASSWORD, role=role, trusted=role.at_least(Role.uploader)
    )
    _row, token = instance.accounts.create_token(account, "test")
    return User(account, token)


def set_status(instance: Instance, model: Any, item_id: int, status: Status) -> None:
    with instance.db.write() as s:
        item = s.get(model, item_id)
        item.status = status.value


def make_dataset(
    instance: Instance, owner: User, *, status: Status = Status.approved, **fields: Any
) -> Dataset:
    n = next(_counter)
    data = {"title": f"Dataset {n}", "slug": f"dataset-{n}", "tags": ["climate"]} | fields
    dataset = instance.catalogue.create_dataset(owner.account, DatasetIn(**data))
    set_status(instance, Dataset, dataset.id, status)
    dataset.status = status.value
    return dataset


def make_upload(
    instance: Instance,
    owner: User,
    dataset_slug: str,
    tmp: Path,
    *,
    status: Status = Status.approved,
    version: str = "hybrid",
) -> Upload:
    n = next(_counter)
    data = sample_torrent(tmp, f"upload{n}", version=version, seed=str(n))
    with instance.db.write() as s:
        ds = s.query(Dataset).filter_by(slug=dataset_slug).one()
        previous = ds.status
        ds.status = Status.approved.value
    upload = instance.catalogue.create_upload(owner.account, UploadIn(dataset=dataset_slug), data)
    with instance.db.write() as s:
        s.query(Dataset).filter_by(slug=dataset_slug).one().status = previous
    set_status(instance, Upload, upload.id, status)
    return upload
