"""Real BitTorrent peers on 127.0.0.1 for tests: a libtorrent session, qbittorrent-nox, aria2c.

Every peer binds to loopback only, with DHT, local peer discovery, UPnP,
NAT-PMP and uTP off (uTP on loopback is slow), and accepts several
connections from the same IP (every peer is 127.0.0.1). Processes are started
in their own session, their PIDs are recorded, and ``stop()`` ends exactly
those PIDs: terminate, wait, then kill.

Typical use::

    with LibtorrentSession() as seeder, QBittorrent(tmp_path / "qbt") as qbt:
        seeder.add(torrent_bytes, save_path=data_parent)
        seeder.wait_seeding()
        qbt.add(torrent_bytes, save_path=tmp_path / "down")
        qbt.add_peer(qbt_hash, seeder.port)
        seeder.connect(torrent_bytes, qbt.port)
        qbt.wait_complete(qbt_hash)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import libtorrent as lt

__all__ = [
    "Aria2",
    "ClientError",
    "LibtorrentSession",
    "ManagedProcess",
    "QBittorrent",
    "free_port",
    "have",
    "wait_until",
]


class ClientError(Exception):
    """A test peer did not start or did not do what it was asked in time."""


def have(program: str) -> bool:
    return shutil.which(program) is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise ClientError(f"timed out after {timeout:.0f}s waiting for {what}")


def _torrent_info(data: bytes) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return lt.torrent_info(data)


class ManagedProcess:
    """A child process whose PID we own and stop ourselves."""

    def __init__(self, args: list[str], *, log: Path, cwd: Path | None = None) -> None:
        self.args = args
        self.log = log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        if self.proc is None:
            raise ClientError("process was never started")
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClientError(f"{self.args[0]} still running after {timeout:.0f}s") from None

    def stop(self, grace: float = 5.0) -> None:
        """Terminate our PID (and only it), then kill it if it lingers."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- libtorrent -------------------------------------------------------------------


LOOPBACK_SETTINGS: dict[str, Any] = {
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "announce_to_all_trackers": True,
    "alert_mask": 0,
}


class LibtorrentSession:
    """A libtorrent session listening on 127.0.0.1 (a seeder or a downloader)."""

    def __init__(self, port: int = 0, **settings: Any) -> None:
        pack = {
            **LOOPBACK_SETTINGS,
            "listen_interfaces": f"127.0.0.1:{port}",
            "outgoing_interfaces": "127.0.0.1",
            **settings,
        }
        self.session = lt.session(pack)
        self.handles: list[Any] = []

    @property
    def port(self) -> int:
        return int(self.session.listen_port())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for h in self.handles:
            with contextlib.suppress(RuntimeError):
                self.session.remove_torrent(h)
        self.handles.clear()
        self.session.pause()

    def add(self, torrent: bytes, save_path: Path, *, seed_mode: bool = False) -> Any:
        """Add a torrent whose data is (or will be) under ``save_path``."""
        params = lt.add_torrent_params()
        params.ti = _torrent_info(torrent)
        params.save_path = str(save_path)
        if seed_mode:
            params.flags |= lt.torrent_flags.seed_mode
        handle = self.session.add_torrent(params)
        self.handles.append(handle)
        return handle

    def handle_for(self, torrent: bytes) -> Any:
        hashes = _torrent_info(torrent).info_hashes()
        for h in self.handles:
            if h.info_hashes() == hashes:
                return h
        raise ClientError("torrent not added to this session")

    def wait_seeding(self, torrent: bytes | None = None, timeout: float = 60) -> None:
        """Wait until the torrent's data has been checked and is complete."""
        handles = [self.handle_for(torrent)] if torrent is not None else list(self.handles)

        def done() -> bool:
            for h in handles:
                status = h.status()
                if status.errc.value():
                    raise ClientError(f"libtorrent: {status.errc.message()}")
                if not status.is_seeding:
                    return False
            return True

        wait_until(done, timeout, "libtorrent to check and seed its data")

    def connect(self, torrent: bytes, port: int) -> None:
        """Dial a peer on 127.0.0.1 for this torrent (no tracker needed)."""
        self.handle_for(torrent).connect_peer(("127.0.0.1", port))

    def wait_complete(self, torrent: bytes, timeout: float = 120) -> None:
        handle = self.handle_for(torrent)
        wait_until(lambda: handle.status().is_seeding, timeout, "libtorrent download")


# -- qBittorrent -------------------------------------------------------------------


_QBT_CONF = """\
[LegalNotice]
Accepted=true

[Preferences]
WebUI\\Address=127.0.0.1
WebUI\\Port={webui_port}
WebUI\\LocalHostAuth=false
WebUI\\AuthSubnetWhitelistEnabled=true
WebUI\\AuthSubnetWhitelist=127.0.0.1/32
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\ClickjackingProtection=false
Connection\\UPnP=false
General\\Locale=en

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\InterfaceAddress=127.0.0.1
Session\\Port={port}
Session\\BTProtocol=TCP
Session\\QueueingSystemEnabled=false
"""

