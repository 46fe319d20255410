"""Every text a person types, on every page, goes through one cleaning (queue_tasks.models.clean_typed_text,
wrapped around every text field by console_ui) before any query: a NUL, a lone surrogate or a megabyte
typed into any field gets a clear message, never a traceback, and nothing half-written."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from queue_tasks.models import MAX_TYPED_CHARS, clean_typed_text
from queue_tasks.submit import SUBMIT_PAGE_KINDS
from tests.support.console import APP, make_user, signed_in_app

pytestmark = pytest.mark.timeout(600)

HOSTILE = {
    "NUL": "compost\x00ing tips",
    "lone surrogate": "compost\ud800ing tips",
    "1 MB": "x" * (1 << 20),
}

# (page, role, selectbox settings to reach more fields): every page with a text field.
SCREENS = [
    pytest.param(None, "editor", {}, id="home"),
    *(pytest.param("pages/1_Submit.py", "editor", {"submit_kind": kind}, id=f"submit-{kind}") for kind in SUBMIT_PAGE_KINDS),
    pytest.param("pages/3_History.py", "operator", {}, id="history"),
    pytest.param("pages/4_Workers_and_queues.py", "operator", {}, id="workers"),
    pytest.param("pages/7_Admin.py", "admin", {}, id="admin"),
]


def texts_of(at) -> str:
    return " ".join(str(e.value) for kind in ("error", "warning", "info", "success", "exception") for e in getattr(at, kind))


def typed_into_every_field(user, page, choices, keys: list[str], value: str):
    """`value` in every text field of the page, then the page run once. The value is put into the
    fields' state before the page runs: a lone surrogate cannot travel as a browser's widget value
    (Streamlit's messages are UTF-8, which it is not), and a browser (like AppTest's input) keeps a
    field to its max_chars; this reaches the fields as a hostile client or a bug would."""
    at = signed_in_app(user, page)
    for key, choice in choices.items():
        at.session_state[key] = choice
    for key in keys:
        at.session_state[key] = value
    return at.run()


@pytest.mark.parametrize("page, role, choices", SCREENS)
@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
def test_every_text_field_of_every_page_takes_hostile_text_without_a_traceback(console_env, db, page, role, choices, hostile):
    user = make_user(db, role)
    at = signed_in_app(user, page)
    for key, choice in choices.items():
        at.session_state[key] = choice
    at.run()
    assert not at.exception, at.exception
    keys = [field.key for field in [*at.text_input, *at.text_area]]
    assert keys and all(keys), "a page with text fields, each with a key"
    buttons = len(at.button)

    at = typed_into_every_field(user, page, choices, keys, HOSTILE[hostile])
    assert not at.exception, at.exception
    shown = texts_of(at)
    assert "Traceback" not in shown and "/work/" not in shown
    assert "removed" in shown or "characters long" in shown, "the field says what was done"

    # Then every button (form submissions, filters, actions) with those values in place.
    for index in range(buttons):
        again = typed_into_every_field(user, page, choices, keys, HOSTILE[hostile])
        if index >= len(again.button) or again.button[index].proto.disabled:
            continue
        label = again.button[index].label
        again.button[index].click().run()
        assert not again.exception, (label, again.exception)
        shown = texts_of(again)
        assert "Traceback" not in shown and "/work/" not in shown and "psycopg" not in shown, (label, shown)
    stored = db.execute("SELECT coalesce(string_agg(input::text, ''), '') FROM inkwell.requests").fetchone()[0]
    assert "\\u0000" not in stored and len(stored) < MAX_TYPED_CHARS


@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
def test_the_sign_in_form_takes_hostile_text_without_a_traceback(console_env, db, hostile):
    from tests.support.console import PASSWORD

    make_user(db, "editor", username="eve")
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["sign_in_username"] = at.session_state["sign_in_password"] = HOSTILE[hostile]
    at.run()
    assert not at.exception, at.exception
    at.button(key="sign_in_submit").click().run()
    assert not at.exception, at.exception
    assert "Wrong username or password." in texts_of(at)
    at.text_input(key="sign_in_username").input("eve")
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button(key="sign_in_submit").click().run()
    assert not at.exception and [t.value for t in at.title] != ["Sign in to Inkwell"]


def test_the_cleaning_removes_controls_and_surrogates_and_caps_the_size():
    assert clean_typed_text("a\x00b\ud800c\x1b") == ("abc", ["3 control or invalid characters were removed."])
    assert clean_typed_text("one\r\ntwo", multiline=True) == ("one\ntwo", [])
    assert clean_typed_text("one\ntwo") == ("one two", ["1 control or invalid character was removed."])
    text, notes = clean_typed_text("y" * 600, max_chars=500)
    assert text == "y" * 500 and notes == ["It was 600 characters long: only the first 500 are used."]
    assert clean_typed_text("محتوى عربي 🌱") == ("محتوى عربي 🌱", [])
