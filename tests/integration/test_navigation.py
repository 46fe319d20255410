"""The navigation is built from the signed-in role: Home first, only the pages the role can use;
before sign-in, the sign-in form alone (every page stays registered so a link survives sign-in)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.console import APP, make_user, signed_in_app

ALL_PAGES = {
    "pages/1_Submit.py", "pages/2_Live.py", "pages/3_History.py", "pages/4_Workers_and_queues.py",
    "pages/5_Posts.py", "pages/6_Site_builds.py", "pages/7_Admin.py", "pages/8_API_tokens.py",
}
LISTED = {
    "editor": {"pages/1_Submit.py", "pages/2_Live.py", "pages/3_History.py", "pages/5_Posts.py", "pages/6_Site_builds.py",
               "pages/8_API_tokens.py"},
    "analyst": {"pages/2_Live.py", "pages/3_History.py", "pages/4_Workers_and_queues.py", "pages/5_Posts.py",
                "pages/6_Site_builds.py", "pages/8_API_tokens.py"},
    "operator": ALL_PAGES,
    "admin": ALL_PAGES,
}


def can_open(at: AppTest, page: str) -> bool:
    try:
        at.switch_page(page)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("role", sorted(LISTED))
def test_each_role_is_offered_exactly_the_pages_it_can_use_with_home_first(console_env, db, role):
    at = signed_in_app(make_user(db, role)).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Inkwell"], "Home opens first"
    assert {page for page in ALL_PAGES if can_open(at, page)} == LISTED[role]
    for page in LISTED[role]:
        at.switch_page(page).run()
        assert not at.exception, page
        assert not any("This page is for" in i.value for i in at.info), f"{page} is listed but refuses {role}s"


def test_before_sign_in_every_page_shows_the_sign_in_form_and_no_navigation(console_env):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    assert not at.sidebar.button, "no account, no sign-out"
    at.switch_page("pages/3_History.py").run()
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
