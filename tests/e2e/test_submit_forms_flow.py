"""Submit forms in a real browser: after a partial success only the refused lines stay in the paste
box; the site build form is filled by "Use this example" and empties once queued, on its own tab."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_console_flows import sign_in

pytestmark = pytest.mark.timeout(120)


def test_pasted_topics_leave_only_the_refused_lines_in_the_box(console, page: Page, db):
    page.goto(f"{console}/Submit")
    sign_in(page, db, "editor")
    page.get_by_role("tab", name="Paste many topics").click()
    box = page.get_by_label("Topics, one per line")
    box.fill("urban beekeeping\nab\nwinter gardening")
    page.get_by_role("button", name="Submit these topics").click()

    expect(page.get_by_test_id("stAlert").filter(has_text="Queued 2 requests. 1 line refused")).to_be_visible()
    expect(page.get_by_text("1 line refused — it is left in the box: fix it and submit again:")).to_be_visible()
    # st.dataframe draws on a canvas; its accessible table holds the same cells.
    expect(page.get_by_test_id("stDataFrame").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("stDataFrame").locator("tbody tr td").nth(1)).to_have_text("ab")
    expect(box).to_be_visible()  # its tab still open
    expect(box).to_have_value("ab")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # the grid's canvas paints after its table is there
    page.screenshot(path=SCREENSHOTS / "submit_refused_lines.png", full_page=True)


def test_the_site_build_form_takes_the_example_and_empties_once_queued(console, page: Page, db):
    page.goto(f"{console}/Submit")
    sign_in(page, db, "editor")
    page.get_by_test_id("stSelectbox").filter(has_text="Kind of request").click()
    page.get_by_role("option", name="Site build").click()
    page.get_by_role("tab", name="Build with a form").click()
    expect(page.get_by_text("At most 1 MB and 200 sections").last).to_be_visible()
    page.get_by_role("button", name="Use this example").click()
    site_name = page.get_by_label("Site name")
    expect(site_name).to_have_value("Acme Bakery")

    page.get_by_role("button", name="Build the site").last.click()
    expect(page.get_by_text("Queued 4 sections.")).to_be_visible()
    expect(site_name).to_have_value("")
