"""The commands, run as a user would run them: real processes, real ports."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "holdfast", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_serve_with_zero_configuration(tmp_path):
    """Creates its data folder, database and secret, answers health and prints a setup link."""
    port = free_port()
    data = tmp_path / "fresh" / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDFAST_")}
    env["HOLDFAST_DATA_DIR"] = str(data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "holdfast", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert health is not None and health["ok"] is True
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert (data / "holdfast.db").is_file()
    secret = data / "secret_key"
    assert secret.is_file() and oct(secret.stat().st_mode & 0o777) == "0o600"
    link = re.search(r"http://127\.0\.0\.1:\d+/setup\?token=(\S+)", out)
    assert link, out
    # Its jobs ran in a child process, which stopped with it.
    jobs = re.search(r"background jobs run in process (\d+)", out)
    assert jobs, out
    assert int(jobs.group(1)) not in (proc.pid, os.getpid())
    assert not Path(f"/proc/{jobs.group(1)}").exists()


@pytest.mark.parametrize(
    "env, complaint",
    [
        ({}, "HOLDFAST_SECRET_KEY"),
        ({"HOLDFAST_SECRET_KEY": "s" * 40}, "HOLDFAST_PUBLIC_URL"),
        (
            {
                "HOLDFAST_SECRET_KEY": "s" * 40,
                "HOLDFAST_PUBLIC_URL": "https://a.example",
                "HOLDFAST_ALLOW_PRIVATE_ADDRESSES": "true",
            },
            "PRIVATE_ADDRESSES",
        ),
    ],
)
def test_production_refuses_unsafe_settings(tmp_path, env, complaint):
    r = run(
        "serve", "--production", "--data-dir", str(tmp_path), "--port", str(free_port()), env=env
    )
    assert r.returncode != 0
    assert complaint in r.stderr
    assert not (tmp_path / "holdfast.db").exists()


def test_admin_create_account_prints_a_working_token(tmp_path):
    from fastapi.testclient import TestClient

    from holdfast.app import create_app
    from holdfast.settings import Settings

    r = run(
        "admin", "create-account", "ops", "--role", "admin", "--token", "--data-dir", str(tmp_path)
    )
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("hf_")
    app = create_app(Settings(data_dir=tmp_path, config_file=tmp_path / "none.toml"))
    with TestClient(app) as client:
        me = client.get("/api/v1/account", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["name"] == "ops" and me["role"] == "admin"
    dup = run("admin", "create-account", "ops", "--data-dir", str(tmp_path))
    assert dup.returncode != 0 and "taken" in dup.stderr


def test_db_upgrade_and_status(tmp_path):
    assert run("db", "status", "--data-dir", str(tmp_path)).returncode == 1
    assert run("db", "upgrade", "--data-dir", str(tmp_path)).returncode == 0
    status = run("db", "status", "--data-dir", str(tmp_path))
    assert status.returncode == 0 and "up to date" in status.stdout


def test_config_file_and_environment(tmp_path):
    from holdfast.settings import Settings

    (tmp_path / "holdfast.toml").write_text(
        '[holdfast]\ninstance_name = "labarchive"\nport = 9001\n'
    )
    settings = Settings(data_dir=tmp_path)
    assert settings.instance_name == "labarchive" and settings.port == 9001
    os.environ["HOLDFAST_PORT"] = "9002"
    try:
        assert Settings(data_dir=tmp_path).port == 9002  # the environment wins over the file
    finally:
        del os.environ["HOLDFAST_PORT"]
    assert Settings(data_dir=tmp_path, port=9003).port == 9003  # flags win over both


def test_serve_help_lists_every_setting():
    from holdfast.settings import Settings

    out = run("serve", "--help").stdout
    for name in Settings.model_fields:
        if name != "secret_key":
            assert "--" + name.replace("_", "-") in out, name
