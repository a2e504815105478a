"""Instance settings.

Every setting is declared once, here, with its help text. Values come from (highest
first): explicit arguments (command-line flags), `HOLDFAST_*` environment variables,
a TOML config file (`HOLDFAST_CONFIG` or `<data_dir>/holdfast.toml`), and defaults.
Nothing reads settings at import time: `Settings()` is built by the CLI or a test and
handed to `create_app(settings)`.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SECRET_FILE = "secret_key"  # noqa: S105 - a file name
CONFIG_FILE = "holdfast.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("holdfast", appauthor=False))


class ConfigError(Exception):
    """The settings cannot be used as given (for example, in production without a secret)."""


class TomlFileSource(PydanticBaseSettingsSource):
    """Reads settings from a TOML file, if one is configured or present."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {self.path}: {exc}") from exc
        # Accept both a flat file and one with a [holdfast] table.
        section = data.get("holdfast", data)
        if not isinstance(section, dict):
            raise ConfigError(f"config file {self.path}: [holdfast] must be a table")
        return section


class Settings(BaseSettings):
    """All settings of one instance."""

    model_config = SettingsConfigDict(env_prefix="HOLDFAST_", extra="forbid", validate_default=True)

    # --- where things live
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder for the database, secret, torrents and seeded data.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: a SQLite file in the data folder. "
        "For PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    config_file: Path | None = Field(
        default=None,
        description="TOML file with settings (also read from <data_dir>/holdfast.toml).",
    )

    # --- network identity
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="HTTP port to listen on.")
    public_url: str | None = Field(
        default=None,
        description="The URL people and peers reach this instance at, "
        "e.g. https://archive.example.org. Required in production.",
    )
    instance_name: str = Field(
        default="holdfast",
        pattern=r"^[a-z0-9_][a-z0-9_.-]{0,63}$",
        description="Short name of the instance; also its ActivityPub username.",
    )
    instance_title: str = Field(default="A holdfast archive", description="Title shown on pages.")
    instance_description: str = Field(
        default="A federated archive of research data, kept alive by BitTorrent swarms.",
        description="One paragraph shown on the home page (Markdown).",
    )

    # --- security
    secret_key: str | None = Field(
        default=None,
        min_length=32,
        description="Secret for signing sessions and tracker connection ids. "
        "Generated and stored in the data folder if unset (refused in production).",
    )
    production: bool = Field(
        default=False,
        description="Refuse unsafe defaults: a generated secret, a missing public URL, "
        "server-side fetches of private addresses.",
    )
    open_registration: bool = Field(default=True, description="Allow anyone to create an account.")
    session_days: int = Field(default=30, ge=1, description="How long a login lasts.")
    auth_rate_limit: int = Field(
        default=10, ge=1, description="Failed logins allowed per address and account per window."
    )
    auth_rate_window_seconds: int = Field(
        default=300, ge=1, description="Window for auth_rate_limit."
    )
    allow_private_addresses: bool = Field(
        default=False,
        description="Allow server-side requests (webseed checks, federation, scrapes) to private "
        "and loopback addresses. For local testing only; refused in production.",
    )
    max_torrent_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest .torrent file accepted."
    )

    # --- background work
    run_jobs: bool = Field(
        default=True,
        description="Run background jobs as part of `holdfast serve` (see job_process). Turn "
        "off when running `holdfast worker` processes instead.",
    )
    job_process: bool = Field(
        default=True,
        description="With run_jobs, `holdfast serve` runs the jobs in a child process of its "
        "own (on another core, so busy jobs never slow the answers) rather than in threads "
        "of the server process.",
    )
    job_lock_seconds: int = Field(default=300, ge=1, description="How long a worker holds a job.")

    # --- swarm: the embedded tracker and scraping of other trackers
    tracker: bool = Field(default=True, description="Run the embedded BitTorrent tracker.")
    tracker_open: bool = Field(
        default=False,
        description="Track any infohash, not only those of uploads in this catalogue.",
    )
    tracker_udp_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="UDP port of the tracker (BEP 15). Default: the HTTP port's number; "
        "0 picks a free port.",
    )
    tracker_http_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Also answer HTTP announces on this dedicated port (faster than the "
        "/announce route of the main server). Default: off.",
    )
    tracker_interval: int = Field(
        default=1800, ge=10, description="Seconds clients are asked to wait between announces."
    )
    tracker_max_peers: int = Field(
        default=1_000_000, ge=100, description="Peers kept in memory across all swarms."
    )
    scrape_interval_minutes: int = Field(
        default=30, ge=1, description="How often the trackers named in torrents are scraped."
    )
    scrape_concurrency: int = Field(
        default=8, ge=1, le=256, description="Trackers scraped at the same time."
    )
    scrape_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Time allowed for one tracker to answer a scrape."
    )

    # --- the instance's own seeder and webseed
    seeder: bool = Field(
        default=True, description="Seed every upload whose data is in the storage folder."
    )
    storage_dir: Path | None = Field(
        default=None,
        description="Folder holding the data the instance seeds. Default: <data_dir>/storage.",
    )
    seeder_port: int = Field(
        default=6881, ge=0, le=65535, description="BitTorrent listen port (0 picks a free port)."
    )
    seeder_max_connections: int = Field(
        default=200, ge=2, description="Most peer connections the seeder keeps open."
    )
    seeder_upload_rate: int = Field(
        default=0, ge=0, description="Upload limit in bytes per second (0: unlimited)."
    )
    seeder_download_rate: int = Field(
        default=0, ge=0, description="Download limit in bytes per second (0: unlimited)."
    )
    webseed: bool = Field(
        default=True,
        description="Serve stored data over HTTP with Range requests (BEP 19) and list the "
        "instance as a webseed.",
    )

    # --- federation (ActivityPub)
    federation: bool = Field(default=True, description="Federate with other instances.")
    federation_mode: Literal["open", "allowlist", "blocklist"] = Field(
        default="open",
        description="open: talk to any peer; allowlist: only peers an admin allowed; "
        "blocklist: any peer but those an admin blocked.",
    )
    federation_auto_accept: bool = Field(
        default=True, description="Accept follows from peers without an admin's review."
    )
    federation_max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest ActivityPub request body accepted."
    )
    federation_resync_minutes: int = Field(
        default=60, ge=1, description="How often followed peers' outboxes are re-read."
    )

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file can be named by argument or environment, else it is looked
        # for in the data folder (which itself may come from either).
        init = init_settings()
        env = env_settings()
        path = init.get("config_file") or env.get("config_file")
        if path is None:
            data_dir = init.get("data_dir") or env.get("data_dir") or default_data_dir()
            path = Path(data_dir) / CONFIG_FILE
        return (init_settings, env_settings, TomlFileSource(settings_cls, Path(path)))

    # --- derived values

    @property
    def base_url(self) -> str:
        """The URL this instance calls itself by."""
        if self.public_url:
            return self.public_url
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "storage"

    @property
    def resolved_tracker_udp_port(self) -> int:
        return self.port if self.tracker_udp_port is None else self.tracker_udp_port

    @property
    def announce_url(self) -> str:
        """The embedded tracker's HTTP announce URL, suggested for new torrents."""
        return f"{self.base_url}/announce"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'holdfast.db'}"

    def prepare(self) -> Settings:
        """Create the data folder and the secret, and check production rules.

        Returns a copy with `secret_key` filled in. Raises ConfigError when the
        settings are unsafe for production.
        """
        generated = self.secret_key is None
        if self.production:
            problems = []
            if generated:
                problems.append(
                    "set HOLDFAST_SECRET_KEY (a generated secret is refused in production)"
                )
            if not self.public_url:
                problems.append("set HOLDFAST_PUBLIC_URL to the instance's public https:// URL")
            if self.allow_private_addresses:
                problems.append("HOLDFAST_ALLOW_PRIVATE_ADDRESSES must be off in production")
            if problems:
                raise ConfigError("refusing to start in production: " + "; ".join(problems))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = self.secret_key or load_or_create_secret(self.data_dir)
        return self.model_copy(update={"secret_key": secret})


def load_or_create_secret(data_dir: Path) -> str:
    """The instance secret kept in the data folder, created on first use (mode 0600)."""
    path = data_dir / SECRET_FILE
    try:
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret + "\n")
    return secret
