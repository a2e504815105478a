"""`holdfast publish PATH --to URL`: make a torrent of a folder, upload it, seed it.

1. If the folder has a holdfast.yaml, it is validated first, and the arrays it declares
   are checked against the real ones (shape and dtype, from array metadata only);
   nothing is hashed or sent if anything is wrong. The file is part of the torrent.
2. The instance and the token are checked (GET /api/v1/account), and the dataset:
   `--dataset SLUG` must exist; `--title` creates one (POST /api/v1/datasets). Without
   either, the new dataset's title, description, licence and tags come from
   holdfast.yaml (flags given override the file).
3. The torrent is made with the instance's announce URL and its web seed
   (`<URL>/webseed/<infohash>/`, BEP 19) in `url-list`.
4. When `--to` is this machine's own instance (its settings' base URL, from the
   usual HOLDFAST_* environment, config file or `--data-dir`), or `--storage-dir` is
   given, the data is hard-linked (copied across file systems, moved with `--move`)
   into `<storage>/<infohash>/<name>` before the upload is sent, so the instance's
   seeder takes it over as soon as the upload is public.
5. The torrent is uploaded (POST /api/v1/uploads); holdfast.yaml is handed to the
   instance (POST /api/v1/uploads/<infohash>/metadata), which checks it against the
   torrent, shows it on the dataset and upload pages and indexes it for search; and
   the zarr metadata documents of the folder are handed over too
   (POST /api/v1/uploads/<infohash>/zarr-metadata) so readers open arrays without
   swarm traffic.
6. Otherwise this process keeps seeding it (as `holdfast seed` does) until stopped,
   unless `--no-seed`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from holdfast.arrays.errors import MetadataError, MissingExtraError
from holdfast.arrays.publish import (
    Publication,
    prepare_publication,
    zarr_metadata_files,
)
from holdfast.catalogue.schemas import slugify
from holdfast.cli.seed import ALL_INTERFACES, seed_forever
from holdfast.seeding.storage import upload_folder
from holdfast.seeding.webseed import webseed_url
from holdfast.settings import Settings
from holdfast.torrents import CreatedTorrent, TorrentError, bencode, create_torrent, parse_torrent

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
METADATA_FILENAME = "holdfast.yaml"
MAX_TAGS = 30  # catalogue.schemas.DatasetIn
MAX_TAG_CHARS = 64


class PublishError(click.ClickException):
    """A clear, one-line reason the publication stopped."""


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    if not enabled:
        yield lambda done, total: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


class _Reading:
    """A file-like view of bytes that reports how much has been read (for uploads)."""

    def __init__(self, data: bytes, report: Callable[[int, int], None]) -> None:
        self.data = data
        self.pos = 0
        self.report = report

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else min(len(self.data), self.pos + size)
        chunk = self.data[self.pos : end]
        self.pos = end
        self.report(self.pos, len(self.data))
        return chunk


class InstanceClient:
    """The few API calls publishing needs, with errors said plainly."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "holdfast-publish"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise PublishError(f"cannot reach the instance at {self.base_url}: {exc}") from None
        if response.status_code == 401:
            raise PublishError(
                "the instance refused the token (missing, invalid or revoked): "
                "pass --token or set HOLDFAST_TOKEN"
            )
        return response

    @staticmethod
    def error(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        message = str(body.get("error") or body.get("detail") or body)
        fields = body.get("fields")
        if fields:
            message += " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
        return message

    def account(self) -> dict[str, Any]:
        r = self.call("GET", "/api/v1/account")
        if r.status_code != 200:
            raise PublishError(
                f"the instance did not answer as a holdfast instance: {r.status_code}"
            )
        return dict(r.json())

    def dataset(self, slug: str) -> dict[str, Any]:
        r = self.call("GET", f"/api/v1/datasets/{slug}")
        if r.status_code != 200:
            raise PublishError(f"dataset {slug!r}: {self.error(r)}")
        return dict(r.json())

    def slug_taken(self, slug: str) -> bool:
        return bool(slug) and self.call("GET", f"/api/v1/datasets/{slug}").status_code == 200

    def create_dataset(self, fields: dict[str, Any]) -> dict[str, Any]:
        r = self.call("POST", "/api/v1/datasets", json=fields)
        if r.status_code != 201:
            raise PublishError(f"cannot create the dataset: {self.error(r)}")
        return dict(r.json())

    def upload(
        self, data: bytes, fields: dict[str, str], report: Callable[[int, int], None]
    ) -> dict[str, Any]:
        files = {"torrent": ("upload.torrent", _Reading(data, report), "application/x-bittorrent")}
        r = self.call("POST", "/api/v1/uploads", files=files, data=fields)
        if r.status_code == 409:
            raise PublishError(f"this torrent is already in the catalogue: {self.error(r)}")
        if r.status_code != 201:
            raise PublishError(f"the upload was refused: {self.error(r)}")
        return dict(r.json())

    def metadata(self, infohash: str, content: str) -> dict[str, Any]:
        """Hand over holdfast.yaml; the fields the instance shows."""
        r = self.call("POST", f"/api/v1/uploads/{infohash}/metadata", json={"content": content})
        if r.status_code != 200:
            raise PublishError(f"HTTP {r.status_code}: {self.error(r)}")
        return dict(r.json().get("metadata") or {})

    def zarr_metadata(self, infohash: str, files: list[dict[str, str]]) -> int:
        """Hand over the zarr metadata documents; how many the instance kept."""
        r = self.call("POST", f"/api/v1/uploads/{infohash}/zarr-metadata", json={"files": files})
        if r.status_code != 200:
            raise PublishError(f"HTTP {r.status_code}: {self.error(r)}")
        return len(r.json().get("files") or [])


def with_webseed(created: CreatedTorrent, url: str) -> bytes:
    """The torrent with `url` added to its url-list (outside the info dict: same infohash)."""
    meta = bencode.decode(created.data)
    existing = meta.get(b"url-list", [])
    if isinstance(existing, bytes):
        existing = [existing]
    if url.encode() not in existing:
        meta[b"url-list"] = [*existing, url.encode()]
    data = bencode.encode(meta)
    if parse_torrent(data).info_bytes != created.torrent.info_bytes:  # pragma: no cover
        raise PublishError("adding the web seed changed the torrent's info dictionary")
    return data


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def read_metadata(path: Path) -> Publication | None:
    """The checked holdfast.yaml of the folder and its arrays, or None if there is none.

    PublishError (every problem with its line and field) if it is invalid or an array
    does not match what it declares. Without the `arrays` extra the arrays are not
    checked (or, without jsonschema, the file itself), and a warning says so.
    """
    if not path.is_dir() or not (path / METADATA_FILENAME).is_file():
        return None
    try:
        try:
            publication = prepare_publication(path)
        except (MissingExtraError, ImportError) as exc:
            publication = prepare_publication(path, arrays=False)
            warn(f"the arrays were not checked against holdfast.yaml ({exc})")
    except MissingExtraError as exc:
        warn(f"holdfast.yaml not checked ({exc})")
        return None
    except MetadataError as exc:
        raise PublishError(f"holdfast.yaml is not valid:\n{exc}") from None
    for message in publication.warnings:
        warn(message)
    return publication


def tags_of(keywords: list[str]) -> list[str]:
    """Keywords as the catalogue's tags: those it can hold, distinct, at most MAX_TAGS."""
    tags: list[str] = []
    for keyword in keywords:
        if len(keyword) > MAX_TAG_CHARS:
            continue
        tag = slugify(keyword, max_length=MAX_TAG_CHARS)
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:MAX_TAGS]


