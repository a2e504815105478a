"""`holdfast torrent`: create, inspect and verify torrents."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from holdfast.torrents import Torrent, TorrentError, create_torrent, parse_torrent
from holdfast.torrents.verify import verify_data

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``16K``, ``4MiB``, ``1m``, ``262144`` -> bytes."""
    m = _SIZE.match(text)
    if m is None:
        raise click.BadParameter(f"{text!r} is not a size (try 256K, 4M or 1MiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar (bytes, rate, ETA) on stderr, fed by a progress callback."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _fail(exc: TorrentError) -> click.ClickException:
    return click.ClickException(exc.reason)


def _read_torrent(path: Path, strict: bool = False) -> Torrent:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_torrent(data, strict=strict)
    except TorrentError as exc:
        raise click.ClickException(f"{path}: {exc.reason}") from None


@click.group()
def torrent() -> None:
    """Create, inspect and verify v1, v2 and hybrid torrents."""


@torrent.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the .torrent (default: NAME.torrent here).",
)
@click.option("--v1", "version", flag_value="v1", help="A v1 torrent (BEP 3).")
@click.option("--v2", "version", flag_value="v2", help="A v2 torrent (BEP 52).")
@click.option(
    "--hybrid",
    "version",
    flag_value="hybrid",
    default=True,
    help="A hybrid v1+v2 torrent (the default).",
)
@click.option(
    "--piece-size",
    "piece_size",
    metavar="SIZE",
    help="Piece size, a power of two of at least 16K (e.g. 1M). Default: chosen from file sizes.",
)
@click.option(
    "--align",
    type=click.Choice(["zarr"]),
    help="Choose pieces so each zarr chunk or shard file is whole pieces.",
)
@click.option(
    "--tracker",
    "trackers",
    multiple=True,
    metavar="URL",
    help="Announce URL; repeat for more tiers.",
)
@click.option(
    "--webseed", "webseeds", multiple=True, metavar="URL", help="Web seed URL (BEP 19); repeatable."
)
@click.option("--comment", help="A comment stored in the torrent.")
@click.option("--private", is_flag=True, help="Mark the torrent private (no DHT or peer exchange).")
@click.option(
    "--include-junk",
    is_flag=True,
    help="Keep .DS_Store, Thumbs.db, editor swap files and the like.",
)
@click.option("--threads", type=click.IntRange(min=1), help="Hashing threads (default: all cores).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def create(
    path: Path,
    output: Path | None,
    version: str,
    piece_size: str | None,
    align: str | None,
    trackers: tuple[str, ...],
    webseeds: tuple[str, ...],
    comment: str | None,
    private: bool,
    include_junk: bool,
    threads: int | None,
    force: bool,
    quiet: bool,
) -> None:
    """Make a torrent of the file or folder PATH."""
    piece_length = parse_size(piece_size) if piece_size else None
    name = path.resolve().name
    target = output or Path(f"{name}.torrent")
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; use --force to replace it")
    try:
        with _progress("hashing", enabled=not quiet) as progress:
            created = create_torrent(
                path,
                version=version,  # type: ignore[arg-type]
                piece_length=piece_length,
                align=align,  # type: ignore[arg-type]
                trackers=list(trackers),
                webseeds=list(webseeds),
                comment=comment,
                private=private,
                include_junk=include_junk,
                threads=threads,
                progress=progress,
            )
    except TorrentError as exc:
        raise _fail(exc) from None
    _write_atomically(target, created.data)
    t = created.torrent
    click.echo(f"wrote {target}")
    click.echo(
        f"  {t.version}, {t.file_count} files, {human_size(t.total_size)}, "
        f"{t.num_pieces} pieces of {human_size(t.piece_length)}"
    )
    if t.infohash_v1:
        click.echo(f"  infohash v1: {t.infohash_v1}")
    if t.infohash_v2:
        click.echo(f"  infohash v2: {t.infohash_v2}")
    click.echo(f"  {t.magnet()}")