_QBT_PREFERENCES: dict[str, Any] = {
    "dht": False,
    "pex": False,
    "lsd": False,
    "upnp": False,
    "bittorrent_protocol": 1,  # TCP only
    "current_network_interface": "lo",
    "current_interface_address": "127.0.0.1",
    "enable_multi_connections_from_same_ip": True,
    "queueing_enabled": False,
    "anonymous_mode": False,
}


class QBittorrent:
    """qbittorrent-nox with its own profile, Web UI and BitTorrent port on 127.0.0.1."""

    program = "qbittorrent-nox"

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.port = free_port()
        self.webui_port = free_port()
        self.url = f"http://127.0.0.1:{self.webui_port}"
        self.process = ManagedProcess(
            [
                self.program,
                f"--profile={profile}",
                f"--webui-port={self.webui_port}",
                f"--torrenting-port={self.port}",
            ],
            log=profile / "qbittorrent.log",
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> None:
        config = self.profile / "qBittorrent" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "qBittorrent.conf").write_text(
            _QBT_CONF.format(webui_port=self.webui_port, port=self.port)
        )
        self.process.start()

        def up() -> bool:
            if not self.process.running():
                raise ClientError(f"qbittorrent-nox exited:\n{self.process.tail()}")
            try:
                return self.http.get("/api/v2/app/version").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout, "qbittorrent-nox Web UI")
        # Without multi-connections from one IP, a stale 127.0.0.1 peer entry hides the seeder.
        self._post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {**_QBT_PREFERENCES, "listen_port": self.port}
        )})  # fmt: skip

    def stop(self) -> None:
        self.http.close()
        self.process.stop()

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.post(path, **kwargs)
        if response.status_code != 200:
            raise ClientError(f"qBittorrent {path}: {response.status_code} {response.text}")
        return response

    def preferences(self) -> dict[str, Any]:
        return dict(self.http.get("/api/v2/app/preferences").json())

    def add(self, torrent: bytes, save_path: Path) -> None:
        save_path.mkdir(parents=True, exist_ok=True)
        self._post(
            "/api/v2/torrents/add",
            files={"torrents": ("t.torrent", torrent, "application/x-bittorrent")},
            data={"savepath": str(save_path), "paused": "false"},
        )

    def info(self, qbt_hash: str) -> dict[str, Any] | None:
        rows = self.http.get("/api/v2/torrents/info", params={"hashes": qbt_hash}).json()
        return dict(rows[0]) if rows else None

    def wait_added(self, qbt_hash: str, timeout: float = 30) -> None:
        wait_until(lambda: self.info(qbt_hash) is not None, timeout, "qBittorrent to add it")

    def add_peer(self, qbt_hash: str, port: int) -> None:
        self._post(
            "/api/v2/torrents/addPeers", data={"hashes": qbt_hash, "peers": f"127.0.0.1:{port}"}
        )

    def wait_complete(
        self, qbt_hash: str, timeout: float = 120, poke: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Wait for progress 1.0; ``poke`` is called now and then (e.g. to re-dial a seeder)."""
        last_poke = 0.0
        state: dict[str, Any] = {}

        def complete() -> bool:
            nonlocal last_poke, state
            row = self.info(qbt_hash)
            if row is None:
                return False
            state = row
            if row.get("state") in ("error", "missingFiles"):
                raise ClientError(f"qBittorrent: {row.get('state')}")
            if poke is not None and time.monotonic() - last_poke > 3:
                last_poke = time.monotonic()
                poke()
            return float(row.get("progress", 0)) >= 1.0

        try:
            wait_until(complete, timeout, "qBittorrent download", interval=0.25)
        except ClientError as exc:
            raise ClientError(f"{exc}; last state {state}") from None
        return state


# -- aria2 --------------------------------------------------------------------------


class Aria2:
    """aria2c downloading one torrent into a folder, listening on 127.0.0.1."""

    program = "aria2c"

    def __init__(self, torrent_file: Path, download_dir: Path) -> None:
        self.port = free_port()
        download_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            [
                self.program,
                f"--dir={download_dir}",
                "--interface=127.0.0.1",
                "--disable-ipv6=true",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                f"--listen-port={self.port}",
                "--seed-time=0",
                "--file-allocation=none",
                "--bt-stop-timeout=60",
                "--summary-interval=0",
                "--console-log-level=warn",
                str(torrent_file),
            ],
            log=download_dir.parent / f"aria2-{self.port}.log",
        )

    def __enter__(self) -> Self:
        self.process.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.process.stop()

    def listening(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def wait_done(self, timeout: float = 120, poke: Callable[[], None] | None = None) -> None:
        """Wait until aria2c has the whole torrent and exits with status 0."""
        deadline = time.monotonic() + timeout
        last_poke = 0.0
        while time.monotonic() < deadline:
            code = self.process.proc.poll() if self.process.proc else None
            if code is not None:
                if code != 0:
                    raise ClientError(f"aria2c exited with {code}:\n{self.process.tail()}")
                return
            if poke is not None and time.monotonic() - last_poke > 3:
                last_poke = time.monotonic()
                poke()
            time.sleep(0.2)
        raise ClientError(f"aria2c did not finish in {timeout:.0f}s:\n{self.process.tail()}")
