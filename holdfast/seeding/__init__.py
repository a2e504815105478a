"""The instance's own seeder, its web seed, and checks of web seeds people submit.

Storage layout (one folder per upload, named by the upload's infohash: the v2 hash
when the torrent has one, else the v1 hash)::

    <storage_dir>/<infohash>/<torrent name>            single-file torrents
    <storage_dir>/<infohash>/<torrent name>/<path>     multi-file torrents
    <storage_dir>/.resume/<infohash>.resume            libtorrent resume data

`<storage_dir>/<infohash>` is libtorrent's save path, so the seeder, the web seed and
`holdfast publish` agree on where each file lives. Nothing is ever read or written
outside the upload's own folder: file paths come from the parsed torrent (cleaned as
libtorrent cleans them), and every resolved path, symlinks followed, is checked to
stay inside that folder.

    from holdfast.seeding import seeding_status
    status = seeding_status(instance, upload)    # for the upload page; None when off
"""

from __future__ import annotations

from holdfast.seeding.status import SeedingStatus, seeding_status

__all__ = ["SeedingStatus", "seeding_status"]
