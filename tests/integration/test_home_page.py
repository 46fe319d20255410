"""The home page under Streamlit's AppTest, against a real database."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from db.requests import list_recent_requests
from inkwell_settings import get_settings
from tests.support.console import offline_user, signed_in_app


def all_markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_submitting_a_topic_queues_it_and_lists_it(console_as, db):
    at = console_as("editor").run()
    assert not at.exception
    assert any("No jobs yet" in i.value for i in at.info)
    at.text_area[0].input("composting in small apartments")
    at.button[0].click().run()

    assert not at.exception
    assert any("Queued" in s.value for s in at.success)
    requests = list_recent_requests(db)
    assert [(r.requested_by, r.input["topic"], r.status) for r in requests] == [
        ("Ana", "composting in small apartments", "queued")
    ]
    assert "composting in small apartments" in all_markdown(at)


def test_the_queued_line_stays_when_a_change_runs_the_page_again_and_goes_at_the_next_action(console_as, db):
    # The request starting changes the navigation's counts, which runs the whole page again: the
    # "Queued" line must not vanish then (and, vanishing, move the progress bars below it).
    from console_ui import CHANGE_RERUN_KEY

    at = console_as("editor").run()
    at.text_area[0].input("composting in small apartments")
    at.button[0].click().run()
    assert any("Queued: titles for" in s.value for s in at.success)
    assert at.text_area[0].value == ""  # the form starts again empty

    at.session_state[CHANGE_RERUN_KEY] = True  # what console_ui.rerun_for_changes sets before it reruns
    at.run()
    assert any("Queued: titles for" in s.value for s in at.success)

    at.run()  # a run the user caused
    assert not any("Queued: titles for" in s.value for s in at.success)


def test_invalid_topic_is_refused_with_the_reason_and_nothing_is_queued(console_as, db):
    at = console_as("editor").run()
    at.text_area[0].input("  a ")
    at.button[0].click().run()
    assert any("topic: must be at least 3 characters" in e.value for e in at.error)
    assert list_recent_requests(db) == []


def test_offline_model_banner_is_shown_in_full_to_admins_when_no_endpoint_is_configured(console_as):
    at = console_as("admin").run()
    assert any("Offline model in use" in i.value and "INKWELL_LLM_BASE_URL" in i.value for i in at.info)


def test_other_roles_get_one_short_line_about_the_offline_model(console_as):
    at = console_as("editor").run()
    assert not any("Offline model in use" in i.value for i in at.info)
    assert any("Offline model: results are quick built-in drafts" in c.value for c in at.caption)


def test_no_banner_when_an_endpoint_is_configured(console_as, monkeypatch):
    monkeypatch.setenv("INKWELL_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    get_settings.cache_clear()
    at = console_as("editor").run()
    assert not any("Offline model" in i.value for i in at.info)


def test_database_down_shows_queue_unavailable_instead_of_a_traceback(database_down):
    at = signed_in_app(offline_user("editor")).run()
    assert not at.exception
    assert any("Queue unavailable" in e.value for e in at.error)
