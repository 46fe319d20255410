"""Times in a real browser whose zone is Kolkata (UTC+05:30): Streamlit hears the browser's zone,
Home says how long ago a request came, and hovering its tooltip shows the exact time there."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.e2e.conftest import SCREENSHOTS
from tests.integration.test_overview import finished
from tests.support.console import make_user, sign_in_in_browser

pytestmark = pytest.mark.timeout(150)


def test_a_viewer_in_kolkata_reads_relative_times_and_the_exact_local_time_on_hover(console, browser: Browser, db):
    [request_id] = submit_requests(db, "titles", [TitlesInput(topic="winter gardening")], requested_by="Ana")
    created = get_request(db, request_id).created_at.astimezone(ZoneInfo("Asia/Kolkata"))
    finished(db, "succeeded", db.execute("SELECT now() - interval '2 minutes'").fetchone()[0])
    operator = make_user(db, "operator", display_name="Ana")

    context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="Asia/Kolkata")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(console)
        sign_in_in_browser(page, operator.username)
        when = page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"^Ana · (just now|\d+ (s|min) ago)"))
        expect(when.first).to_be_visible()
        # The list refreshes itself ("just now" becomes "5 s ago"), which can close an open tooltip:
        # hover again until the exact time has been read.
        for attempt in range(5):
            when.first.get_by_test_id("stTooltipHoverTarget").hover()
            try:
                expect(page.get_by_test_id("stTooltipContent")).to_have_text(f"{created:%Y-%m-%d %H:%M:%S} IST", timeout=3_000)
                break
            except AssertionError:
                if attempt == 4:
                    raise
                page.mouse.move(0, 0)

        page.get_by_role("tab", name="Overview").click()
        chart = page.get_by_test_id("stVegaLiteChart").first
        expect(chart).to_be_visible()
        chart.scroll_into_view_if_needed()
        chart.screenshot(path=SCREENSHOTS / "times_in_kolkata_overview_chart.png")
    finally:
        context.close()
