"""transmission-cli downloading one torrent on 127.0.0.1 (v1 only; it ignores loopback
peers from trackers, so the seeder dials it)."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.torrents.clients import ManagedProcess, free_port


class Transmission:
    program = "transmission-cli"

    def __init__(self, torrent_file: Path, download_dir: Path, home: Path) -> None:
        self.port = free_port()
        download_dir.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        settings = {
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "peer-port": self.port,
            "peer-port-random-on-start": False,
        }
        (home / "settings.json").write_text(json.dumps(settings))
        self.process = ManagedProcess(
            [
                self.program,
                "-g", str(home),
                "-w", str(download_dir),
                "-p", str(self.port),
                "-D",  # no DHT
                "-er",  # prefer unencrypted
                str(torrent_file),
            ],
            log=home / "transmission.log",
            cwd=home,
        )  # fmt: skip

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