def _write_atomically(target: Path, data: bytes) -> None:
    folder = target.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=".torrent-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def torrent_summary(t: Torrent) -> dict[str, Any]:
    """Everything `inspect --json` prints."""
    return {
        "name": t.name,
        "version": t.version,
        "infohash_v1": t.infohash_v1,
        "infohash_v2": t.infohash_v2,
        "infohash_v2_truncated": t.infohash_v2_truncated,
        "piece_length": t.piece_length,
        "num_pieces": t.num_pieces,
        "total_size": t.total_size,
        "file_count": t.file_count,
        "private": t.private,
        "trackers": t.trackers,
        "webseeds": t.webseeds,
        "comment": t.comment,
        "created_by": t.created_by,
        "creation_date": t.creation_date,
        "similar": t.similar,
        "collections": t.collections,
        "magnet": t.magnet(),
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "offset": f.offset,
                "pieces_root": f.pieces_root.hex() if f.pieces_root else None,
                "attr": f.attr,
            }
            for f in t.files
        ],
    }


@torrent.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@click.option("--strict", is_flag=True, help="Refuse bencoding that is not canonical.")
@click.option(
    "--files", "max_files", type=int, default=20, show_default=True, help="Files to list (0: all)."
)
def inspect(file: Path, as_json: bool, strict: bool, max_files: int) -> None:
    """Show what the torrent FILE holds."""
    t = _read_torrent(file, strict=strict)
    if as_json:
        click.echo(json.dumps(torrent_summary(t), indent=2))
        return
    console = Console()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    date = (
        dt.datetime.fromtimestamp(t.creation_date, dt.UTC).isoformat()
        if t.creation_date is not None
        else None
    )
    rows: list[tuple[str, str | None]] = [
        ("name", t.name),
        ("version", t.version),
        ("infohash v1", t.infohash_v1),
        ("infohash v2", t.infohash_v2),
        ("pieces", f"{t.num_pieces} of {human_size(t.piece_length)}"),
        ("size", f"{human_size(t.total_size)} ({t.total_size} bytes) in {t.file_count} files"),
        ("private", "yes" if t.private else "no"),
        ("trackers", "\n".join(" | ".join(tier) for tier in t.trackers) or None),
        ("web seeds", "\n".join(t.webseeds) or None),
        ("comment", t.comment),
        ("created by", t.created_by),
        ("created", date),
        ("magnet", t.magnet()),
    ]
    for label, value in rows:
        if value is not None:
            table.add_row(label, value)
    console.print(table)
    files = Table("size", "path", box=None)
    shown = t.files if max_files <= 0 else t.files[:max_files]
    for f in shown:
        files.add_row(human_size(f.size), f.path + (f" [{f.attr}]" if f.attr else ""))
    console.print(files)
    if len(shown) < t.file_count:
        console.print(f"... and {t.file_count - len(shown)} more files (--files 0 lists all)")


@torrent.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data_path", type=click.Path(exists=True, path_type=Path))
@click.option("--threads", type=click.IntRange(min=1), help="Hashing threads (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def verify(file: Path, data_path: Path, threads: int | None, quiet: bool) -> None:
    """Check the data at DATA_PATH against the torrent FILE.

    DATA_PATH is the folder holding the torrent's content (or the content
    itself). Exits with status 1 and names the bad pieces and files if any
    byte differs.
    """
    t = _read_torrent(file)
    try:
        with _progress("verifying", enabled=not quiet) as progress:
            result = verify_data(t, data_path, threads=threads, progress=progress)
    except TorrentError as exc:
        raise _fail(exc) from None
    if result.ok:
        click.echo(f"ok: {t.file_count} files, {human_size(t.total_size)} match {t.infohash}")
        return
    for path in result.missing_files:
        click.echo(f"missing or wrong size: {path}")
    for path in result.bad_files:
        if path not in result.missing_files:
            click.echo(f"bad data: {path}")
    if result.bad_pieces:
        click.echo(f"bad pieces ({len(result.bad_pieces)}): {_ranges(result.bad_pieces)}")
    raise SystemExit(1)


def _ranges(numbers: list[int]) -> str:
    spans: list[list[int]] = []
    for n in numbers:
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
