"""Fixtures for console tests under AppTest: settings pointing at the test's database, or at none,
and the console signed in as a user of a role."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from inkwell_settings import get_settings
from tests.support.console import APP, make_user, signed_in_app


@pytest.fixture
def console_env(database_url, console_database_url, monkeypatch):
    """The console on the test's database, logged in as its own role (inkwell_console) as under
    ./run, with the offline model (no endpoint configured). Sessions are started for signed-in
    tests on the owner's connection (TEST_OWNER_DATABASE_URL, tests/support/console.py)."""
    monkeypatch.setenv("DATABASE_URL", console_database_url)
    monkeypatch.setenv("TEST_OWNER_DATABASE_URL", database_url)
    monkeypatch.delenv("INKWELL_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("INKWELL_LLM_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def database_down(monkeypatch, tmp_path):
    """The console pointed at a socket folder where no server listens: the database is down."""
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@/postgres?host={tmp_path}&connect_timeout=1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def console_as(console_env, db) -> Callable[..., AppTest]:
    """console_as(role="operator", page=None, script=APP, user=None, **user_fields) -> an AppTest
    signed in as a new user of that role (an operator by default: sees every request and may act on
    all), not run yet. `user=` signs in as an existing user; the user is in
    `at.session_state["signed_in_user"]`."""

    def open_console(role: str = "operator", page: str | None = None, *, script: str = APP, user=None, **fields) -> AppTest:
        return signed_in_app(user or make_user(db, role, **fields), page, script=script)

    return open_console
