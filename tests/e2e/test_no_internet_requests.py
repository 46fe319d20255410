"""An offline install makes no request to the internet: a walk through every page, in a real browser,
records each request the pages make and finds none to a host other than the console's own."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, Route, expect

from console_ui import CONSOLE_PAGES
from tests.e2e.conftest import SCREENSHOTS
from tests.integration.test_overview import finished
from tests.support.console import SLOW_VIEW_MS, make_user, sign_in_in_browser

pytestmark = pytest.mark.timeout(180)

# Addresses that never leave the browser.
LOCAL_SCHEMES = {"data", "blob", "about"}


def page_titles() -> list[str]:
    """The sidebar's names of the pages after Home, as st.Page derives them from the file names."""
    return [path.split("/", 1)[1].removesuffix(".py").split("_", 1)[1].replace("_", " ") for path, _, _ in CONSOLE_PAGES]


def test_a_walk_through_every_page_requests_nothing_but_the_console_itself(console, page: Page, db):
    own_host = urlsplit(console).netloc
    elsewhere: list[str] = []

    def record(request: Request) -> None:
        address = urlsplit(request.url)
        if address.scheme not in LOCAL_SCHEMES and address.netloc != own_host:
            elsewhere.append(request.url)

    def refuse(route: Route) -> None:
        # Recorded above; refused at once, so an offline machine's wait for an answer is not simulated.
        route.abort()

    page.context.on("request", record)
    page.context.route(lambda url: urlsplit(url).scheme not in LOCAL_SCHEMES and urlsplit(url).netloc != own_host, refuse)

    admin = make_user(db, "admin", display_name="Ada")  # every page is listed for admins
    finished(db, "succeeded", db.execute("SELECT now() - interval '2 minutes'").fetchone()[0])  # the Overview draws its charts
    page.goto(console)
    sign_in_in_browser(page, admin.username)
    page.get_by_role("tab", name="Overview").click()
    expect(page.get_by_role("heading", name="Requests by status")).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=SLOW_VIEW_MS)

    navigation = page.get_by_test_id("stSidebarNav")
    for title in page_titles():
        # A link may carry counts after its name ("Live · 2 running").
        navigation.get_by_role("link", name=re.compile(f"^{re.escape(title)}( ·|$)")).click()
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=SLOW_VIEW_MS)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=SCREENSHOTS / f"walk_{title.replace(' ', '_')}.png")
    navigation.get_by_role("link", name="Home", exact=True).click()
    expect(page.get_by_role("heading", name="Inkwell", exact=True)).to_be_visible(timeout=SLOW_VIEW_MS)
    page.reload()
    expect(page.get_by_role("heading", name="Inkwell", exact=True)).to_be_visible(timeout=SLOW_VIEW_MS)
    page.wait_for_load_state("networkidle")

    assert sorted(set(elsewhere)) == []
