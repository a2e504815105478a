"""A real instance served by uvicorn on 127.0.0.1, and the real `holdfast` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from holdfast.accounts.models import Role
from holdfast.instance import Instance
from tests.instance.helpers import User, make_dataset, make_user
from tests.torrents.clients import wait_until
from tests.web.live import live_server


@dataclass
class Live:
    base_url: str
    app: Any
    user: User
    dataset: str

    @property
    def instance(self) -> Instance:
        instance: Instance = self.app.state.instance
        return instance

    def api(self, path: str) -> Any:
        r = httpx.get(self.base_url + path, timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_seeding(self, infohash: str, timeout: float = 60) -> None:
        wait_until(
            lambda: self.api(f"/api/v1/uploads/{infohash}/seeding")["state"] == "seeding",
            timeout,
            "the instance's seeder to seed the upload",
            interval=0.25,
        )


@contextmanager
def live_instance(make_settings: Any, **overrides: Any) -> Iterator[Live]:
    settings = {"seeder_port": 0, "federation": False} | overrides
    with live_server(make_settings, **settings) as (base_url, app):
        instance: Instance = app.state.instance
        user = make_user(instance, "publisher", Role.uploader)
        dataset = make_dataset(instance, user, slug="climate-records", title="Climate records")
        yield Live(base_url, app, user, dataset.slug)


def holdfast(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run the real `holdfast` command; returns the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDFAST_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "holdfast", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def publish_env(live: Live, token: str | None = None) -> dict[str, str]:
    """The environment of someone publishing from the machine the instance runs on."""
    s = live.instance.settings
    return {
        "HOLDFAST_TOKEN": token if token is not None else live.user.token,
        "HOLDFAST_DATA_DIR": str(s.data_dir),
        "HOLDFAST_HOST": s.host,
        "HOLDFAST_PORT": str(s.port),
        "HOLDFAST_CONFIG_FILE": str(s.config_file),
    }


def same_tree(a: Path, b: Path) -> None:
    """Every file under `a` exists under `b` with the same bytes (and nothing is missing)."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(
        p.relative_to(b) for p in b.rglob("*") if p.is_file() and ".pad" not in p.parts
    )
    assert files_a == files_b, (files_a, files_b)
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
