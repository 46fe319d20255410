"""A job ends in one transaction, and only the job a request is linked to, under its current worker,
writes on that request; only the job row decides an abort; a dead worker's count of deaths is true."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import psycopg
import pytest
from psycopg.types.json import Jsonb

from db.migrate import ANALYST_ROLE, allow_analyst_login
from db.history import request_events
from db.queries import QUERIES
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import ROOT, wait_for
from tests.support.llm_server import error, ok

pytestmark = pytest.mark.timeout(120)

ANALYST_PASSWORD = "analyst-test-password"


def finished(db, request_id):
    return wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=40, message="the request to finish")


def test_a_rerun_of_a_job_whose_request_already_holds_its_result_succeeds_without_calling_the_model(db, start_worker, llm_server):
    # What a kill between "result stored" and "job ended" used to leave: the result there, the job queued again.
    request_id = submit_titles_request(db, TitlesInput(topic="rain gardens"), requested_by="ana")
    db.execute("UPDATE inkwell.requests SET result = %s WHERE id = %s",
               (Jsonb({"titles": ["Rain Gardens for Beginners"], "model": "m", "offline_model": False}), request_id))
    start_worker()

    request = finished(db, request_id)

    assert request.status == "succeeded"
    assert request.result["titles"] == ["Rain Gardens for Beginners"]
    assert llm_server.request_count == 0, "the model was called again for a stored result"


def test_a_stray_job_for_a_request_it_does_not_own_fails_at_once_and_writes_nothing_on_it(db, start_worker, llm_server, inkwell_env):
    request_id = submit_titles_request(db, TitlesInput(topic="winter cycling"), requested_by="ana")
    worker = start_worker()
    done = finished(db, request_id)
    assert done.status == "succeeded"
    calls_before = llm_server.request_count

    # What an operator could type: a blog-post job pointed at a succeeded titles request.
    subprocess.run(
        [sys.executable, "-m", "procrastinate", "--app=queue_tasks.app", "defer", "inkwell.write_blog_post",
         json.dumps({"request_id": str(request_id)})],
        cwd=ROOT, env={**inkwell_env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, check=True, capture_output=True,
    )
    stray_status = wait_for(lambda: db.execute(
        "SELECT status FROM procrastinate_jobs WHERE task_name = 'inkwell.write_blog_post'").fetchone()[0]
        in ("failed", "succeeded") and db.execute(
        "SELECT status FROM procrastinate_jobs WHERE task_name = 'inkwell.write_blog_post'").fetchone()[0], timeout=30)

    after = get_request(db, request_id)
    assert stray_status == "failed"
    assert (after.status, after.error_code, after.error_message) == ("succeeded", None, None)
    assert after.result == done.result
    assert llm_server.request_count == calls_before, "the stray job called the model"
    assert "job_not_linked" in worker.log


def test_progress_from_a_job_not_running_under_this_worker_writes_nothing(db):
    request_id = submit_titles_request(db, TitlesInput(topic="heat pumps"), requested_by="ana")
    job_id = get_request(db, request_id).job_id
    worker_id = db.execute("SELECT id FROM procrastinate_register_worker_v1() AS id").fetchone()[0]
    db.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s", (worker_id, job_id))

    def write(job, worker):
        return db.execute(QUERIES["record_progress"], {
            "request_id": request_id, "job_id": job, "worker_id": worker, "progress": 50, "step": "Halfway",
            "eta_seconds": 1, "partial_text": "text"}).fetchall()

    assert write(job_id, worker_id + 1) == [], "another worker's write"
    assert write(job_id + 1000, worker_id) == [], "another job's write"
    assert get_request(db, request_id).current_step != "Halfway"
    assert write(job_id, worker_id) == [(False,)]
    assert get_request(db, request_id).current_step == "Halfway"


def test_worker_lost_only_when_the_worker_died_on_the_last_attempt_with_the_real_count(db):
    request_id = submit_titles_request(db, TitlesInput(topic="bird feeders"), requested_by="ana")
    job_id = get_request(db, request_id).job_id
    worker_id = db.execute("SELECT id FROM procrastinate_register_worker_v1() AS id").fetchone()[0]

    def start():
        db.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s", (worker_id, job_id))

    # Attempts 1 and 2 fail on the model (recorded as the runner records them), attempt 3's worker dies.
    for code in ("model_server_error", "rate_limited"):
        start()
        status = db.execute(QUERIES["end_failed_attempt"], {
            "request_id": request_id, "job_id": job_id, "worker_id": worker_id, "code": code,
            "message": f"{code} happened", "retry_at": dt.datetime.now(dt.timezone.utc), "endpoint_down": False,
            "model_answered": True, "endpoint_not_answering": False,
        }).fetchone()[0]
        assert status == "todo"
    start()
    status = db.execute(QUERIES["end_stalled_job"], {"job_id": job_id, "worker_id": worker_id, "max_attempts": 3}).fetchone()[0]

    request = get_request(db, request_id)
    assert status == "failed"
    assert request.error_code == "worker_lost"
    assert "1 of its 3 attempts" in request.error_message
    outcomes = [row[0] for row in db.execute(
        "SELECT outcome FROM inkwell.attempt_outcomes WHERE request_id = %s ORDER BY id", (request_id,))]
    assert outcomes == ["model_server_error", "rate_limited", "worker_lost"]
    timeline = [e.type for e in request_events(db, request) if e.type.startswith("attempt failed")]
    assert timeline == ["attempt failed: model_server_error", "attempt failed: rate_limited", "attempt failed: worker_lost"], \
        "every attempt's outcome stays in the event timeline"


def test_the_last_attempts_real_error_is_the_requests_code(db, start_worker, llm_server):
    llm_server.set_script([error(429, retry_after=0.1), error(503), error(500)])
    request_id = submit_titles_request(db, TitlesInput(topic="cold brew"), requested_by="ana")
    start_worker()

    request = finished(db, request_id)

    assert request.status == "failed"
    assert request.error_code == "model_server_error" and "(500)" in request.error_message
    assert request.result is None
    assert [c.outcome for c in llm_server.calls] == ["rate_limited", "server_error_503", "server_error_500"]


def test_a_forged_abort_notification_from_the_analyst_role_cancels_nothing(db, database_url, start_worker, llm_server):
    llm_server.set_script([ok(delay_per_chunk=0.25, chunks=16)])  # about 4 s of streaming
    request_id = submit_titles_request(db, TitlesInput(topic="sourdough starters"), requested_by="ana")
    worker = start_worker()
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=30)
    job_id = get_request(db, request_id).job_id
    allow_analyst_login(db, ANALYST_PASSWORD)
    payload = json.dumps({"type": "abort_job_requested", "job_id": job_id})
    with psycopg.connect(database_url, user=ANALYST_ROLE, password=ANALYST_PASSWORD, autocommit=True) as analyst:
        assert analyst.execute("SELECT current_user").fetchone()[0] == ANALYST_ROLE
        analyst.execute("SELECT pg_notify('procrastinate_any_queue_v1', %s)", (payload,))
        analyst.execute("SELECT pg_notify('procrastinate_queue_v1#default', %s)", (payload,))

    request = finished(db, request_id)

    assert request.status == "succeeded", worker.log
    assert f"job {job_id}: an abort notification arrived but the job row asks no abort; ignored" in worker.log


def test_a_cancel_outside_the_console_is_audited_with_the_database_role(db):
    request_id = submit_titles_request(db, TitlesInput(topic="balcony gardens"), requested_by="ana")
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute("UPDATE procrastinate_jobs SET abort_requested = true WHERE id = %s", (job_id,))

    entry = db.execute("SELECT actor_name, action, details FROM inkwell.audit_log WHERE target_id = %s", (str(job_id),)).fetchone()
    assert entry[0] == "system" and entry[1] == "job.abort_requested"
    assert entry[2]["database_role"] == db.execute("SELECT session_user").fetchone()[0]
    assert entry[2]["request_id"] == str(request_id)


def test_a_killed_workers_row_is_removed_once_its_job_is_requeued(db, start_worker, llm_server):
    fast = {"INKWELL_STALLED_WORKER_SECONDS": "2", "INKWELL_STALLED_CHECK_SECONDS": "1"}
    llm_server.set_script([ok(delay_per_chunk=1.0, chunks=60)])
    request_id = submit_titles_request(db, TitlesInput(topic="school lunches"), requested_by="ana")
    doomed = start_worker(extra_env=fast)
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=30)
    dead_worker = db.execute("SELECT worker_id FROM procrastinate_jobs WHERE id = %s",
                             (get_request(db, request_id).job_id,)).fetchone()[0]
    survivor = start_worker(extra_env=fast)
    wait_for(lambda: db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0] == 2, timeout=30)
    doomed.kill()

    request = finished(db, request_id)

    assert request.status == "succeeded", survivor.log
    wait_for(lambda: db.execute("SELECT 1 FROM procrastinate_workers WHERE id = %s", (dead_worker,)).fetchone() is None,
             timeout=10, message="the dead worker's row to be removed")
    assert f"removed the rows of dead workers {dead_worker}" in survivor.log
