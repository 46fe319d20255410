"""Graceful shutdown: on SIGTERM a worker lets running jobs finish within the graceful time-out,
and hands the ones that would outlast it back to the queue (`worker_shutdown`) for another worker."""

from __future__ import annotations

import time

import pytest

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.support.llm_server import ok

pytestmark = pytest.mark.timeout(120)


def test_sigterm_lets_a_running_job_finish_within_the_graceful_timeout(db, start_worker, llm_server):
    llm_server.set_script([ok(delay_per_chunk=0.2, chunks=10)])  # about 2 s
    request_id = submit_titles_request(db, TitlesInput(topic="sourdough"), requested_by="ana")
    worker = start_worker(extra_env={"INKWELL_SHUTDOWN_GRACEFUL_SECONDS": "8"})
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=30)

    exit_code = worker.stop(timeout=20)

    request = get_request(db, request_id)
    assert exit_code == 0, worker.log
    assert request.status == "succeeded"
    assert request.attempts == 1
    assert llm_server.request_count == 1


def test_sigterm_hands_a_job_that_outlasts_the_graceful_timeout_back_to_the_queue(db, start_worker, llm_server):
    llm_server.set_script([ok(delay_per_chunk=1.0, chunks=60), ok()])  # the first call would take 60 s
    request_id = submit_titles_request(db, TitlesInput(topic="kayak storage"), requested_by="ana")
    worker = start_worker(extra_env={"INKWELL_SHUTDOWN_GRACEFUL_SECONDS": "1"})
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=30)

    stopping_since = time.monotonic()
    exit_code = worker.stop(timeout=20)
    stopped_after = time.monotonic() - stopping_since

    handed_back = get_request(db, request_id)
    assert exit_code == 0, worker.log
    assert stopped_after < 10, f"the worker took {stopped_after:.1f} s to stop"
    assert handed_back.status == "queued"
    assert handed_back.error_code == "worker_shutdown"
    assert f"request {request_id} job {handed_back.job_id}: attempt 1 failed with worker_shutdown" in worker.log

    successor = start_worker()
    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)
    assert request.status == "succeeded", successor.log
    assert request.attempts == 2
    assert request.error_code is None
