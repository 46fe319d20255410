"""Scheduled requests and requests waiting to retry, on the Live page: the next attempt's time, "Run
now" (its job is due at once, audited, refused by the database to whoever may not act on it) and
"Discard"."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from db.people import User, acting_as, audit_entries
from db.requests import get_request
from queue_tasks.actions import ActionRefused, run_request_now
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for
from tests.support.console import make_user, signed_in_app

LIVE = "pages/2_Live.py"
# Workers that only poll every 30 s: a job that starts within a second or two was woken by a NOTIFY.
SLOW_POLLING = {"PROCRASTINATE_WORKER_FETCH_JOB_POLLING_INTERVAL": "30"}


def in_an_hour() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)


def schedule_as(db, user: User, topic: str, at: dt.datetime | None = None) -> uuid.UUID:
    with acting_as(db, user):
        [request_id] = submit_requests(db, "titles", [TitlesInput(topic=topic)], requested_by=user.display_name,
                                       schedule_at=at or in_an_hour())
    return request_id


def job_due_at(db, request_id: uuid.UUID) -> dt.datetime:
    return db.execute("SELECT scheduled_at FROM procrastinate_jobs WHERE id = %s",
                      (get_request(db, request_id).job_id,)).fetchone()[0]


def wait_to_retry(db, request_id: uuid.UUID, next_attempt: dt.datetime) -> None:
    """What a worker leaves when an attempt failed and another is due later."""
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'todo', attempts = 1, scheduled_at = %s WHERE id = %s",
               (next_attempt, job_id))


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


def test_run_now_makes_a_scheduled_request_due_at_once_and_is_audited(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    request_id = schedule_as(db, ana, "urban beekeeping")
    at = signed_in_app(ana, LIVE).run()

    at.button(key=f"run_now_{request_id}").click().run()

    assert not at.exception
    assert job_due_at(db, request_id) <= dt.datetime.now(dt.timezone.utc)
    request = get_request(db, request_id)
    assert (request.status, request.current_step) == ("queued", "Queued")
    assert texts(at.toast) == "“urban beekeeping” starts as soon as a worker is free."
    [entry] = audit_entries(db, action="request.run_now")
    assert (entry["actor_user_id"], entry["target_id"]) == (ana.id, str(request_id))
    at.run()
    assert f"run_now_{request_id}" not in [b.key for b in at.main.button]  # nothing left to bring forward


def test_an_editor_gets_no_run_now_on_a_colleagues_request_and_the_database_refuses_it(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    ben = make_user(db, "editor", display_name="Ben")
    colleagues = schedule_as(db, ben, "ben's topic")
    due = job_due_at(db, colleagues)

    at = signed_in_app(ana, LIVE).run()
    assert "ben's topic" in texts(at.markdown)
    assert [b.key for b in at.main.button] == []

    with acting_as(db, ana), pytest.raises(ActionRefused, match="only the person who submitted it"):
        run_request_now(db, colleagues)
    with acting_as(db, make_user(db, "analyst")), pytest.raises(ActionRefused, match="can read requests but not run"):
        run_request_now(db, colleagues)
    # Past the console's check, row-level security still leaves the job alone.
    with acting_as(db, ana):
        assert db.execute("SELECT inkwell.run_request_now(%s)", (colleagues,)).fetchone()[0] is None
    assert job_due_at(db, colleagues) == due
    assert get_request(db, colleagues).status == "scheduled"
    assert audit_entries(db, action="request.run_now") == []


def test_an_operator_runs_anyones_scheduled_request_now(console_env, db):
    ben = make_user(db, "editor", display_name="Ben")
    request_id = schedule_as(db, ben, "ben's topic")
    at = signed_in_app(make_user(db, "operator"), LIVE).run()
    at.button(key=f"run_now_{request_id}").click().run()
    assert get_request(db, request_id).status == "queued"


def test_a_request_waiting_to_retry_shows_its_next_attempt_and_runs_now(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    request_id = schedule_as(db, ana, "urban beekeeping", at=dt.datetime.now(dt.timezone.utc))
    next_attempt = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2, seconds=30)
    wait_to_retry(db, request_id, next_attempt)

    at = signed_in_app(ana, LIVE).run()
    captions = texts(at.caption)
    assert f"Waiting to retry: next attempt at {next_attempt:%H:%M} (in 2 min)" in captions  # the viewer's zone: UTC here
    assert "Attempt 2 of 3" in captions

    at.button(key=f"run_now_{request_id}").click().run()
    assert job_due_at(db, request_id) <= dt.datetime.now(dt.timezone.utc)
    assert get_request(db, request_id).attempts == 1  # the attempt already made still counts
    [entry] = audit_entries(db, action="request.run_now")
    assert entry["details"]["waiting_to_retry"] is True


def test_discard_on_a_scheduled_request_asks_first_and_cancels_it(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    request_id = schedule_as(db, ana, "urban beekeeping")
    at = signed_in_app(ana, LIVE).run()
    assert [p.proto.popover.label for p in at.get("popover")] == ["Discard"]
    at.button(key=f"cancel_{request_id}").click().run()
    assert get_request(db, request_id).status == "cancelled"
    assert texts(at.toast) == "Discarded “urban beekeeping”: it will not run."
    assert [e["target_id"] for e in audit_entries(db, action="request.cancelled")] == [str(request_id)]


@pytest.mark.timeout(120)
def test_run_now_wakes_a_real_worker_that_runs_the_request_at_once(inkwell_env, db, start_worker):
    editor = make_user(db, "editor")
    request_id = schedule_as(db, editor, "tiny house living")
    start_worker(extra_env=SLOW_POLLING)
    wait_for(lambda: db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0], timeout=20)
    time.sleep(1)
    with acting_as(db, editor):
        run_request_now(db, request_id)
    started = time.monotonic()
    wait_for(lambda: get_request(db, request_id).status != "queued", timeout=5, message="the job to start")
    assert time.monotonic() - started < 2.5, "woken by the notification, not by polling"
    assert wait_for(lambda: get_request(db, request_id).status == "succeeded", timeout=30)
