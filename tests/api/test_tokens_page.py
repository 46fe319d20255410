"""The console's API tokens page (AppTest): create a token shown once, see its last use, revoke it;
admins revoke anyone's; the sidebar links the API docs."""

from __future__ import annotations

import pytest

from db.people import user_for_session
from inkwell_settings import get_settings
from tests.support.console import make_user, signed_in_app

PAGE = "pages/8_API_tokens.py"


@pytest.fixture
def console_env(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INKWELL_API_URL", "http://localhost:8502")
    monkeypatch.delenv("INKWELL_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("INKWELL_LLM_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _create(at, name: str):
    at.text_input(key="api_token_name").input(name)
    at.button[0].click()  # the form's Create token
    at.run()
    return at


def test_a_token_is_shown_once_works_and_is_revoked_at_once(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    at = signed_in_app(ana, PAGE).run()
    assert not at.exception
    assert "[:material/api: HTTP API docs](http://localhost:8502/api/docs)" in [m.value for m in at.sidebar.markdown]
    _create(at, "shop blog")
    assert not at.exception
    token = at.code[0].value
    assert "not shown again" in at.success[0].value
    assert user_for_session(db, token).id == ana.id
    stored = db.execute("SELECT kind, name, token_hash = sha256(convert_to(%s, 'UTF8')) FROM inkwell.sessions "
                        "WHERE name = 'shop blog'", (token,)).fetchone()
    assert stored == ("api", "shop blog", True)
    assert not db.execute("SELECT 1 FROM inkwell.sessions WHERE token_hash::text LIKE %s", (f"%{token}%",)).fetchone()

    at.run()  # shown once: gone on the next view
    assert not [c for c in at.code if c.value == token]
    assert any("last used" in c.value for c in at.caption)
    at.button(key=next(b.key for b in at.button if (b.key or "").startswith("revoke_token_"))).click().run()
    assert user_for_session(db, token) is None
    assert "revoked" in " ".join(m.value for m in at.markdown)


def test_an_empty_name_is_refused_and_others_tokens_are_hidden_but_admins_revoke_them(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    bea = make_user(db, "editor", display_name="Bea")
    admin = make_user(db, "admin", display_name="Ada")
    at = _create(signed_in_app(ana, PAGE).run(), "  ")
    assert "Name the token" in at.error[0].value
    _create(at, "ana's app")
    ana_token = at.code[0].value
    as_bea = signed_in_app(bea, PAGE).run()
    assert not [b for b in as_bea.button if (b.key or "").startswith("revoke_token_")]
    as_admin = signed_in_app(admin, PAGE).run()
    revoke = [b for b in as_admin.button if (b.key or "").startswith("revoke_token_")]
    assert len(revoke) == 1
    revoke[0].click().run()
    assert user_for_session(db, ana_token) is None
    assert db.execute("SELECT count(*) FROM inkwell.audit_log WHERE action = 'api_token.revoked'").fetchone()[0] == 1


def test_the_webhook_secret_is_made_once_per_user(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    at = signed_in_app(ana, PAGE).run()
    at.button(key="show_webhook_secret").click().run()
    first = at.code[-1].value
    assert first.startswith("whsec_")
    at.button(key="show_webhook_secret").click().run()
    assert at.code[-1].value == first
