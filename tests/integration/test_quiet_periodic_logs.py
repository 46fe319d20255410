"""A worker's log says what happened to jobs, not that the periodic checks ran: Procrastinate's
routine lines about the periodic tasks are dropped (queue_tasks/procrastinate_app.py), every other
job's lines stay."""

from __future__ import annotations

import pytest

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(120)

STALLED_CHECK = "inkwell.requeue_stalled_jobs"


def checks_run(db) -> int:
    return db.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded'", (STALLED_CHECK,)
    ).fetchone()[0]


def test_a_worker_logs_a_titles_job_but_not_the_routine_runs_of_the_stalled_job_check(db, start_worker):
    request_id = submit_titles_request(db, TitlesInput(topic="heat pumps"), requested_by="ana")
    worker = start_worker(extra_env={"INKWELL_STALLED_CHECK_SECONDS": "1"})

    wait_for(lambda: get_request(db, request_id).status == "succeeded", timeout=60, message="the titles job")
    wait_for(lambda: checks_run(db) >= 3, timeout=30, message="three runs of the stalled-job check")
    worker.stop()
    log = worker.log

    job_id = get_request(db, request_id).job_id
    assert f"Starting job inkwell.generate_titles[{job_id}]" in log, log
    assert any(f"Job inkwell.generate_titles[{job_id}](" in line
               and "ended with status" in line for line in log.splitlines()), log
    # Said once at start (which periodic tasks this worker runs), never again for a routine run.
    about_the_check = [line for line in log.splitlines() if STALLED_CHECK in line]
    assert len(about_the_check) == 1 and "Registering task" in about_the_check[0], about_the_check
    assert "Stopped worker" in log, "the worker's own lines stay"


def test_a_worker_at_debug_level_still_logs_every_run_of_the_check(db, start_worker):
    worker = start_worker(extra_env={"INKWELL_STALLED_CHECK_SECONDS": "1", "PROCRASTINATE_LOG_LEVEL": "debug"})
    wait_for(lambda: checks_run(db) >= 2, timeout=30, message="two runs of the stalled-job check")
    worker.stop()
    assert f"Starting job {STALLED_CHECK}[" in worker.log, "asked for every line, the operator gets them"
