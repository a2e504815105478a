"""An upload's seeding status, for the API and the upload page."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from holdfast.seeding.storage import upload_folder, upload_key

if TYPE_CHECKING:
    from holdfast.catalogue.models import Upload
    from holdfast.instance import Instance
    from holdfast.seeding.seeder import Seeder


@dataclass(frozen=True)
class SeedingStatus:
    """Whether and how the instance's own seeder seeds one upload.

    `state` is "off" (the instance does not seed), "no_data" (its data is not in the
    storage folder), "not_public" (waiting for approval), or libtorrent's state
    ("checking_files", "seeding", ...; "error" with `error` set).
    """

    seeding: bool
    state: str
    peers: int = 0
    seeds: int = 0
    upload_rate: int = 0
    download_rate: int = 0
    uploaded: int = 0
    downloaded: int = 0
    progress: float = 0.0
    ratio: float = 0.0
    error: str = ""
    webseed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seeding_status(instance: Instance, upload: Upload) -> SeedingStatus:
    """The seeding status of an upload the caller may already see (check access first)."""
    settings = instance.settings
    seeder: Seeder | None = instance.services.get("seeder")
    key = upload_key(upload.infohash_v1, upload.infohash_v2)
    has_data = (upload_folder(settings.resolved_storage_dir, key) / upload.name).exists()
    public = upload.status == "approved" and upload.dataset.status == "approved"
    webseed = settings.webseed and has_data and public
    if seeder is None:
        return SeedingStatus(False, "off", webseed=webseed)
    state = seeder.state(upload.id)
    if state is None:
        reason = "no_data" if not has_data else "not_public" if not public else "starting"
        return SeedingStatus(False, reason, webseed=webseed)
    return SeedingStatus(
        seeding=state.state == "seeding",
        state=state.state,
        peers=state.peers,
        seeds=state.seeds,
        upload_rate=state.upload_rate,
        download_rate=state.download_rate,
        uploaded=state.uploaded,
        downloaded=state.downloaded,
        progress=state.progress,
        ratio=state.ratio,
        error=state.error,
        webseed=webseed,
    )
