"""Fixtures for console tests under AppTest: settings pointing at the test's database, or at none."""

from __future__ import annotations

import pytest

from inkwell_settings import get_settings


@pytest.fixture
def console_env(database_url, monkeypatch):
    """The console on the test's database, with the offline model (no endpoint configured)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
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
