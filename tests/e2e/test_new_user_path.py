"""The new user's path, from a fresh database as `./run` leaves it, in a real browser: the first
admin signs in (only the sign-in form before that), submits without a top-up, watches History fill
in by itself while the job finishes, reloads and stays signed in, and shares the request's link
with a colleague (who opens it) and with someone of another organization (who is refused)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from db.people import ensure_first_admin
from db.requests import list_recent_requests
from inkwell_settings import get_settings
from tests.conftest import wait_for
from tests.e2e.conftest import SCREENSHOTS
from tests.support.console import PASSWORD, SLOW_VIEW_MS, make_user, sign_in_in_browser

pytestmark = pytest.mark.timeout(240)

SHOTS = SCREENSHOTS / "new_user_path"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def session_cookie(page: Page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == "inkwell_session"), None)


def sign_in(page: Page, username: str) -> None:
    """The form, then the one trip through the cookie route, back on the same page signed in."""
    sign_in_in_browser(page, username)
    wait_for(lambda: session_cookie(page) is not None, timeout=15)
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out")).to_be_visible(timeout=SLOW_VIEW_MS)


def open_as(browser: Browser, url: str, username: str) -> Page:
    """A colleague's own browser: the link first, then the sign-in form, then the linked page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    colleague = context.new_page()
    colleague.goto(url)
    sign_in(colleague, username)
    return colleague


def test_a_new_user_goes_from_a_fresh_install_to_a_shared_link(console, browser, page, start_worker, llm_server, db):
    ensure_first_admin(db, password=PASSWORD, starting_credits=get_settings().starting_credits)  # as ./run does

    page.goto(console)
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    shot(page, "01_sign_in")

    sign_in(page, "admin")
    cookie = session_cookie(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax", cookie
    navigation = page.get_by_test_id("stSidebarNav")
    expect(navigation.get_by_role("link").first).to_have_accessible_name("Home")
    expect(page.get_by_text("Each request costs 1 credit · Default has 1,000 credits left.")).to_be_visible()
    shot(page, "02_home")

    page.get_by_label("Topic").fill("composting in small apartments")
    page.get_by_role("button", name="Request titles").click()
    expect(page.get_by_text("Queued: titles for “composting in small apartments”")).to_be_visible()
    expect(page.get_by_test_id("stAlert").filter(has_text="Not enough credits")).to_have_count(0)

    navigation.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_text("No finished requests yet")).to_be_visible()
    shot(page, "03_history_empty")

    start_worker()  # the job runs and finishes while History is on screen; nobody clicks
    table = page.get_by_test_id("stDataFrame")
    expect(table).to_be_visible(timeout=20_000)
    [request] = list_recent_requests(db)
    assert request.status == "succeeded"
    shot(page, "04_history_filled_in_by_itself")

    page.reload()
    expect(page.get_by_role("heading", name="History", exact=True)).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_have_count(0)

    link = f"{console}/History?request={request.id}"
    page.goto(link)
    expect(page.get_by_text("Event timeline")).to_be_visible(timeout=SLOW_VIEW_MS)
    shot(page, "05_request_link")

    make_user(db, "editor", display_name="Bo Lind", username="bo", organization="Default")
    colleague = open_as(browser, link, "bo")
    expect(colleague.get_by_text("Event timeline")).to_be_visible(timeout=SLOW_VIEW_MS)
    # The data grid also holds the topic in hidden cells: look for it where it is shown.
    expect(colleague.get_by_text("composting in small apartments").filter(visible=True).first).to_be_visible()
    shot(colleague, "06_colleague_opens_the_link")

    make_user(db, "editor", display_name="Cy", username="cy", organization="Elsewhere")
    outsider = open_as(browser, link, "cy")
    expect(outsider.get_by_text("This request is not one you can see")).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(outsider.get_by_text("composting in small apartments")).to_have_count(0)
    shot(outsider, "07_other_organization_refused")

    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_be_visible(timeout=SLOW_VIEW_MS)