def new_dataset_fields(
    title: str | None,
    description: str,
    license_: str,
    tags: tuple[str, ...],
    publication: Publication | None,
) -> dict[str, Any] | None:
    """The fields of the dataset to create (None: use --dataset); flags override the file."""
    if publication is not None:
        title = title or publication.title
        description = description or publication.description or ""
        license_ = license_ or publication.license or ""
        if not tags:
            tags = tuple(tags_of(publication.keywords))
    if title is None:
        return None
    fields: dict[str, Any] = {"title": title, "description": description}
    if license_:
        fields["license"] = license_
    if tags:
        fields["tags"] = list(tags)
    return fields


def hand_over_zarr_metadata(
    client: InstanceClient, infohash: str, files: list[dict[str, str]]
) -> None:
    """POST the zarr metadata documents; a refusal is a warning (the upload stands)."""
    if not files:
        return
    try:
        kept = client.zarr_metadata(infohash, files)
    except PublishError as exc:
        warn(
            f"the instance did not keep the zarr metadata documents ({exc.message}); "
            "readers will take them from the swarm. A v1 torrent needs --align zarr "
            "for them to be checked against its pieces."
        )
        return
    click.echo(f"zarr metadata: {kept} documents kept by the instance", err=True)


def hand_over_metadata(client: InstanceClient, infohash: str, path: Path) -> None:
    """POST holdfast.yaml exactly as it is in the torrent; a refusal is a warning."""
    try:
        content = (path / METADATA_FILENAME).read_bytes().decode("utf-8")
        client.metadata(infohash, content)
    except (OSError, UnicodeDecodeError) as exc:  # pragma: no cover - it was read before
        warn(f"holdfast.yaml could not be read again: {exc}")
        return
    except PublishError as exc:
        warn(
            f"the instance did not keep holdfast.yaml ({exc.message}); it is in the "
            "torrent, but the instance's pages and search do not show it"
        )
        return
    click.echo("metadata: holdfast.yaml kept by the instance", err=True)


