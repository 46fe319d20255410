"""Pausing and resuming queues, honoured by real worker subprocesses; the Workers and queues page."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from procrastinate import PsycopgConnector
from streamlit.testing.v1 import AppTest

from db.queues import QueueNameError, list_workers, pause_queue, queue_summaries, resume_queue
from db.requests import get_request
from queue_tasks.job_manager import PauseAwareJobManager
from queue_tasks.models import TitlesInput
from queue_tasks.procrastinate_app import app
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for
from tests.support.console import offline_user, signed_in_app

pytestmark = pytest.mark.timeout(120)

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "4_Workers_and_queues.py")
# Workers that only poll every 30 s: a job that starts within a second or two was woken by a NOTIFY.
SLOW_POLLING = {"PROCRASTINATE_WORKER_FETCH_JOB_POLLING_INTERVAL": "30"}


def submit(db, queue: str = "default", topic: str = "tiny house living"):
    return submit_requests(db, "titles", [TitlesInput(topic=topic)], requested_by="ana", queue=queue)[0]


def status(db, request_id) -> str:
    return get_request(db, request_id).status


def test_a_job_on_a_paused_queue_waits_and_starts_promptly_once_resumed(db, start_worker):
    pause_queue(db, "default", paused_by="ops")
    request_id = submit(db)
    worker = start_worker(extra_env=SLOW_POLLING)
    wait_for(lambda: list_workers(db, stale_after_seconds=30), timeout=20, message="the worker to register")

    time.sleep(3)
    assert status(db, request_id) == "queued", worker.log

    resumed_at = time.monotonic()
    assert resume_queue(db, "default", resumed_by="ops")
    wait_for(lambda: status(db, request_id) != "queued", timeout=5, message="the job to start after resume")
    assert time.monotonic() - resumed_at < 2.5, "woken by the resume notification, not by polling"
    assert wait_for(lambda: get_request(db, request_id).is_finished, timeout=30) and status(db, request_id) == "succeeded"


def test_jobs_on_other_queues_keep_running_while_one_queue_is_paused(db, start_worker):
    pause_queue(db, "bulk", paused_by="ops")
    paused_request = submit(db, queue="bulk", topic="paused topic")
    other_request = submit(db, queue="default", topic="other topic")
    worker = start_worker()

    wait_for(lambda: status(db, other_request) == "succeeded", timeout=30, message="the other queue's job to finish")
    time.sleep(1.5)  # more than the worker's polling interval: it has looked again since
    assert status(db, paused_request) == "queued", worker.log


def test_pausing_twice_or_resuming_an_unpaused_queue_changes_nothing(db):
    assert pause_queue(db, "default", paused_by="ops") is True
    assert pause_queue(db, "default", paused_by="someone else") is False
    assert [(q.queue_name, q.paused_by) for q in queue_summaries(db, ["default"])] == [("default", "ops")]
    assert resume_queue(db, "default", resumed_by="ops") is True
    assert resume_queue(db, "default", resumed_by="ops") is False


def test_pausing_and_resuming_are_logged(db, caplog):
    caplog.set_level(logging.INFO, logger="inkwell.queues")
    pause_queue(db, "bulk", paused_by="ops")
    resume_queue(db, "bulk", resumed_by="ana")
    assert "queue bulk paused by ops" in caplog.text
    assert "queue bulk resumed by ana (paused by ops" in caplog.text


def test_a_queue_name_that_procrastinate_could_not_notify_is_refused(db):
    with pytest.raises(QueueNameError):
        pause_queue(db, "q" * 41, paused_by="ops")
    with pytest.raises(QueueNameError):
        pause_queue(db, "   ", paused_by="ops")


def test_queue_summary_counts_waiting_scheduled_running_and_recent_failures(db):
    scheduled, running, failed = submit(db), submit(db), submit(db, queue="bulk")
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (get_request(db, running).job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (get_request(db, failed).job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (get_request(db, failed).job_id,))
    db.execute("UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour' WHERE id = %s",
               (get_request(db, scheduled).job_id,))
    submit(db)  # waiting

    summaries = {q.queue_name: q for q in queue_summaries(db, ["default"])}
    assert (summaries["default"].waiting, summaries["default"].scheduled, summaries["default"].running) == (1, 1, 1)
    assert (summaries["bulk"].waiting, summaries["bulk"].running, summaries["bulk"].failed_last_hour) == (0, 0, 1)


def _normalised_body(db, function: str) -> str:
    body = db.execute("SELECT prosrc FROM pg_proc WHERE oid = %s::regproc", (function,)).fetchone()[0]
    return re.sub(r"\s+", " ", body).strip()


def test_pause_aware_fetch_is_procrastinates_fetch_plus_the_pause_check(db):
    ours = _normalised_body(db, "inkwell.fetch_job_unless_paused")
    theirs = _normalised_body(db, "procrastinate_fetch_job_v2")
    pause_check = (
        " -- inkwell: skip paused queues AND NOT EXISTS (SELECT 1 FROM inkwell.queue_pauses AS pauses "
        "WHERE pauses.queue_name = jobs.queue_name)"
    )
    assert pause_check in ours
    assert ours.replace(pause_check, "") == theirs


def test_the_workers_fetch_is_the_pause_aware_fetch_plus_the_model_outage_hold(db):
    ours = _normalised_body(db, "inkwell.fetch_job_v2")
    pause_aware = _normalised_body(db, "inkwell.fetch_job_unless_paused")
    declaration = " _model_held boolean := inkwell.model_calls_held();"
    hold = " -- inkwell: model jobs wait while the model endpoint is down AND NOT (_model_held AND inkwell.is_model_task(jobs.task_name))"
    assert declaration in ours and hold in ours
    assert ours.replace(declaration, "").replace(hold, "") == pause_aware


def test_the_app_and_its_connector_copies_fetch_through_the_pause_aware_manager():
    assert isinstance(app.job_manager, PauseAwareJobManager)
    copy = app.with_connector(PsycopgConnector())
    assert isinstance(copy.job_manager, PauseAwareJobManager)
    assert copy.job_manager.connector is copy.connector


# --- the page, under AppTest ---




def page_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def test_page_lists_the_default_queue_and_says_no_worker_runs_on_an_empty_database(console_as):
    at = console_as(script=PAGE).run()
    assert not at.exception
    assert "**default**" in page_text(at)
    assert any("No worker is running" in w.value for w in at.warning)


def test_page_shows_queue_counts_and_workers(console_as, db):
    submit(db, queue="bulk")
    db.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()), (now() - interval '5 minutes')")
    at = console_as(script=PAGE).run()
    assert not at.exception
    assert "**bulk**" in page_text(at)
    waiting = [m.value for m in at.metric if m.label == "Waiting"]
    assert sorted(waiting) == ["0", "1"]  # bulk has one waiting, default none
    workers = at.dataframe[0].value
    assert sorted(workers["State"]) == ["alive", "stale: no recent heartbeat"]


def test_pause_and_resume_from_the_page(console_as, db):
    at = console_as(script=PAGE).run()
    at.button(key="pause_default").click().run()
    assert not at.exception
    assert [(q.queue_name, q.paused_by) for q in queue_summaries(db, []) if q.is_paused] == [("default", "Ana")]
    assert any("Paused default" in s.value for s in at.success)

    at.button(key="resume_default").click().run()
    assert not any(q.is_paused for q in queue_summaries(db, []))
    assert any("Resumed default" in s.value for s in at.success)


def test_an_analyst_sees_the_queues_without_pause_or_resume(console_as, db):
    pause_queue(db, "bulk", paused_by="Ana")
    at = console_as("analyst", script=PAGE).run()
    assert not at.exception
    assert "**default**" in page_text(at) and "**bulk**" in page_text(at)
    assert [b.key for b in at.main.button] == []
    assert "Pause a queue that is not listed" not in [e.label for e in at.expander]


def test_an_editor_is_told_the_page_is_not_for_them(console_as, db):
    at = console_as("editor", script=PAGE).run()
    assert not at.exception
    assert [i.value for i in at.info] == ["This page is for operators, admins and analysts. You are signed in as an editor."]
    assert "**default**" not in page_text(at)


def test_page_shows_queue_unavailable_when_the_database_is_down(database_down):
    at = signed_in_app(offline_user(), script=PAGE).run()
    assert not at.exception
    assert any("Queue unavailable" in e.value for e in at.error)
