"""In a real browser, the counts beside Live and History in the navigation follow the queue by
themselves: no click, no reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.support.console import SLOW_VIEW_MS, make_user, sign_in_in_browser

pytestmark = pytest.mark.timeout(150)


def test_the_navigation_counts_change_while_the_page_is_open(console, page: Page, db):
    user = make_user(db, "operator", display_name="Ana")
    page.goto(console)
    sign_in_in_browser(page, user.username)
    navigation = page.get_by_test_id("stSidebarNav")
    navigation.get_by_role("link", name="Posts", exact=True).click()
    expect(page.get_by_role("heading", name="Posts", exact=True)).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(navigation.get_by_text("Live", exact=True)).to_be_visible()

    request_id = submit_titles_request(db, TitlesInput(topic="urban beekeeping"), requested_by="Ana")
    expect(navigation.get_by_text("Live · 1 queued", exact=True)).to_be_visible(timeout=12_000)

    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (job_id,))
    expect(navigation.get_by_text("History · 1 failed in 1 h", exact=True)).to_be_visible(timeout=12_000)
    expect(navigation.get_by_text("Live", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Posts", exact=True)).to_be_visible()
