"""Posts in a real browser: the author opens a post by its link, publishes it, and deletes it after
confirming; the page says so each time."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.integration.test_posts_actions import post_by, status_of
from tests.support.console import SLOW_VIEW_MS, make_user, sign_in_in_browser

pytestmark = pytest.mark.timeout(150)


def test_the_author_publishes_a_post_and_deletes_it_after_confirming(console, page: Page, db, database_url):
    ana = make_user(db, "editor", display_name="Ana Lima")
    post_id = post_by(db, database_url, ana)
    page.goto(f"{console}/Posts?post={post_id}")
    sign_in_in_browser(page, ana.username)

    expect(page.get_by_role("heading", name="Composting indoors")).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(page.get_by_text("by Ana Lima")).to_be_visible()
    expect(page.get_by_role("button", name="Download .md")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "posts_actions.png", full_page=True)

    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("“Composting indoors” is published.")).to_be_visible()
    assert status_of(db, post_id) == "published"

    page.get_by_role("button", name="Delete").click()  # opens the question; deletes nothing yet
    expect(page.get_by_text("This cannot be undone")).to_be_visible()
    assert status_of(db, post_id) == "published"
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_text("Deleted “Composting indoors”.")).to_be_visible()
    expect(page.get_by_text("No posts yet.")).to_be_visible()
    assert status_of(db, post_id) is None
