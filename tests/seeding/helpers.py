"""Uploads whose data sits in an instance's storage folder, for seeding tests."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

from holdfast.catalogue.models import Upload
from holdfast.catalogue.schemas import UploadIn
from holdfast.instance import Instance
from holdfast.seeding.storage import upload_folder, upload_key
from holdfast.torrents import Torrent, create_torrent
from tests.instance.helpers import User

_n = itertools.count()


def make_data(root: Path, *, files: int = 3, size: int = 300_000, seed: str = "") -> Path:
    """A folder of `files` files of pseudo-random bytes (distinct for each `seed`)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        block = hashlib.sha256(f"{seed}/{i}".encode()).digest()
        data = (block * (size // 32 + 1))[: size + i * 1000]
        sub = root / ("sub" if i % 2 else "") / f"file{i}.bin"
        sub.parent.mkdir(parents=True, exist_ok=True)
        sub.write_bytes(data)
    return root


@dataclass
class Stored:
    upload: Upload
    torrent: Torrent
    data: bytes
    source: Path  # the folder (or file) the torrent was made from

    @property
    def key(self) -> str:
        return upload_key(self.upload.infohash_v1, self.upload.infohash_v2)


def stored_upload(
    instance: Instance,
    owner: User,
    dataset_slug: str,
    tmp: Path,
    *,
    version: str = "hybrid",
    files: int = 3,
    size: int = 300_000,
    store: bool = True,
    webseeds: tuple[str, ...] = (),
) -> Stored:
    """An upload (pending or approved as the owner's trust says) with its data stored."""
    n = next(_n)
    source = make_data(tmp / f"src{n}" / f"payload{n}", files=files, size=size, seed=str(n))
    if files == 1:
        single = next(p for p in source.rglob("*.bin"))
        source = single
    created = create_torrent(
        source,
        version=version,
        piece_length=32768,
        webseeds=webseeds,  # type: ignore[arg-type]
    )
    upload = instance.catalogue.create_upload(
        owner.account, UploadIn(dataset=dataset_slug), created.data
    )
    result = Stored(upload, created.torrent, created.data, source)
    if store:
        copy_into_storage(instance, result)
    return result


def copy_into_storage(instance: Instance, stored: Stored) -> Path:
    folder = upload_folder(instance.settings.resolved_storage_dir, stored.key)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / stored.torrent.name
    if stored.source.is_dir():
        shutil.copytree(stored.source, target)
    else:
        shutil.copy2(stored.source, target)
    return target
