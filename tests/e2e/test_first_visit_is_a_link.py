"""A freshly started console whose first visitor opens a page's link (a bookmark, a shared
request) before signing in: only the sign-in form, no page list (Streamlit would otherwise list the
pages/ folder, the home page as "app"), and after sign-in the linked page with Inkwell's navigation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.console import SLOW_VIEW_MS, make_user, sign_in_in_browser

pytestmark = pytest.mark.timeout(180)


def test_the_first_visit_to_a_fresh_console_through_a_pages_link_lists_no_pages_before_sign_in(console, page, db):
    user = make_user(db, role="editor")

    page.goto(f"{console}/Posts")  # the server's first session, straight to a page
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_role("link", name="app", exact=True)).to_have_count(0)

    sign_in_in_browser(page, user.username)
    navigation = page.get_by_test_id("stSidebarNav")
    expect(navigation.get_by_role("link").first).to_have_accessible_name("Home")
    expect(navigation.get_by_role("link", name="app", exact=True)).to_have_count(0)
    expect(navigation.get_by_role("link", name="Admin", exact=True)).to_have_count(0)  # not an editor's
    expect(page.get_by_role("heading", name="Posts").first).to_be_visible(timeout=SLOW_VIEW_MS)
