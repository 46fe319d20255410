"""Discarding finished requests (migration 0132): an operator or admin clears them out of the console's
lists; nothing is deleted, analysts still read them, the audit log says who did it, and the database
refuses anyone else."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from db.history import HistoryFilter, count_history_up_to, history_page
from db.people import acting_as, audit_entries
from db.requests import list_recent_requests
from queue_tasks.actions import ActionRefused, discard_finished_requests
from tests.integration.test_history_page import finish, submit
from tests.support.console import make_user, signed_in_app

WORKERS_PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "4_Workers_and_queues.py")
HISTORY_PAGE = "pages/3_History.py"


def finished_days_ago(db, request_ids: list[uuid.UUID], days: int) -> None:
    db.execute("UPDATE inkwell.requests SET finished_at = now() - make_interval(days => %s), "
               "created_at = now() - make_interval(days => %s) WHERE id = ANY(%s)", (days, days, request_ids))


def listed(db, user) -> list[str]:
    with acting_as(db, user):
        return [row.topic for row in history_page(db, HistoryFilter()).rows]


def test_an_operator_discards_requests_finished_over_n_days_ago_from_the_page(console_env, db):
    old_ok, old_failed, recent, waiting = submit(db, "old success", "old failure", "recent one", "still waiting")
    finish(db, [old_ok, recent])
    finish(db, [old_failed], "failed")
    finished_days_ago(db, [old_ok, old_failed, waiting], 40)
    operator = make_user(db, "operator")

    at = signed_in_app(operator, script=WORKERS_PAGE).run()
    at.number_input(key="discard_older_than_days").set_value(30).run()
    at.button(key="discard_finished_confirm").click().run()

    assert not at.exception
    assert any("Discarded 2 finished requests finished over 30 days ago." in s.value for s in at.success)
    assert listed(db, operator) == ["recent one"]
    with acting_as(db, operator):
        assert count_history_up_to(db, HistoryFilter(), limit=100) == 1
        assert [r.input["topic"] for r in list_recent_requests(db, limit=10)] == ["recent one", "still waiting"]
    # Kept for analysts, and in the database until the retention rules say otherwise.
    analysts_see = db.execute("SELECT count(*) FROM analytics.requests").fetchone()[0]
    assert analysts_see == 4
    [entry] = audit_entries(db, action="requests.discarded")
    assert entry["actor_user_id"] == operator.id and entry["details"]["count"] == 2


def test_the_history_page_no_longer_lists_them(console_env, db):
    kept, discarded = submit(db, "kept topic", "discarded topic")
    finish(db, [kept, discarded])
    operator = make_user(db, "operator")
    with acting_as(db, operator):
        assert discard_finished_requests(db, request_ids=[discarded]) == 1
    at = signed_in_app(operator, HISTORY_PAGE).run()
    assert not at.exception
    topics = next(d.value for d in at.dataframe if "Topic" in d.value.columns)["Topic"]
    assert list(topics) == ["kept topic"]


@pytest.mark.parametrize("role", ["editor", "analyst"])
def test_the_database_refuses_anyone_but_operators_and_admins(console_env, db, role):
    [request_id] = submit(db, "a finished topic")
    finish(db, [request_id])
    user = make_user(db, role)
    with acting_as(db, user), pytest.raises(ActionRefused, match="Only operators and admins can discard"):
        discard_finished_requests(db, request_ids=[request_id])
    assert listed(db, make_user(db, "operator")) == ["a finished topic"]
    assert audit_entries(db, action="requests.discarded") == []


def test_waiting_requests_are_never_discarded(console_env, db):
    [waiting] = submit(db, "still waiting")
    finished_days_ago(db, [waiting], 40)
    with acting_as(db, make_user(db, "admin")):
        assert discard_finished_requests(
            db, request_ids=[waiting], finished_before=dt.datetime.now(dt.timezone.utc)
        ) == 0
    assert db.execute("SELECT discarded_at FROM inkwell.requests WHERE id = %s", (waiting,)).fetchone()[0] is None


def test_editors_and_analysts_are_not_offered_discarding(console_env, db):
    at = signed_in_app(make_user(db, "analyst"), script=WORKERS_PAGE).run()
    assert "Discard finished requests" not in [e.label for e in at.expander]
