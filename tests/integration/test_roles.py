"""What each role sees and may do in the console, under AppTest against a real database: analysts
read, editors act on their own requests and read their colleagues', admins manage people.

The pages only hide what a role cannot do; the tests of the data layer prove the database refuses it.
"""

from __future__ import annotations

import uuid

import pytest
from streamlit.testing.v1 import AppTest

from console_ui import SIGNED_IN_KEY
from db import sites
from db.people import User, acting_as, authenticate, get_user
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.site_build import site_definition_from, submit_site_build
from queue_tasks.submit import submit_requests
from tests.support.console import APP, PASSWORD, ROOT, make_user, signed_in_app

HISTORY, LIVE, SUBMIT, ADMIN = "pages/3_History.py", "pages/2_Live.py", "pages/1_Submit.py", "pages/7_Admin.py"


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def submit_as(db, user: User, topic: str) -> uuid.UUID:
    """A request submitted by `user` signed in, as the console does it."""
    with acting_as(db, user):
        [request_id] = submit_requests(db, "titles", [TitlesInput(topic=topic)], requested_by=user.display_name)
    return request_id


def end(db, request_id: uuid.UUID, status: str = "failed") -> None:
    """Its job starts and ends with `status`, as a worker's last attempt does."""
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = %s, attempts = attempts + 1 WHERE id = %s", (status, job_id))


def history_topics(at: AppTest) -> list[str]:
    return sorted(next(d.value for d in at.dataframe if "Topic" in d.value.columns)["Topic"])


def open_history(user: User, request_id: uuid.UUID | None = None) -> AppTest:
    at = signed_in_app(user, HISTORY)
    if request_id:
        at.query_params["request"] = str(request_id)
    at.run()
    assert not at.exception
    return at


def button_labels(at: AppTest) -> list[str]:
    return [b.label for b in at.main.button]


# --- analysts ---


def test_an_analyst_sees_the_latest_requests_but_no_form_to_submit(console_env, db):
    submit_requests(db, "titles", [TitlesInput(topic="urban beekeeping")], requested_by="Ana")
    at = signed_in_app(make_user(db, "analyst")).run()
    assert not at.exception
    assert "urban beekeeping" in texts(at.markdown)
    assert not at.text_area and "Request titles" not in button_labels(at)

    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(SUBMIT)  # not in an analyst's navigation

    # Opened on its own (a stale bookmark, a script), the page still refuses.
    at = signed_in_app(make_user(db, "analyst"), script=str(ROOT / SUBMIT)).run()
    assert texts(at.info) == "This page is for editors, operators and admins. You are signed in as an analyst."
    assert not at.selectbox and not at.text_area


def test_an_analyst_gets_no_cancel_on_live_and_no_retry_or_bulk_actions_on_history(console_env, db):
    editor = make_user(db, "editor", display_name="Eve")
    waiting = submit_as(db, editor, "still waiting")
    failed = submit_as(db, editor, "went badly")
    end(db, failed)
    analyst = make_user(db, "analyst")

    at = signed_in_app(analyst, LIVE).run()
    assert "still waiting" in texts(at.markdown)
    assert button_labels(at) == []

    at = open_history(analyst, failed)
    assert history_topics(at) == ["went badly"]
    assert "Retry this request" not in button_labels(at)
    assert not [label for label in button_labels(at) if "selected" in label or "matching" in label]
    assert "Read-only: analysts do not cancel or retry." in texts(at.caption)
    assert [b.label for b in at.get("download_button")] == ["Export CSV"], "analysts export"
    assert get_request(db, waiting).status == "queued"


# --- editors ---


