"""A real qBittorrent (Debian's qbittorrent-nox) follows our feed and adds its torrents.

qBittorrent is configured through its Web API the way a volunteer would: an
auto-download rule on our "new uploads" feed. Its RSS downloader fetches each item's
enclosure (the .torrent) from our server and adds it; the torrents it lists must be
exactly our approved uploads, with the same infohashes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Status
from tests.instance.helpers import make_dataset, make_upload, make_user
from tests.web.live import free_port, live_server

pytestmark = pytest.mark.interop

QBITTORRENT = "/usr/bin/qbittorrent-nox"


def qbittorrent_config(profile: Path, webui_port: int, torrent_port: int, save: Path) -> None:
    config = profile / "qBittorrent" / "config"
    config.mkdir(parents=True)
    (config / "qBittorrent.conf").write_text(
        f"""[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\AnonymousModeEnabled=true
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\InterfaceAddress=127.0.0.1
Session\\Port={torrent_port}
Session\\BTProtocol=TCP
Session\\QueueingSystemEnabled=false
Session\\DefaultSavePath={save}

[Preferences]
Connection\\UPnP=false
WebUI\\Address=127.0.0.1
WebUI\\Port={webui_port}
WebUI\\LocalHostAuth=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\ClickjackingProtection=false
""",
        encoding="utf-8",
    )


class QBittorrent:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.save = tmp / "downloads"
        self.save.mkdir()
        profile = tmp / "qbt-profile"
        qbittorrent_config(profile, self.port, free_port(), self.save)
        self.log = (tmp / "qbittorrent.log").open("wb")
        self.process = subprocess.Popen(
            [QBITTORRENT, f"--profile={profile}", f"--webui-port={self.port}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.port}/api/v2", timeout=10)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.api.get("/app/version").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("qbittorrent-nox did not start")
            time.sleep(0.2)

    def post(self, endpoint: str, **data: Any) -> None:
        r = self.api.post(endpoint, data=data)
        assert r.status_code == 200, (endpoint, r.status_code, r.text)

    def torrents(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api.get("/torrents/info").json()
        return result

    def stop(self) -> None:
        self.api.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture
def qbittorrent(tmp_path):
    if shutil.which(QBITTORRENT) is None:
        raise RuntimeError("qbittorrent-nox is missing: apt-get install -y qbittorrent-nox")
    client = QBittorrent(tmp_path)
    try:
        yield client
    finally:
        client.stop()


def test_qbittorrent_auto_downloads_from_our_feed(make_settings, tmp_path, qbittorrent):
    with live_server(make_settings) as (base, app):
        instance = app.state.instance
        owner = make_user(instance, "seedsource", Role.uploader)
        dataset = make_dataset(instance, owner, title="Seismograms", tags=["geo"])
        uploads = [
            make_upload(instance, owner, dataset.slug, tmp_path, version=version)
            for version in ("v1", "v2", "hybrid")
        ]
        hidden = make_upload(instance, owner, dataset.slug, tmp_path, status=Status.pending)
        feed_url = f"{base}/feeds/uploads.rss"

        qbittorrent.post(
            "/app/setPreferences",
            json=json.dumps(
                {
                    "rss_processing_enabled": True,
                    "rss_auto_downloading_enabled": True,
                    "rss_refresh_interval": 1,
                    "enable_multi_connections_from_same_ip": True,
                    "dht": False,
                    "lsd": False,
                    "pex": False,
                }
            ),
        )
        # The rule first, so the feed's articles are matched as soon as they arrive.
        qbittorrent.post(
            "/rss/setRule",
            ruleName="holdfast",
            ruleDef=json.dumps(
                {
                    "enabled": True,
                    "mustContain": "",
                    "affectedFeeds": [feed_url],
                    "savePath": str(qbittorrent.save),
                    "addPaused": True,
                }
            ),
        )
        qbittorrent.post("/rss/addFeed", url=feed_url, path="holdfast")

        # qBittorrent names a torrent by its truncated v2 hash if it has one, else v1.
        expected = {(u.infohash_v2 or u.infohash_v1)[:40]: u for u in uploads}
        deadline = time.monotonic() + 90
        added: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            added = {t["hash"]: t for t in qbittorrent.torrents()}
            if set(expected) <= set(added):
                break
            time.sleep(1)
        assert set(added) == set(expected), (added.keys(), expected.keys())
        for short_hash, upload in expected.items():
            got = added[short_hash]
            assert got["name"] == upload.name
            if upload.infohash_v1:
                assert got["infohash_v1"] == upload.infohash_v1
            if upload.infohash_v2:
                assert got["infohash_v2"] == upload.infohash_v2
        hidden_hash = (hidden.infohash_v2 or hidden.infohash_v1)[:40]
        assert hidden_hash not in added
        items = qbittorrent.api.get("/rss/items", params={"withData": "true"}).json()
        articles = items["holdfast"]["articles"]
        assert len(articles) == 3
        assert {a["torrentURL"] for a in articles} == {
            f"{base}/api/v1/uploads/{u.infohash}/torrent" for u in uploads
        }
