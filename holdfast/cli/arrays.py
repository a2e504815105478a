"""`holdfast arrays`: look inside published arrays and read slices of them.

    holdfast arrays info SOURCE [PATH]
    holdfast arrays get SOURCE PATH --slice "0:10, :, :" -o out.npy

SOURCE is a .torrent file, its URL, or an instance upload URL. `info` reads metadata
only (zarr.json documents, .npy headers); `get` fetches only the pieces holding the
chunks of the slice. Pieces come from BitTorrent peers (the torrent's trackers, a
magnet's peers, --peer) with the torrent's web seeds as fallback, or from web seeds only.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import click

from holdfast.arrays.errors import EXTRA_HINT

_REQUIRED = ("numpy", "zarr", "numcodecs", "fsspec", "numpydantic", "jsonschema")


def _missing_extra() -> list[str]:
    missing = []
    for name in _REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


@click.group(invoke_without_command=True)
@click.pass_context
def arrays(ctx: click.Context) -> None:
    """Read arrays of published datasets: shapes without downloading, slices on demand."""
    missing = _missing_extra()
    if missing:
        raise click.ClickException(
            f"holdfast arrays needs {', '.join(missing)}, from the arrays extra; {EXTRA_HINT}"
        )
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _peer(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _source_options(func: Any) -> Any:
    func = click.option(
        "--webseed",
        "webseeds",
        multiple=True,
        metavar="URL",
        help="Read from this web seed instead of the torrent's own (repeatable).",
    )(func)
    func = click.option(
        "--peer",
        "peers",
        multiple=True,
        metavar="HOST:PORT",
        help="Connect to this BitTorrent peer at once (repeatable).",
    )(func)
    func = click.option(
        "--swarm/--no-swarm",
        default=None,
        help="Read from peers (with web seeds as fallback) or from web seeds only; "
        "by default from peers when the torrent has trackers or --peer is given.",
    )(func)
    return func


def _open(
    source: str,
    webseeds: tuple[str, ...],
    peers: tuple[str, ...] = (),
    swarm: bool | None = None,
) -> Any:
    from holdfast.arrays.errors import SourceError
    from holdfast.arrays.sources import open_reader

    try:
        return open_reader(
            source,
            webseeds=list(webseeds) or None,
            peers=[_peer(p) for p in peers] or None,
            swarm=swarm,
        )
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None


@arrays.command()
@click.argument("source")
@click.argument("path", required=False)
@_source_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def info(
    source: str,
    path: str | None,
    webseeds: tuple[str, ...],
    peers: tuple[str, ...],
    swarm: bool | None,
    as_json: bool,
) -> None:
    """The arrays in SOURCE (or under PATH in it): tree, shapes, dtypes, chunks.

    Only metadata is read: no chunk is downloaded.
    """
    from holdfast.arrays.errors import ArraysError
    from holdfast.arrays.sources import zarr_roots

    with _open(source, webseeds, peers, swarm) as reader:
        try:
            roots = [path.strip("/")] if path else zarr_roots(reader)
            nodes = [node for root in roots for node in _describe_zarr(reader, root)]
            nodes += _describe_npy(reader, path)
        except ArraysError as exc:
            raise click.ClickException(str(exc)) from None
        torrent = reader.torrent
        summary = {
            "name": torrent.name,
            "infohash": torrent.infohash,
            "files": len(torrent.files),
            "size": torrent.total_size,
            "piece_length": torrent.piece_length,
            "fetched_bytes": reader.fetcher.stats.bytes_fetched,
            "nodes": nodes,
        }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    _print_info(summary)


def _describe_zarr(reader: Any, root: str) -> list[dict[str, Any]]:
    import zarr

    from holdfast.arrays.errors import SourceError
    from holdfast.arrays.inspect import ArrayInfo, walk_zarr
    from holdfast.arrays.store import TorrentStore

    try:
        node = zarr.open(store=TorrentStore(reader, root), mode="r")
    except FileNotFoundError:
        raise SourceError(f"no zarr array or group at {root!r}") from None
    out: list[dict[str, Any]] = []
    for item in walk_zarr(node):
        where = "/".join(p for p in (root, item.path) if p)
        if isinstance(item, ArrayInfo):
            out.append(
                {
                    "path": where,
                    "type": "array",
                    "shape": list(item.shape),
                    "dtype": str(item.dtype),
                    "chunks": list(item.chunks) if item.chunks else None,
                    "shards": list(item.shards) if item.shards else None,
                    "zarr_format": item.zarr_format,
                }
            )
        else:
            out.append({"path": where, "type": "group"})
    return out


def _describe_npy(reader: Any, under: str | None) -> list[dict[str, Any]]:
    import io

    from holdfast.arrays.inspect import ArrayMetadataError, npy_header

    out: list[dict[str, Any]] = []
    for path in reader.walk_files(under or ""):
        if not path.endswith(".npy"):
            continue
        # the header is in the first bytes; one piece at most
        head = reader.read(path, 0, min(reader.size(path), 4096))
        try:
            shape, dtype, _ = npy_header(io.BytesIO(head))
        except ArrayMetadataError:
            continue
        out.append({"path": path, "type": "npy", "shape": list(shape), "dtype": str(dtype)})
    return out


def _print_info(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{summary['name']}[/bold]  {summary['infohash']}\n"
        f"{summary['files']} files, {_size(summary['size'])}, "
        f"pieces of {_size(summary['piece_length'])}"
    )
    table = Table(show_edge=False)
    table.add_column("path", no_wrap=True)
    for column in ("type", "shape", "dtype", "chunks", "shards"):
        table.add_column(column)
    for node in summary["nodes"]:

        def dims(value: Any) -> str:
            return " × ".join(str(v) for v in value) if value else ""  # noqa: RUF001

        table.add_row(
            node["path"],
            node["type"],
            dims(node.get("shape")),
            node.get("dtype", ""),
            dims(node.get("chunks")),
            dims(node.get("shards")),
        )
    if summary["nodes"]:
        console.print(table)
    else:
        console.print("no zarr stores or .npy arrays in this torrent")
    console.print(f"[dim]read {_size(summary['fetched_bytes'])} of metadata[/dim]")


_SLICE_ITEM = re.compile(r"^\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?)?$")


def parse_selection(text: str) -> tuple[Any, ...]:
    """'0:10, :, 5, ...' -> (slice(0, 10), slice(None), 5, Ellipsis); never evaluates code."""
    items: list[Any] = []
    for raw in text.split(","):
        part = raw.strip()
        if part == "...":
            items.append(Ellipsis)
            continue
        match = _SLICE_ITEM.match(part)
        if match is None or part == "":
            raise click.BadParameter(
                f"{raw.strip()!r} is not an index or a slice (use forms like 3, 0:10, ::2, ...)"
            )
        start, stop, step = (int(g) if g is not None else None for g in match.groups())
        if ":" not in part:
            items.append(start)
        else:
            if step == 0:
                raise click.BadParameter("a slice step cannot be zero")
            items.append(slice(start, stop, step))
    if items.count(Ellipsis) > 1:
        raise click.BadParameter("'...' can appear only once")
    return tuple(items)


@arrays.command()
@click.argument("source")
@click.argument("path")
@click.option(
    "--slice",
    "selection",
    default="...",
    show_default=True,
    help='The part to read, numpy style: "0:10, :, :".',
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the slice, as .npy.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.option(
    "--max-bytes",
    default=1 << 30,
    show_default=True,
    type=click.IntRange(min=1),
    help="Refuse slices larger than this many bytes.",
)
@_source_options
def get(
    source: str,
    path: str,
    selection: str,
    output: Path,
    force: bool,
    max_bytes: int,
    webseeds: tuple[str, ...],
    peers: tuple[str, ...],
    swarm: bool | None,
) -> None:
    """Read PATH[SLICE] of the array at PATH in SOURCE into a .npy file.

    Only the pieces holding the chunks of the slice are fetched.
    """
    import numpy as np
    import zarr

    from holdfast.arrays.errors import ArraysError
    from holdfast.arrays.store import TorrentStore

    index = parse_selection(selection)
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; use --force to overwrite it")
    with _open(source, webseeds, peers, swarm) as reader:
        try:
            node = zarr.open(store=TorrentStore(reader, path.strip("/")), mode="r")
        except FileNotFoundError:
            raise click.ClickException(f"no zarr array at {path!r}") from None
        if not isinstance(node, zarr.Array):
            names = sorted(name for name, _ in node.arrays())
            raise click.ClickException(
                f"{path!r} is a group; its arrays: {', '.join(names) or 'none'}"
            )
        # the shape of the result, found on a stand-in that occupies no memory
        stand_in = np.broadcast_to(np.zeros((), dtype=bool), node.shape)
        try:
            result_shape = stand_in[index].shape
        except (IndexError, TypeError) as exc:
            raise click.ClickException(
                f"slice {selection!r} does not fit shape {node.shape}: {exc}"
            ) from None
        nbytes = int(np.prod(result_shape, dtype=np.int64)) * node.dtype.itemsize
        if nbytes > max_bytes:
            raise click.ClickException(
                f"the slice is {_size(nbytes)}, over --max-bytes ({_size(max_bytes)})"
            )
        try:
            data = node[index]
        except ArraysError as exc:
            raise click.ClickException(str(exc)) from None
        fetched = reader.fetcher.stats.bytes_fetched
    # written beside the target and renamed, so a failure leaves no half-written file
    partial = output.with_name(output.name + ".part")
    with partial.open("wb") as handle:
        np.save(handle, np.asarray(data), allow_pickle=False)
    partial.replace(output)
    shown = " × ".join(str(s) for s in np.shape(data)) or "scalar"  # noqa: RUF001
    click.echo(
        f"wrote {output} ({shown} {node.dtype}); fetched {_size(fetched)} "
        f"for {_size(nbytes)} of data"
    )