def test_an_editors_history_shows_a_colleagues_request_without_actions_and_no_other_organizations(console_env, db):
    ana = make_user(db, "editor", display_name="Ana", organization="Acme")
    ben = make_user(db, "editor", display_name="Ben", organization="Acme")
    cy = make_user(db, "editor", display_name="Cy", organization="Globex")
    mine, colleagues, outsiders = submit_as(db, ana, "ana's topic"), submit_as(db, ben, "ben's topic"), submit_as(db, cy, "cy's topic")
    for request_id in (mine, colleagues, outsiders):
        end(db, request_id)

    at = open_history(ana)
    assert history_topics(at) == ["ana's topic", "ben's topic"]
    assert not [label for label in button_labels(at) if "selected" in label or "matching" in label], "no bulk actions"

    at = open_history(ana, colleagues)
    assert "ben's topic" in texts(at.markdown)
    assert "Retry this request" not in button_labels(at)
    assert "a colleague's request" in texts(at.caption)

    at = open_history(ana, mine)
    assert "Retry this request" in button_labels(at)
    at.button(key="detail_retry").click().run()
    assert not at.exception
    assert get_request(db, mine).status == "queued"

    at = open_history(ana, outsiders)
    assert "This request is not one you can see: it belongs to another organization" in texts(at.warning)
    assert "cy's topic" not in texts(at.markdown)


