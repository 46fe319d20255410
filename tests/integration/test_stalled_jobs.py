"""Stalled jobs: a dead worker's jobs come back within a minute, and a worker that was only silent
(frozen, cut off) and comes back can neither store its result nor end a job another worker now runs."""

from __future__ import annotations

import os
import signal
import time

import pytest

from db.connection import open_pool
from db.requests import get_request
from queue_tasks.actions import cancel_request, job_manager_for
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.support.llm_server import ok

pytestmark = pytest.mark.timeout(180)

# Short enough for a quick test, long enough that a live worker on a loaded machine is not taken for dead.
FAST_STALL_DETECTION = {"INKWELL_STALLED_WORKER_SECONDS": "4", "INKWELL_STALLED_CHECK_SECONDS": "1"}
# A frozen worker's model call must not time out while it is frozen: it is to come back with an answer.
PATIENT_MODEL_CLIENT = {"INKWELL_LLM_TIMEOUT_SECONDS": "60"}


def job_events(db, job_id: int) -> list[str]:
    return [row[0] for row in db.execute("SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id", (job_id,))]


@pytest.mark.slow
def test_a_killed_workers_job_is_requeued_within_60_seconds_with_the_default_settings(db, start_worker, llm_server):
    llm_server.set_script([ok(delay_per_chunk=1.0, chunks=90)])  # the first call would take 90 s
    request_id = submit_titles_request(db, TitlesInput(topic="heat pumps"), requested_by="ana")
    doomed = start_worker()
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=30)
    survivor = start_worker()
    doomed.kill()
    killed_at = time.monotonic()

    wait_for(lambda: get_request(db, request_id).attempts == 2, timeout=75, message="the job to start again")
    requeued_after = time.monotonic() - killed_at

    assert requeued_after < 60, f"re-queued {requeued_after:.0f} s after the kill"
    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)
    assert request.status == "succeeded", survivor.log
    assert f"job {request.job_id}: its worker stopped responding, re-queued" in survivor.log


def test_a_silent_worker_that_comes_back_neither_stores_its_result_nor_ends_the_job(db, start_worker, llm_server):
    # The frozen worker's call streams for 4 s; the second worker's call for 8 s, so the first one,
    # thawed while the second still runs, finishes its own call first and tries to end the job.
    llm_server.set_script([ok(delay_per_chunk=0.2, chunks=20), ok(delay_per_chunk=0.4, chunks=20)])
    request_id = submit_titles_request(db, TitlesInput(topic="frozen pipes"), requested_by="ana")
    frozen = start_worker(extra_env={**FAST_STALL_DETECTION, **PATIENT_MODEL_CLIENT})
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=30)
    os.kill(frozen.process.pid, signal.SIGSTOP)
    try:
        other = start_worker(extra_env={**FAST_STALL_DETECTION, **PATIENT_MODEL_CLIENT})
        wait_for(lambda: llm_server.request_count == 2, timeout=30, message="the second worker to run the job")
    finally:
        os.kill(frozen.process.pid, signal.SIGCONT)
    job_id = get_request(db, request_id).job_id
    # Thawed, its next write (progress, or the result) finds the job no longer its own, and it stops.
    wait_for(lambda: "result not stored" in frozen.log or "job_not_owned" in frozen.log, timeout=60,
             message="the thawed worker to stop its run")

    assert get_request(db, request_id).status == "running", "the job still runs under the second worker"
    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)
    assert request.status == "succeeded", other.log
    assert request.attempts == 2
    assert f"request {request_id} job {job_id}: finished, result stored" in other.log
    # One start per worker, one end: the thawed worker's late "succeeded" never reached the queue.
    assert job_events(db, job_id).count("succeeded") == 1
    assert job_events(db, job_id).count("started") == 2


def test_a_job_cancelled_while_its_worker_dies_ends_cancelled_not_failed(db, database_url, start_worker, llm_server):
    llm_server.set_script([ok(delay_per_chunk=1.0, chunks=60)])
    request_id = submit_titles_request(db, TitlesInput(topic="bird feeders"), requested_by="ana")
    doomed = start_worker(extra_env=FAST_STALL_DETECTION)
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=30)
    doomed.kill()
    pool = open_pool(database_url)
    try:
        # The abort request lands on a job whose worker is gone: nobody is left to act on it.
        assert cancel_request(db, job_manager_for(pool), request_id) == "cancelling"
    finally:
        pool.close()

    start_worker(extra_env=FAST_STALL_DETECTION)
    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)

    assert request.status == "cancelled"
    assert request.attempts == 1
    assert llm_server.request_count == 1, "a cancelled job is not run again"
    assert job_events(db, request.job_id)[-1] == "aborted"
