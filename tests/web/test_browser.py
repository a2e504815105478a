"""The web interface in a real browser (Chromium via Playwright) against a real server.

The story: the first admin is created from the setup link; an archivist registers and
publishes a dataset with its torrent in one step (dropping the file on the form); a
moderator approves it; the public then finds it in search, on its tag page and in the
feed, and downloads a .torrent whose infohash libtorrent confirms. On the way every
main page is checked with axe-core and screenshotted into test-artifacts/web/.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import libtorrent as lt
import pytest

from holdfast.accounts.models import Role
from tests.instance.helpers import PASSWORD, make_dataset, make_user
from tests.instance.torrents import sample_torrent
from tests.web.live import check_accessibility, live_server, screenshot

pytestmark = pytest.mark.interop

DROP_FILE = """([zoneSelector, name, bytes]) => {
  const zone = document.querySelector(zoneSelector);
  const file = new File([new Uint8Array(bytes)], name, {type: "application/x-bittorrent"});
  const data = new DataTransfer();
  data.items.add(file);
  const init = {dataTransfer: data, bubbles: true, cancelable: true};
  zone.dispatchEvent(new DragEvent("dragover", init));
  zone.dispatchEvent(new DragEvent("drop", init));
  return zone.querySelector("input[type=file]").files.length;
}"""


class Watched:
    """A page whose console errors (CSP violations among them) are collected."""

    def __init__(self, context: Any, base: str) -> None:
        self.page = context.new_page()
        self.base = base
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))

    def _console(self, message: Any) -> None:
        # 4xx answers the story asks for (a refused form, a hidden page) are logged by
        # the browser too; anything else (a CSP violation, a script error) is a problem.
        if message.type == "error" and not message.text.startswith(
            "Failed to load resource: the server responded with a status of 4"
        ):
            self.problems.append(message.text)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def audit(self, name: str) -> None:
        serious = check_accessibility(self.page, name)
        assert serious == [], f"{name}: {serious}"
        screenshot(self.page, name)


def fill_label(page: Any, label: str, value: str) -> None:
    page.get_by_label(label, exact=True).fill(value)


def test_register_publish_approve_find_download(chromium, make_settings, tmp_path):
    torrent = sample_torrent(tmp_path, "sst-daily", seed="browser")
    info = lt.torrent_info(lt.bdecode(torrent))
    v1 = info.info_hashes().v1.to_bytes().hex()
    v2 = info.info_hashes().v2.to_bytes().hex()
    with live_server(make_settings) as (base, app):
        instance = app.state.instance
        setup_token = instance.accounts.create_setup_token()

        # --- the first admin, from the link `holdfast serve` prints
        admin_ctx = chromium.new_context()
        admin = Watched(admin_ctx, base)
        admin.go(f"/setup?token={setup_token}")
        admin.audit("setup")
        fill_label(admin.page, "Admin name", "root")
        fill_label(admin.page, "Password", PASSWORD)
        fill_label(admin.page, "Password again", PASSWORD)
        admin.page.get_by_role("button", name="Create admin account").click()
        admin.page.wait_for_url(base + "/admin")
        assert instance.accounts.get("root").role == Role.admin

        # --- an archivist registers, with the keyboard only
        archivist_ctx = chromium.new_context()
        archivist = Watched(archivist_ctx, base)
        archivist.go("/register")
        archivist.audit("register")
        archivist.page.get_by_label("Name", exact=True).focus()
        archivist.page.keyboard.type("archivist")
        archivist.page.keyboard.press("Tab")  # to the display name
        archivist.page.keyboard.type("An Archivist")
        archivist.page.keyboard.press("Tab")
        archivist.page.keyboard.type(PASSWORD)
        archivist.page.keyboard.press("Tab")
        archivist.page.keyboard.type(PASSWORD)
        archivist.page.keyboard.press("Enter")
        archivist.page.wait_for_url(re.compile(r".*/account\?welcome=1$"))
        archivist.audit("account")

        # --- one-step publishing: a server error shown next to its field first
        archivist.go("/publish")
        archivist.audit("publish")
        archivist.page.get_by_label("A new dataset").check()
        fill_label(archivist.page, "Slug (optional)", "Not A Slug")
        archivist.page.get_by_role("button", name="Publish").click()
        archivist.page.wait_for_load_state("networkidle")
        error = archivist.page.locator("#title-error")
        assert error.is_visible()
        assert archivist.page.get_by_label("Title", exact=True).get_attribute("aria-invalid")
        assert archivist.page.locator("#slug-error").is_visible()
        archivist.audit("publish-errors")

        fill_label(archivist.page, "Title", "Sea surface temperature, daily")
        fill_label(archivist.page, "Slug (optional)", "")
        fill_label(archivist.page, "Description", "Daily **SST** grids, 1981 to 2025.")
        fill_label(archivist.page, "Tags", "climate, ocean")
        fill_label(archivist.page, "Publisher", "NOAA")
        archivist.page.get_by_label("Threat at the source").select_option("endangered")
        dropped = archivist.page.evaluate(
            DROP_FILE, ["[data-dropzone]", "sst-daily.torrent", list(torrent)]
        )
        assert dropped == 1
        assert "sst-daily.torrent" in archivist.page.locator("[data-dropzone-name]").inner_text()
        archivist.page.get_by_role("button", name="Publish").click()
        archivist.page.wait_for_url(f"{base}/uploads/{v2}")
        assert "waiting for a moderator" in archivist.page.content()

        # --- not public yet
        public_ctx = chromium.new_context()
        public = Watched(public_ctx, base)
        response = public.go("/datasets/sea-surface-temperature-daily")
        assert response.status == 404
        assert v2 not in public.page.request.get(base + "/feeds/uploads.rss").text()

        # --- the admin makes a moderator, who approves
        moderator_ctx = chromium.new_context()
        moderator = Watched(moderator_ctx, base)
        moderator.go("/register")
        fill_label(moderator.page, "Name", "moira")
        fill_label(moderator.page, "Password", PASSWORD)
        fill_label(moderator.page, "Password again", PASSWORD)
        moderator.page.get_by_role("button", name="Create account").click()
        moderator.page.wait_for_url(re.compile(r".*/account.*"))
        admin.go("/admin")
        admin.audit("admin")
        admin.page.get_by_label("Role of moira").select_option("moderator")
        admin.page.get_by_role("button", name="Save moira").click()
        admin.page.wait_for_load_state("networkidle")
        assert instance.accounts.get("moira").role == Role.moderator

        moderator.go("/moderation")
        moderator.audit("moderation-queue")
        for name in ("Sea surface temperature, daily", "sst-daily"):
            moderator.page.get_by_role("button", name=f"Approve {name}", exact=True).click()
            # HTMX swaps the item for its new state without reloading the page.
            moderator.page.get_by_role("status").filter(has_text=name).wait_for()
            assert (
                "is now approved"
                in moderator.page.get_by_role("status").filter(has_text=name).inner_text()
            )
        assert instance.catalogue.get_upload(None, v2).status == "approved"
        moderator.go("/moderation/audit")
        moderator.audit("moderation-audit")
        moderator.go("/moderation/reports")
        moderator.audit("moderation-reports")

        # --- the public finds it: search (typing, HTMX), tag page, feed
        public.go("/search")
        public.page.get_by_label("Words to find in titles, descriptions and file names").type(
            "surface temp", delay=30
        )
        hit = public.page.locator("#search-results a", has_text="Sea surface temperature")
        hit.first.wait_for()
        assert "q=surface%20temp" in public.page.url  # the URL follows the search
        public.audit("search")
        public.go("/tags/climate")
        assert public.page.locator("a", has_text="Sea surface temperature, daily").count() == 1
        public.audit("tag")
        feed = public.page.request.get(base + "/feeds/tags/climate.rss")
        items = ET.fromstring(feed.body()).findall("channel/item")
        assert [i.findtext("link") for i in items] == [f"{base}/uploads/{v2}"]

        public.go("/login")
        public.audit("login")
        public.go("/")
        public.audit("home")
        public.go("/datasets")
        public.audit("datasets")
        public.go("/datasets/sea-surface-temperature-daily")
        public.audit("dataset")
        public.go(f"/uploads/{v2}")
        public.audit("upload")
        assert public.page.locator("figure.chart svg").count() == 1
        # Into a folder of the file list: HTMX swaps the list, the page stays.
        public.page.evaluate("window.stayed = true")
        public.page.locator("#files tr.folder a", has_text="data").click()
        public.page.get_by_text("1 file in sst-daily/data/").wait_for()
        assert public.page.evaluate("window.stayed === true")
        assert "values.csv" in public.page.locator("#files").inner_text()

        # --- download the .torrent and check it with libtorrent
        with public.page.expect_download() as download:
            public.page.get_by_role("link", name="Download .torrent").click()
        path = tmp_path / "downloaded.torrent"
        download.value.save_as(path)
        got = lt.torrent_info(lt.bdecode(path.read_bytes())).info_hashes()
        assert got.v1.to_bytes().hex() == v1
        assert got.v2.to_bytes().hex() == v2
        assert path.read_bytes() == torrent

        # --- dark theme and a phone-sized screen
        dark_ctx = chromium.new_context(color_scheme="dark")
        dark = Watched(dark_ctx, base)
        dark.go("/datasets/sea-surface-temperature-daily")
        dark.audit("dataset-dark")
        dark.go(f"/uploads/{v2}")
        dark.audit("upload-dark")
        phone_ctx = chromium.new_context(viewport={"width": 360, "height": 740})
        phone = Watched(phone_ctx, base)
        for path_, name in (("/", "home-phone"), (f"/uploads/{v2}", "upload-phone")):
            phone.go(path_)
            width = phone.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{name} scrolls sideways ({width}px)"
            phone.audit(name)

        for watched in (admin, archivist, public, moderator, dark, phone):
            assert watched.problems == []
        for ctx in (admin_ctx, archivist_ctx, public_ctx, moderator_ctx, dark_ctx, phone_ctx):
            ctx.close()


def test_works_without_javascript(chromium, make_settings, tmp_path):
    """Log in, add a torrent with the plain file input, search: no JavaScript at all."""
    with live_server(make_settings) as (base, app):
        instance = app.state.instance
        owner = make_user(instance, "nojs", Role.uploader)
        dataset = make_dataset(instance, owner, title="Bird counts", slug="bird-counts")
        torrent_path = tmp_path / "birds.torrent"
        torrent_path.write_bytes(sample_torrent(tmp_path, "birds", seed="nojs"))

        context = chromium.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(base + "/login")
        fill_label(page, "Name", "nojs")
        fill_label(page, "Password", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{base}/publish?dataset={dataset.slug}")
        page.get_by_label(".torrent file").set_input_files(str(torrent_path))
        page.get_by_role("button", name="Publish").click()
        page.wait_for_url(re.compile(r".*/uploads/[0-9a-f]{64}$"))
        assert "birds" in page.locator("h1").inner_text()
        page.goto(base + "/search?q=bird")
        assert page.locator('#search-results a.title[href="/datasets/bird-counts"]').count() == 1
        page.goto(base + "/datasets/bird-counts")
        assert page.locator("a", has_text="birds").count() >= 1
        context.close()