def test_an_editors_live_page_offers_cancel_on_their_own_requests_only(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    ben = make_user(db, "editor", display_name="Ben")
    mine, colleagues = submit_as(db, ana, "ana's topic"), submit_as(db, ben, "ben's topic")

    at = signed_in_app(ana, LIVE).run()
    assert "ana's topic" in texts(at.markdown) and "ben's topic" in texts(at.markdown)
    assert [b.key for b in at.main.button] == [f"cancel_{mine}"]
    at.button(key=f"cancel_{mine}").click().run()
    assert get_request(db, mine).status == "cancelled"
    assert get_request(db, colleagues).status == "queued"


def test_an_editor_promoting_a_colleagues_site_build_is_refused_with_a_message(console_env, db):
    ana, ben = make_user(db, "editor", display_name="Ana"), make_user(db, "editor", display_name="Ben")
    definition = site_definition_from(
        {"site": "Acme Bakery", "business": {"business_type": "bakery"}, "routes": [{"path": "/", "sections": [{"template": "hero"}]}]}
    )
    with acting_as(db, ben):
        built = submit_site_build(db, definition, requested_by=ben.display_name)
    for request_id in built.request_ids:
        end(db, request_id, "succeeded")

    at = signed_in_app(ana, "pages/6_Site_builds.py").run()
    at.button(key=f"promote_{built.batch_id}").click().run()
    assert not at.exception
    assert "Only who started this build, an operator or an admin can promote or roll it back" in texts(at.toast)
    assert sites.list_promotions(db, built.batch_id) == []


def test_an_editor_may_not_open_the_admin_page(console_env, db):
    at = signed_in_app(make_user(db, "editor"), ADMIN).run()
    assert not at.exception
    assert texts(at.info) == "This page is for operators and admins. You are signed in as an editor."
    assert not at.dataframe and not at.tabs


# --- operators and admins ---


def test_an_operator_sees_the_audit_log_and_nothing_else_of_the_admin_page(console_env, db):
    make_user(db, "editor", username="eve")
    at = signed_in_app(make_user(db, "operator"), ADMIN).run()
    assert not at.exception
    assert not at.tabs and not at.text_input
    [log] = at.dataframe
    entries = log.value
    assert {"user created", "organization created"} <= set(entries["Action"])
    assert "eve" in "\n".join(entries["Details"])
    assert list(entries.columns) == ["When", "Who", "Organization", "Action", "Target", "Details"]


def admin_page(db) -> AppTest:
    at = signed_in_app(make_user(db, "admin", display_name="Ada", username="ada"), ADMIN).run()
    assert not at.exception
    assert [tab.label for tab in at.tabs] == ["Users", "Organizations", "Audit log"]
    return at


def test_an_admin_creates_a_user_who_can_then_sign_in(console_env, db):
    at = admin_page(db)
    at.text_input(key="new_user_username").input("Bo.Lind")
    at.text_input(key="new_user_display_name").input("Bo Lind")
    at.selectbox(key="new_user_role").select("analyst")
    at.text_input(key="new_user_password").input("a long enough passphrase")
    at.button(key="new_user_submit").click().run()
    assert not at.exception
    assert "Created bo\\.lind (analyst, Acme)." in texts(at.success)
    assert "bo.lind" in list(at.dataframe[0].value["Username"]), "the list shows the new user at once"

    signing_in = AppTest.from_file(APP, default_timeout=30).run()
    signing_in.text_input(key="sign_in_username").input("bo.lind")
    signing_in.text_input(key="sign_in_password").input("a long enough passphrase")
    signing_in.button(key="sign_in_submit").click().run()
    assert not signing_in.exception
    assert signing_in.session_state[SIGNED_IN_KEY].display_name == "Bo Lind"
    assert texts(signing_in.sidebar.caption) == "Analyst · Acme"


def test_a_user_created_without_a_password_gets_one_generated_and_shown_once(console_env, db):
    at = admin_page(db)
    at.text_input(key="new_user_username").input("cy")
    at.text_input(key="new_user_display_name").input("Cy")
    at.button(key="new_user_submit").click().run()
    message = texts(at.success)
    assert "Their password (shown only now):" in message
    password = message.split("`")[1]
    assert authenticate(db, "cy", password).role == "editor"
    at.run()
    assert "Their password" not in texts(at.success), "shown once"


def test_a_weak_password_or_a_taken_username_is_refused_with_the_reason(console_env, db):
    make_user(db, "editor", username="eve")
    at = admin_page(db)
    at.text_input(key="new_user_username").input("dan")
    at.text_input(key="new_user_display_name").input("Dan")
    at.text_input(key="new_user_password").input("short")
    at.button(key="new_user_submit").click().run()
    assert "Nothing was created. The password is too short: at least 10 characters." in texts(at.error)

    at.text_input(key="new_user_username").input("EVE")
    at.text_input(key="new_user_display_name").input("Another Eve")
    at.button(key="new_user_submit").click().run()
    assert "Nothing was created. The username 'eve' is taken." in texts(at.error)


def test_an_admin_changes_a_role_deactivates_and_resets_a_password(console_env, db):
    eve = make_user(db, "editor", username="eve")
    at = admin_page(db)
    at.selectbox(key="admin_user").select(eve.id).run()
    at.selectbox(key=f"admin_role_{eve.id}").select("operator").run()
    at.button(key="admin_change_role").click().run()
    assert "eve is now operator." in texts(at.success)
    assert get_user(db, eve.id).role == "operator"

    at.button(key="admin_deactivate").click().run()
    assert "eve is deactivated: they can no longer sign in." in texts(at.success)
    assert authenticate(db, "eve", PASSWORD) is None

    at.button(key="admin_reactivate").click().run()
    at.button(key="admin_reset_password").click().run()
    message = texts(at.success)
    new_password = message.split("`")[1]
    assert authenticate(db, "eve", PASSWORD) is None
    assert authenticate(db, "eve", new_password).id == eve.id


def test_an_admin_creates_an_organization_and_tops_up_its_credits(console_env, db):
    at = admin_page(db)
    at.text_input(key="new_organization_name").input("Globex")
    at.button(key="new_organization_submit").click().run()
    assert "Created the organization Globex." in texts(at.success)

    balances = at.dataframe[1].value.set_index("Organization")
    assert balances.loc["Globex", "Credit balance"] == 0

    at.selectbox(key="top_up_organization").select("Globex")  # by its label
    at.number_input(key="top_up_credits").set_value(250)
    at.button(key="top_up_submit").click().run()
    assert not at.exception
    assert "Added 250 credits to Globex: the balance is now 250." in texts(at.success)
    assert db.execute("SELECT credit_balance FROM inkwell.organizations WHERE name = 'Globex'").fetchone() == (250,)
    audit = at.dataframe[-1].value
    [top_up] = [row for row in audit.to_dict("records") if "top" in row["Action"] and row["Target"] == "organization Globex"]
    assert (top_up["Who"], "credits: 250" in top_up["Details"]) == ("ada", True)
