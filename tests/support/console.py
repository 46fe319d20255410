"""Console tests sign in like people do: a user of a role in the test's database, and either an
AppTest whose session already holds that user under the key the sign-in gate reads
(console_ui.SIGNED_IN_KEY), or a browser page signed in through the real form.

The sign-in form itself is tested in tests/integration/test_sign_in.py; every other AppTest starts
signed in through `signed_in_app` (or the `console_as` fixture of tests/integration/conftest.py).
"""

from __future__ import annotations

import itertools
import os
import secrets
from pathlib import Path

import psycopg
from playwright.sync_api import Page, expect
from streamlit.testing.v1 import AppTest

from console_ui import SESSION_TOKEN_KEY, SIGNED_IN_KEY, SIGNED_IN_WITH_KEY
from db.credits import top_up
from db.people import User, acting_as, create_organization, create_user, ensure_first_admin, list_organizations, start_session
from inkwell_settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
# The home page is the main script, as under `streamlit run app.py`, so links between pages resolve.
APP = str(ROOT / "app.py")
PASSWORD = "correct horse battery staple"
DEFAULT_ORGANIZATION = "Acme"
# A new organization's balance here: plenty, so that tests about something else never run short.
TEST_CREDITS = 1_000_000
SLOW_VIEW_MS = 30_000
_numbers = itertools.count(1)


def first_admin(conn: psycopg.Connection) -> User:
    """The database's first admin (username "admin"), created as `./run` does when there is none.

    Accounts and organizations are created by an acting admin only (migration 0042)."""
    admin, _ = ensure_first_admin(conn, username="admin", password=PASSWORD)
    return admin


def organization_id(conn: psycopg.Connection, name: str = DEFAULT_ORGANIZATION, *, credits: int = TEST_CREDITS) -> int:
    """The organization of that name; created (with `credits`) when it does not exist yet."""
    for organization in list_organizations(conn):
        if organization["name"] == name:
            return organization["id"]
    with acting_as(conn, first_admin(conn)):
        new_id = create_organization(conn, name)
        if credits:
            top_up(conn, new_id, credits, note="test credits")
    return new_id


def make_user(
    conn: psycopg.Connection,
    role: str = "operator",
    *,
    display_name: str = "Ana",
    username: str | None = None,
    organization: str = DEFAULT_ORGANIZATION,
    password: str = PASSWORD,
) -> User:
    """A new active user of `role` in `organization`, who signs in with `password`.

    `conn`: the test's owner connection (autocommit), as the `db` fixture gives."""
    in_organization = organization_id(conn, organization)
    with acting_as(conn, first_admin(conn)):
        return create_user(
            conn,
            username=username or f"{role}{next(_numbers)}",
            display_name=display_name,
            role=role,
            organization_id=in_organization,
            password=password,
        )


def offline_user(role: str = "operator") -> User:
    """A user for tests whose database is down (nothing can be created there)."""
    return User(
        id=1, username="ana", display_name="Ana", role=role, organization_id=1,
        organization_name=DEFAULT_ORGANIZATION, active=True,
    )


def signed_in_app(user: User, page: str | None = None, *, script: str = APP) -> AppTest:
    """An AppTest of `script` (then `page`, when given) signed in as `user`, with a live session
    started for them on DATABASE_URL (as the sign-in form does); not run yet.

    When that database cannot be reached (the outage tests), the session holds a token the
    database never issued: it would act as nobody."""
    at = AppTest.from_file(script, default_timeout=30)
    at.session_state[SIGNED_IN_KEY] = user
    at.session_state[SESSION_TOKEN_KEY] = console_session(user)
    at.session_state[SIGNED_IN_WITH_KEY] = "password"
    if page:
        at.switch_page(page)
    return at


def console_session(user: User) -> str:
    """A live console session for `user`, started on the owner's connection (TEST_OWNER_DATABASE_URL
    when the console logs in as its own role, else DATABASE_URL)."""
    owner_url = os.environ.get("TEST_OWNER_DATABASE_URL") or get_settings().database_url
    try:
        with psycopg.connect(owner_url, autocommit=True, connect_timeout=2) as conn:
            return start_session(conn, user.id)
    except psycopg.OperationalError:
        return secrets.token_urlsafe(32)


def sign_in_in_browser(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the console's form in a real browser (the page shows the form)."""
    # The first view of a fresh console imports the whole app: allow for a busy machine.
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_be_visible(timeout=SLOW_VIEW_MS)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out")).to_be_visible(timeout=SLOW_VIEW_MS)
