"""`holdfast seed TORRENT DATA`: keep seeding a torrent from this machine.

DATA is the folder that holds the torrent's top-level file or folder (what
`holdfast publish` was given is `DATA/<name>`). The data is checked first, unless
resume data saved by an earlier run (`TORRENT.resume`) says it is complete; resume data
is saved again on exit. Runs until interrupted, or for `--duration` seconds.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
import libtorrent as lt

from holdfast.seeding.seeder import session_settings, torrent_params
from holdfast.torrents import TorrentError, parse_torrent

STATUS_EVERY = 5.0
# A seeder serves peers anywhere: every interface unless told otherwise.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


def _save_resume(session: Any, handle: Any, path: Path, timeout: float = 10.0) -> None:
    handle.save_resume_data(lt.save_resume_flags_t.save_info_dict)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.wait_for_alert(200)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.save_resume_data_alert):
                path.write_bytes(lt.write_resume_data_buf(alert.params))
                return
            if isinstance(alert, lt.save_resume_data_failed_alert):
                return


def seed_forever(
    torrent: bytes,
    save_path: Path,
    *,
    host: str = ALL_INTERFACES,
    port: int = 0,
    show: bool = True,
    duration: float | None = None,
    resume_path: Path | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Seed until `stop` is set, SIGINT/SIGTERM, or `duration` seconds; returns final stats."""
    pack: Any = session_settings(host=host, port=port)
    session = lt.session(pack)
    resume = None
    if resume_path is not None and resume_path.is_file():
        resume = resume_path.read_bytes()
    handle = session.add_torrent(torrent_params(torrent, save_path, resume))
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    click.echo(f"seeding on {host}:{session.listen_port()} from {save_path}", err=True)
    started = time.monotonic()
    last = 0.0
    try:
        while not stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            stop.wait(0.5)
            status = handle.status()
            if status.errc.value():
                raise click.ClickException(f"cannot seed: {status.errc.message()}")
            if show and time.monotonic() - last >= STATUS_EVERY:
                last = time.monotonic()
                click.echo(
                    f"{status.state} {status.progress * 100:.1f}%  peers {status.num_peers}  "
                    f"up {status.upload_rate / 1e6:.2f} MB/s  "
                    f"uploaded {status.all_time_upload / 1e6:.1f} MB",
                    err=True,
                )
        status = handle.status()
        if resume_path is not None:
            _save_resume(session, handle, resume_path)
        return {
            "state": str(status.state),
            "progress": float(status.progress),
            "uploaded": int(status.all_time_upload),
        }
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
        session.pause()


@click.command()
@click.argument("torrent_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default=ALL_INTERFACES, show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=6881, show_default=True, help="Port (0: any).")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--quiet", is_flag=True, help="No status lines.")
def seed(
    torrent_file: Path, data: Path, host: str, port: int, duration: float | None, quiet: bool
) -> None:
    """Seed TORRENT_FILE from DATA (the folder holding the torrent's file or folder)."""
    raw = torrent_file.read_bytes()
    try:
        torrent = parse_torrent(raw)
    except TorrentError as exc:
        raise click.ClickException(f"{torrent_file}: {exc.reason}") from None
    if not (data / torrent.name).exists():
        raise click.ClickException(f"{data / torrent.name} does not exist")
    result = seed_forever(
        raw,
        data,
        host=host,
        port=port,
        show=not quiet,
        duration=duration,
        resume_path=torrent_file.with_name(torrent_file.name + ".resume"),
    )
    click.echo(
        f"stopped: {result['state']}, {result['progress'] * 100:.1f}%, "
        f"uploaded {result['uploaded']} bytes"
    )
