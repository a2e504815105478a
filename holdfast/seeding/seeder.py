"""The instance's seeder: one libtorrent session seeding every public upload it holds.

An upload is seeded when it and its dataset are approved and its data folder
(`<storage>/<infohash>/<torrent name>`, see holdfast.seeding) exists. The seeder learns
about approvals and removals from the database's commit listener and also rescans the
catalogue now and then, so data copied into the storage folder by hand is picked up.

Resume data is written to `<storage>/.resume/<infohash>.resume` once a torrent's data
has been checked, now and then while it seeds, and when the seeder stops; a restart
then goes straight to seeding without hashing the data again. A removed upload stops
being seeded at once and its resume data is deleted (its data is left in place).

All libtorrent work happens on one background thread; other threads only queue
requests and read status.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libtorrent as lt
from sqlalchemy import select
from sqlalchemy.orm import aliased

from holdfast.arrays.sockets import set_nodelay
from holdfast.catalogue.models import Dataset, Status, TorrentBlob, Upload
from holdfast.db import Changes, Database
from holdfast.seeding.storage import resume_file, upload_folder, upload_key
from holdfast.settings import Settings

log = logging.getLogger("holdfast.seeding")

RESCAN_SECONDS = 60.0
SAVE_RESUME_SECONDS = 300.0
STOP_SAVE_TIMEOUT = 10.0
_WATCHED_TABLES = frozenset({"uploads", "datasets", "torrent_blobs"})
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def session_settings(
    *,
    host: str,
    port: int,
    max_connections: int = 200,
    upload_rate: int = 0,
    download_rate: int = 0,
) -> dict[str, Any]:
    """A libtorrent settings pack for a seeder listening on `host:port`.

    On a loopback address DHT, local peer discovery, UPnP, NAT-PMP and uTP are off
    (uTP on loopback is ~10x slower) and only TCP to 127.0.0.1 is used. Elsewhere the
    DHT and uTP stay on; UPnP, NAT-PMP and local discovery are off (a server has no
    router to ask and no LAN to announce to). Every peer may share one IP (NAT, tests).

    Tuned for readers that fetch a few pieces at a time (holdfast.open_zarr): a
    reader with nothing left to want counts as finished, and libtorrent would drop
    that "redundant" connection, so its next slice would wait for a new connection;
    and every interested peer is unchoked at once (no unchoke slots to wait for: the
    connection limit and the upload rate limit bound the load). TCP_NODELAY on the
    peer connections is set by the Seeder as they connect (libtorrent has no setting
    for it); without it a sharded first slice took ~900 ms instead of ~230 ms and
    random chunk reads ran at a quarter of the rate (benchmarks/arrays.py). A shorter
    tick interval made no difference.
    """
    loopback = host in _LOOPBACK_HOSTS
    listen_host = f"[{host}]" if ":" in host else host
    pack: dict[str, Any] = {
        "listen_interfaces": f"{listen_host}:{port}",
        "enable_dht": not loopback,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": not loopback,
        "enable_incoming_utp": not loopback,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "connections_limit": max_connections,
        "upload_rate_limit": upload_rate,
        "download_rate_limit": download_rate,
        "stop_tracker_timeout": 1,
        "close_redundant_connections": False,
        "unchoke_slots_limit": -1,
        "alert_mask": lt.alert_category.error
        | lt.alert_category.status
        | lt.alert_category.storage
        | lt.alert_category.connect  # peer_connect_alert: outgoing connections
        | lt.alert_category.peer,  # incoming_connection_alert: accepted ones
        "user_agent": "holdfast",
    }
    if loopback:
        pack["outgoing_interfaces"] = host
    return pack


def torrent_params(torrent: bytes, save_path: Path, resume: bytes | None = None) -> Any:
    """add_torrent_params for a torrent; from its resume data when that matches it."""
    fresh = lt.load_torrent_buffer(torrent)
    info = fresh.ti
    if info is None:  # pragma: no cover - a buffer always yields its torrent_info
        raise RuntimeError("torrent without metadata")
    params = fresh
    if resume is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                loaded = lt.read_resume_data(resume)
            hashes = info.info_hashes()
            if str(loaded.info_hashes.v1) == str(hashes.v1) and str(loaded.info_hashes.v2) == str(
                hashes.v2
            ):
                loaded.ti = info
                params = loaded
        except RuntimeError:
            log.warning("ignoring unreadable resume data for %s", save_path.name)
    params.save_path = str(save_path)
    # Every upload seeds at once; auto-management would keep only a few active.
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    return params


@dataclass
class Entry:
    upload_id: int
    key: str
    total_size: int
    handle: Any
    added_at: float = field(default_factory=time.monotonic)
    checked: bool = False  # went through a full hash check since it was added
    states: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class TorrentState:
    """What the seeder knows about one upload right now."""

    state: str  # libtorrent's state ("seeding", "checking_files", ...) or "error"
    peers: int
    seeds: int
    upload_rate: int  # bytes per second
    download_rate: int
    uploaded: int  # bytes, all time (kept in resume data)
    downloaded: int
    progress: float
    ratio: float  # uploaded / size
    error: str
    rechecked: bool  # its data was hashed in full since the seeder started it


class Seeder:
    """One libtorrent session for one instance. Start with `start()`, end with `stop()`."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.storage = settings.resolved_storage_dir
        self.session: Any = None
        self._entries: dict[int, Entry] = {}
        self._by_handle: dict[Any, Entry] = {}
        self._lock = threading.Lock()
        self._alerts_lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending_saves = 0
        self._synced = threading.Event()

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        (self.storage / ".resume").mkdir(exist_ok=True)
        s = self.settings
        pack: Any = session_settings(
            host=s.host,
            port=s.seeder_port,
            max_connections=s.seeder_max_connections,
            upload_rate=s.seeder_upload_rate,
            download_rate=s.seeder_download_rate,
        )
        self.session = lt.session(pack)
        self.db.on_commit(self.on_commit)
        self._requests.put(("sync", None))
        self._thread = threading.Thread(target=self._run, name="holdfast-seeder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Save resume data for every torrent, then close the session."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            # Alerts are only valid until the next pop: popping them here while the
            # seeder thread still handles its own batch could crash the process.
            # Leave the session to that thread (a daemon) rather than race it.
            log.warning("seeder thread did not stop within 30 s; its session is left open")
            self._thread = None
            return
        self._thread = None
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            self._save_resume(entry)
        deadline = time.monotonic() + STOP_SAVE_TIMEOUT
        while self._pending_saves > 0 and time.monotonic() < deadline:
            self.session.wait_for_alert(200)
            self._handle_alerts()
        self.session.pause()
        with self._lock:
            for entry in entries:
                with contextlib.suppress(RuntimeError):
                    self.session.remove_torrent(entry.handle)
            self._entries.clear()
            self._by_handle.clear()
        self.session = None

    @property
    def port(self) -> int:
        return int(self.session.listen_port()) if self.session is not None else 0

    # -- requests from other threads ------------------------------------------------

    def on_commit(self, changes: Changes) -> None:
        """Database commit listener: re-check the uploads a transaction touched."""
        uploads = [i for t, i in changes if t in ("uploads", "torrent_blobs")]
        datasets = [i for t, i in changes if t == "datasets"]
        if uploads:
            self._requests.put(("uploads", uploads))
        if datasets:
            self._requests.put(("datasets", datasets))

    def rescan(self) -> None:
        """Look at every upload again (data copied into the storage folder by hand)."""
        self._requests.put(("sync", None))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every request queued so far has been handled (for tests, tools)."""
        done = threading.Event()
        self._requests.put(("mark", done))
        return done.wait(timeout)

    def state(self, upload_id: int) -> TorrentState | None:
        """The upload's torrent state, or None when it is not being seeded."""
        with self._lock:
            entry = self._entries.get(upload_id)
        if entry is None:
            return None
        status = entry.handle.status()
        # The alerts libtorrent posted up to this status (a full check among them) are
        # handled before `rechecked` is read, so the two agree.
        self._handle_alerts()
        error = status.errc.message() if status.errc.value() else ""
        uploaded = int(status.all_time_upload)
        return TorrentState(
            state="error" if error else str(status.state),
            peers=int(status.num_peers),
            seeds=int(status.num_seeds),
            upload_rate=int(status.upload_rate),
            download_rate=int(status.download_rate),
            uploaded=uploaded,
            downloaded=int(status.all_time_download),
            progress=float(status.progress),
            ratio=uploaded / entry.total_size if entry.total_size else 0.0,
            error=error,
            rechecked=entry.checked,
        )

    def handle(self, upload_id: int) -> Any:
        with self._lock:
            entry = self._entries.get(upload_id)
        return None if entry is None else entry.handle

    def seeding(self) -> set[int]:
        with self._lock:
            return set(self._entries)

    def connect_peer(self, upload_id: int, host: str, port: int) -> bool:
        """Dial a peer for an upload (a client that ignores loopback peers from trackers)."""
        handle = self.handle(upload_id)
        if handle is None:
            return False
        handle.connect_peer((host, port))
        return True

    # -- the seeder thread -----------------------------------------------------------

    def _run(self) -> None:
        last_scan = time.monotonic()
        last_save = time.monotonic()
        while not self._stopping.is_set():
            self.session.wait_for_alert(250)
            try:
                self._handle_alerts()
                self._handle_requests()
                now = time.monotonic()
                if now - last_scan > RESCAN_SECONDS:
                    last_scan = now
                    self._sync_all()
                if now - last_save > SAVE_RESUME_SECONDS:
                    last_save = now
                    with self._lock:
                        entries = list(self._entries.values())
                    for entry in entries:
                        if entry.handle.need_save_resume_data():
                            self._save_resume(entry)
            except Exception:  # the seeder must outlive one bad upload or a DB hiccup
                log.exception("seeder loop")
                time.sleep(1)

    def _handle_requests(self) -> None:
        while True:
            try:
                kind, value = self._requests.get_nowait()
            except queue.Empty:
                return
            if kind == "sync":
                self._sync_all()
            elif kind == "uploads":
                self._sync(select(Upload.id).where(Upload.id.in_(value)), value)
            elif kind == "datasets":
                ids = select(Upload.id).where(Upload.dataset_id.in_(value))
                self._sync(ids, None)
            elif kind == "mark":
                value.set()

    def _public_uploads(self) -> Any:
        ds = aliased(Dataset)
        return (
            select(Upload.id, Upload.infohash_v1, Upload.infohash_v2, Upload.name)
            .join(ds, ds.id == Upload.dataset_id)
            .where(Upload.status == Status.approved.value, ds.status == Status.approved.value)
        )

    def _sync_all(self) -> None:
        with self.db.read() as s:
            rows = s.execute(self._public_uploads()).all()
        wanted = {r.id: r for r in rows if self._has_data(r)}
        with self._lock:
            current = set(self._entries)
        for upload_id in current - set(wanted):
            self._remove(upload_id)
        for upload_id in set(wanted) - current:
            self._add(upload_id, wanted[upload_id])

    def _sync(self, ids_query: Any, ids: list[int] | None) -> None:
        with self.db.read() as s:
            candidates = set(s.scalars(ids_query).all())
            rows = s.execute(self._public_uploads().where(Upload.id.in_(candidates))).all()
        wanted = {r.id: r for r in rows if self._has_data(r)}
        with self._lock:
            current = set(self._entries)
        # Uploads gone from the database (deleted rows) stop too.
        for upload_id in (candidates | set(ids or ())) & current - set(wanted):
            self._remove(upload_id)
        for upload_id in set(wanted) - current:
            self._add(upload_id, wanted[upload_id])

    def _has_data(self, row: Any) -> bool:
        key = upload_key(row.infohash_v1, row.infohash_v2)
        folder = upload_folder(self.storage, key)
        return (folder / row.name).exists() if row.name and "/" not in row.name else False

    def _add(self, upload_id: int, row: Any) -> None:
        with self.db.read() as s:
            data = s.scalar(select(TorrentBlob.data).where(TorrentBlob.upload_id == upload_id))
            size = s.scalar(select(Upload.total_size).where(Upload.id == upload_id))
        if data is None:
            return
        key = upload_key(row.infohash_v1, row.infohash_v2)
        resume_path = resume_file(self.storage, key)
        try:
            resume = resume_path.read_bytes()
        except OSError:
            resume = None
        try:
            params = torrent_params(data, upload_folder(self.storage, key), resume)
            handle = self.session.add_torrent(params)
        except RuntimeError as exc:
            log.warning("cannot seed upload %s: %s", key, exc)
            return
        entry = Entry(upload_id, key, int(size or 0), handle)
        with self._lock:
            self._entries[upload_id] = entry
            self._by_handle[handle] = entry
        log.info("seeding %s (%s)", key, "resumed" if resume else "checking")

    def _remove(self, upload_id: int) -> None:
        with self._lock:
            entry = self._entries.pop(upload_id, None)
            if entry is not None:
                self._by_handle.pop(entry.handle, None)
        if entry is None:
            return
        with contextlib.suppress(RuntimeError):
            self.session.remove_torrent(entry.handle)
        resume_file(self.storage, entry.key).unlink(missing_ok=True)
        log.info("stopped seeding %s", entry.key)

    def _save_resume(self, entry: Entry) -> None:
        try:
            entry.handle.save_resume_data(lt.save_resume_flags_t.save_info_dict)
        except RuntimeError:
            return
        self._pending_saves += 1

    def _handle_alerts(self) -> None:
        with self._alerts_lock:  # the seeder thread and `state` both handle alerts
            self._handle_alerts_locked()

    def _handle_alerts_locked(self) -> None:
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.save_resume_data_alert):
                self._pending_saves -= 1
                with self._lock:
                    entry = self._by_handle.get(alert.handle)
                if entry is not None:
                    self._write_resume(entry, lt.write_resume_data_buf(alert.params))
            elif isinstance(alert, lt.save_resume_data_failed_alert):
                self._pending_saves -= 1
            elif isinstance(alert, lt.state_changed_alert):
                with self._lock:
                    entry = self._by_handle.get(alert.handle)
                if entry is not None:
                    entry.states.add(str(alert.state))
                    if alert.state == lt.torrent_status.checking_files:
                        entry.checked = True
            elif isinstance(alert, lt.torrent_checked_alert):
                with self._lock:
                    entry = self._by_handle.get(alert.handle)
                if entry is not None:
                    self._save_resume(entry)
            elif isinstance(alert, (lt.peer_connect_alert, lt.incoming_connection_alert)):
                self._nodelay(alert)
            elif isinstance(alert, (lt.file_error_alert, lt.torrent_error_alert)):
                log.warning("seeder: %s", alert.message())

    def _nodelay(self, alert: Any) -> None:
        """TCP_NODELAY on a new peer connection: a reader's request, and the seeder's
        unchoke after its choke, must not wait for the other side's delayed ACK."""
        try:
            host, port = alert.endpoint[0], alert.endpoint[1]
        except (AttributeError, IndexError, TypeError):  # pragma: no cover - bindings
            return
        set_nodelay({(str(host), int(port))})

    def _write_resume(self, entry: Entry, data: bytes) -> None:
        with self._lock:
            if entry.upload_id not in self._entries:
                return  # removed meanwhile: its resume data must not come back
        path = resume_file(self.storage, entry.key)
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write resume data %s: %s", path, exc)