def local_storage(to: str, data_dir: Path | None, storage_dir: Path | None) -> Path | None:
    """The storage folder of the instance at `to` when it is this machine's own one."""
    if storage_dir is not None:
        return storage_dir
    options: dict[str, Any] = {}
    if data_dir is not None:
        options["data_dir"] = data_dir
    try:
        settings = Settings(**options)
    except ValidationError:
        return None
    if settings.base_url.rstrip("/") != to.rstrip("/") or not settings.data_dir.is_dir():
        return None
    return settings.resolved_storage_dir


def place(source: Path, target: Path, *, move: bool) -> str:
    """Put the data at `target`: moved, or hard-linked file by file (copied if it must)."""
    if target.exists() or target.is_symlink():
        raise PublishError(f"{target} already exists in the instance's storage")
    target.parent.mkdir(parents=True, exist_ok=True)
    if move:
        shutil.move(str(source), str(target))
        return "moved"
    how = {"linked"}

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
            how.add("copied")

    if source.is_dir():
        shutil.copytree(source, target, copy_function=link, symlinks=False)
    else:
        link(str(source), str(target))
    return "copied" if "copied" in how else "hard-linked"


def unplace(source: Path, target: Path, *, moved: bool) -> None:
    if moved:
        with contextlib.suppress(OSError):
            shutil.move(str(target), str(source))
        return
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--to", "to", required=True, help="The instance's URL, e.g. https://archive.example")
@click.option("--dataset", help="Slug of an existing dataset to add the upload to.")
@click.option("--title", help="Create a new dataset with this title.")
@click.option("--dataset-description", default="", help="Description of the new dataset.")
@click.option("--license", "license_", default="", help="License of the new dataset.")
@click.option("--tag", "tags", multiple=True, help="Tag of the new dataset (repeatable).")
@click.option("--description", default="", help="Description of this upload (Markdown).")
@click.option(
    "--align",
    type=click.Choice(["zarr"]),
    default=None,
    help="Align pieces with zarr chunks (a v1 torrent then lets the instance check and "
    "serve the zarr metadata).",
)
@click.option(
    "--token", envvar="HOLDFAST_TOKEN", help="API token of your account [env: HOLDFAST_TOKEN]."
)
@click.option(
    "--version",
    "torrent_version",
    type=click.Choice(["hybrid", "v1", "v2"]),
    default="hybrid",
    show_default=True,
    help="Torrent format.",
)
@click.option(
    "--torrent-out", type=click.Path(path_type=Path), help="Also write the .torrent here."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="HOLDFAST_DATA_DIR",
    help="Data folder of this machine's instance (to recognise it) [env: HOLDFAST_DATA_DIR].",
)
@click.option(
    "--storage-dir",
    type=click.Path(path_type=Path),
    help="Put the data into this instance storage folder (the instance runs here).",
)
@click.option("--move", is_flag=True, help="Move the data into the storage instead of linking.")
@click.option("--no-seed", is_flag=True, help="Do not keep seeding from this machine.")
@click.option("--seed-host", default=ALL_INTERFACES, show_default=True, help="Address to seed on.")
@click.option("--seed-port", type=int, default=0, help="Port for seeding from here (0: any).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def publish(
    path: Path,
    to: str,
    dataset: str | None,
    title: str | None,
    dataset_description: str,
    license_: str,
    tags: tuple[str, ...],
    description: str,
    align: str | None,
    token: str | None,
    torrent_version: str,
    torrent_out: Path | None,
    data_dir: Path | None,
    storage_dir: Path | None,
    move: bool,
    no_seed: bool,
    seed_host: str,
    seed_port: int,
    quiet: bool,
) -> None:
    """Publish the file or folder PATH on the instance at --to, and seed it.

    A holdfast.yaml in the folder is checked first, against the arrays too; without
    --dataset or --title the new dataset is described by it.
    """
    described = path.is_dir() and (path / METADATA_FILENAME).is_file()
    if dataset is not None and title is not None:
        raise click.UsageError("give only one of --dataset SLUG or --title TITLE")
    if dataset is None and title is None and not described:
        raise click.UsageError(
            "give --dataset SLUG or --title TITLE (or describe the folder in holdfast.yaml)"
        )
    to = to.rstrip("/")
    if urlsplit(to).scheme not in ("http", "https") or not urlsplit(to).hostname:
        raise click.UsageError("--to must be an http(s) URL")
    if not token:
        raise PublishError("an API token is needed: pass --token or set HOLDFAST_TOKEN")
    path = path.resolve()
    publication = read_metadata(path)
    new_dataset = None
    if dataset is None:
        new_dataset = new_dataset_fields(title, dataset_description, license_, tags, publication)
        if new_dataset is None:
            raise click.UsageError(
                "holdfast.yaml could not be read for a title: give --title or --dataset"
            )
    show = not quiet
    client = InstanceClient(to, token)
    try:
        account = client.account()
        if dataset is not None:
            slug = str(client.dataset(dataset)["slug"])
        elif new_dataset is not None and client.slug_taken(slugify(new_dataset["title"])):
            taken = slugify(new_dataset["title"])
            raise PublishError(
                f"a dataset with the slug {taken!r} already exists: add this upload to it "
                f"with --dataset {taken}, or give the new dataset another --title"
            )
        storage = local_storage(to, data_dir, storage_dir)

        with progress_bar("hashing", show) as report:
            try:
                created = create_torrent(
                    path,
                    version=torrent_version,  # type: ignore[arg-type]
                    align=align,  # type: ignore[arg-type]
                    trackers=[f"{to}/announce"],
                    progress=report,
                )
            except TorrentError as exc:
                raise PublishError(f"cannot make a torrent of {path}: {exc.reason}") from None
        torrent = created.torrent
        data = with_webseed(created, webseed_url(to, torrent.infohash))
        if torrent_out is not None:
            torrent_out.write_bytes(data)

        if new_dataset is not None:
            slug = str(client.create_dataset(new_dataset)["slug"])

        placed: Path | None = None
        if storage is not None:
            placed = upload_folder(storage, torrent.infohash) / torrent.name
            how = place(path, placed, move=move)
            click.echo(f"data {how} into {placed}", err=True)
        try:
            with progress_bar("uploading", show) as report:
                upload = client.upload(data, {"dataset": slug, "description": description}, report)
        except BaseException:
            if placed is not None:
                unplace(path, placed, moved=move)
            raise
        if publication is not None:
            hand_over_metadata(client, torrent.infohash, path)
        if path.is_dir():  # with or without holdfast.yaml
            files = zarr_metadata_files(path, torrent.name)
            hand_over_zarr_metadata(client, torrent.infohash, files)
    finally:
        client.close()

    click.echo(f"published {torrent.name} as {account.get('name', '?')}")
    click.echo(f"  infohash  {torrent.infohash}")
    click.echo(f"  status    {upload.get('status')}")
    click.echo(f"  page      {to}/uploads/{torrent.infohash}")
    if upload.get("status") != "approved":
        click.echo("  it will be seeded and listed once a moderator approves it")
    if storage is not None:
        click.echo("  the instance's seeder seeds it from its storage folder")
        return
    if no_seed:
        click.echo(f"  seed it with: holdfast seed {torrent_out or '<file>.torrent'} {path.parent}")
        return
    seed_forever(data, path.parent, host=seed_host, port=seed_port, show=show)
