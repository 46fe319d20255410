"""The sign-in gate under AppTest, against a real database: nothing before sign-in, one message for
any wrong credentials, the account in the sidebar, sign-out, and OpenID Connect through st.login."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from console_ui import SIGNED_IN_KEY
from db.people import acting_as, create_user, get_user, set_user_active, set_user_role
from db.requests import list_recent_requests
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.support.console import APP, PASSWORD, first_admin, make_user, organization_id, signed_in_app

PAGES = [None, "pages/1_Submit.py", "pages/2_Live.py", "pages/3_History.py", "pages/4_Workers_and_queues.py",
         "pages/5_Posts.py", "pages/6_Site_builds.py", "pages/7_Admin.py"]
AUTH = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-that-is-long-enough",
        "client_id": "inkwell",
        "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://id.example/.well-known/openid-configuration",
    }
}
ISSUER, SUBJECT = "https://id.example", "248289761001"


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def sign_in(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password)
    return at.button(key="sign_in_submit").click().run()


def signed_out_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    if page:
        at.switch_page(page)
    return at.run()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page or "home")
def test_no_page_shows_anything_but_the_sign_in_form_before_sign_in(console_env, db, page):
    submit_requests(db, "titles", [TitlesInput(topic="a secret launch plan")], requested_by="Ana")
    at = signed_out_app(page)
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    assert [w.key for w in at.text_input] == ["sign_in_username", "sign_in_password"]
    assert [b.key for b in at.button] == ["sign_in_submit"]
    assert not at.tabs and not at.dataframe and not at.metric and not at.get("progress")
    assert "a secret launch plan" not in texts(at.markdown) + texts(at.caption)
    assert SIGNED_IN_KEY not in at.session_state


def test_a_wrong_password_and_an_unknown_username_get_the_same_message(console_env, db):
    user = make_user(db, "editor")
    at = sign_in(signed_out_app(), user.username, "not the password at all")
    assert texts(at.error) == "Wrong username or password."
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    assert at.text_input(key="sign_in_username").value == user.username, "the username stays"
    assert at.text_input(key="sign_in_password").value == "", "the password does not"

    at = sign_in(at, "nobody-here", PASSWORD)
    assert texts(at.error) == "Wrong username or password."
    assert SIGNED_IN_KEY not in at.session_state
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]


def test_a_deactivated_account_cannot_sign_in(console_env, db):
    user = make_user(db, "editor")
    with acting_as(db, first_admin(db)):
        set_user_active(db, user.id, False)
    at = sign_in(signed_out_app(), user.username, PASSWORD)
    assert texts(at.error) == "Wrong username or password."
    assert SIGNED_IN_KEY not in at.session_state


def test_signing_in_shows_the_page_with_the_name_role_and_organization_in_the_sidebar(console_env, db):
    user = make_user(db, "editor", display_name="Eve Marsh", organization="Marketing")
    at = sign_in(signed_out_app(), user.username.upper(), PASSWORD)  # usernames ignore case
    assert not at.exception
    assert [t.value for t in at.title] == ["Inkwell"]
    assert "Eve Marsh" in texts(at.sidebar.markdown)
    assert texts(at.sidebar.caption) == "Editor · Marketing"
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    assert at.session_state[SIGNED_IN_KEY] == user
    assert "sign_in_password" not in at.session_state, "the password is not kept"

    at.switch_page("pages/3_History.py").run()
    assert [t.value for t in at.title] == ["History"], "the session stays signed in from page to page"


def test_signing_out_returns_to_the_sign_in_form_and_keeps_nothing_of_the_session(console_env, db):
    at = signed_in_app(make_user(db, "operator"), "pages/3_History.py").run()
    at.text_input(key="history_requester").input("somebody").run()
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    assert texts(at.info) == "You are signed out."
    assert SIGNED_IN_KEY not in at.session_state and "history_requester" not in at.session_state

    at.switch_page("pages/2_Live.py").run()
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]


def test_a_deactivated_account_is_signed_out_at_its_next_page_view(console_env, db):
    user = make_user(db, "editor")
    at = signed_in_app(user).run()
    assert [t.value for t in at.title] == ["Inkwell"]
    with acting_as(db, first_admin(db)):
        set_user_active(db, user.id, False)
    at.run()
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    assert "no longer active" in texts(at.info)


def test_a_role_changed_by_an_admin_ends_the_session_and_the_new_role_shows_at_the_next_sign_in(console_env, db):
    user = make_user(db, "editor")
    at = signed_in_app(user, "pages/1_Submit.py").run()
    assert at.selectbox(key="submit_kind")
    with acting_as(db, first_admin(db)):
        set_user_role(db, user.id, "analyst")
    at.run()
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    assert "changed your role" in texts(at.info)

    at = signed_in_app(get_user(db, user.id), "pages/1_Submit.py").run()
    assert "You are signed in as an analyst." in texts(at.info)
    assert texts(at.sidebar.caption).startswith("Analyst")


def test_requests_are_stored_with_the_signed_in_users_name_user_and_organization(console_env, db):
    user = make_user(db, "editor", display_name="Eve Marsh", organization="Marketing")
    at = signed_in_app(user).run()
    at.text_area[0].input("composting in small apartments")
    at.button(key="FormSubmitter:titles_form-Request titles").click().run()
    assert not at.exception
    [request] = list_recent_requests(db)
    assert request.requested_by == "Eve Marsh"
    row = db.execute("SELECT user_id, organization_id FROM inkwell.requests WHERE id = %s", (request.id,)).fetchone()
    assert row == (user.id, user.organization_id)


# --- OpenID Connect (st.login) ---


def linked_user(db, *, active: bool = True):
    organization = organization_id(db, "Acme")
    with acting_as(db, first_admin(db)):
        user = create_user(db, username="oidc-eve", display_name="Eve Marsh", role="editor", organization_id=organization,
                           password=None, oidc_issuer=ISSUER, oidc_subject=SUBJECT)
        if not active:
            set_user_active(db, user.id, False)
    return user


def oidc_app(claims: dict | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets.update(AUTH)
    at.user = {"is_logged_in": True, **claims} if claims else {"is_logged_in": False}
    return at.run()


def test_the_sign_in_form_offers_single_sign_on_only_when_auth_is_configured(console_env, db):
    assert [b.label for b in signed_out_app().button] == ["Sign in"]
    at = oidc_app(None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in", "Sign in with single sign-on"]


def test_an_identity_linked_to_an_account_opens_the_console_as_that_account(console_env, db):
    user = linked_user(db)
    at = oidc_app({"iss": ISSUER, "sub": SUBJECT, "email": "eve@example.com", "name": "Eve"})
    assert not at.exception
    assert [t.value for t in at.title] == ["Inkwell"]
    assert at.session_state[SIGNED_IN_KEY] == user
    assert texts(at.sidebar.caption) == "Editor · Acme"

    at.button(key="sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    assert at.user == {"is_logged_in": False}, "signing out also signs out of the identity provider"


@pytest.mark.parametrize("claims", [
    {"iss": ISSUER, "sub": "someone-else", "email": "mallory@example.com"},
    {"iss": "https://other-issuer.example", "sub": SUBJECT, "email": "mallory@example.com"},
], ids=["unknown subject", "same subject from another issuer"])
def test_an_identity_linked_to_no_account_is_refused_with_a_clear_message(console_env, db, claims):
    linked_user(db)
    at = oidc_app(claims)
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in to Inkwell"]
    # The address is escaped text, with a word joiner after "@" so the browser makes no mailto link of it.
    assert "signed you in as mallory@\u2060example\\.com, but no active Inkwell account is linked" in texts(at.error)
    assert [b.label for b in at.button] == ["Sign out of the identity provider"]
    assert SIGNED_IN_KEY not in at.session_state


def test_an_identity_linked_to_a_deactivated_account_is_refused(console_env, db):
    linked_user(db, active=False)
    at = oidc_app({"iss": ISSUER, "sub": SUBJECT, "email": "eve@example.com"})
    assert "no active Inkwell account is linked" in texts(at.error)
    assert SIGNED_IN_KEY not in at.session_state
