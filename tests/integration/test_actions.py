"""Cancel and retry, through Procrastinate's API, against a real worker."""

from __future__ import annotations

import pytest

from db.connection import open_pool
from db.requests import get_request
from queue_tasks.actions import ActionRefused, cancel_request, job_manager_for, retry_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.support.llm_server import error, ok

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def manager(database_url):
    pool = open_pool(database_url)
    yield job_manager_for(pool)
    pool.close()


def submit(db):
    return submit_titles_request(db, TitlesInput(topic="tiny house living"), requested_by="ana")


def finished(db, request_id, timeout=30):
    return wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=timeout)


def test_cancelling_a_queued_request_cancels_it_at_once(db, manager):
    request_id = submit(db)
    assert cancel_request(db, manager, request_id) == "cancelled"
    request = get_request(db, request_id)
    assert (request.status, request.current_step) == ("cancelled", "Cancelled")
    assert request.finished_at is not None


def test_cancelling_a_running_request_stops_the_model_call(db, manager, start_worker, llm_server):
    llm_server.push(ok(delay_per_chunk=0.5, chunks=40))  # 20 s if left alone
    request_id = submit(db)
    worker = start_worker()
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=20)

    assert cancel_request(db, manager, request_id) == "cancelling"
    request = finished(db, request_id, timeout=5)

    assert (request.status, request.current_step) == ("cancelled", "Cancelled while running"), worker.log
    assert llm_server.wait_for_disconnect(timeout=5), "the model request was closed, not left to run"
    assert request.result is None


def test_cancelling_a_finished_request_is_refused(db, manager):
    request_id = submit(db)
    cancel_request(db, manager, request_id)
    with pytest.raises(ActionRefused, match="already cancelled"):
        cancel_request(db, manager, request_id)


def test_retrying_a_failed_request_runs_it_again_and_it_can_succeed(db, manager, start_worker, llm_server):
    llm_server.push(error(401))
    request_id = submit(db)
    start_worker()
    failed = finished(db, request_id)
    assert failed.status == "failed"

    retry_request(db, manager, request_id)  # the test server now answers normally
    request = finished(db, request_id)
    assert request.status == "succeeded"
    assert request.job_id == failed.job_id
    assert (failed.attempts, request.attempts) == (1, 2), "each run is one attempt, the manual retry itself is none"
    events = [row[0] for row in db.execute("SELECT type FROM procrastinate_events WHERE job_id = %s ORDER BY id", (request.job_id,))]
    assert "failed" in events and "retried" in events and events[-1] == "succeeded"


def test_retrying_a_cancelled_request_gives_it_a_new_job_and_keeps_the_old_one(db, manager, start_worker):
    request_id = submit(db)
    cancel_request(db, manager, request_id)
    old_job = get_request(db, request_id).job_id

    retry_request(db, manager, request_id)
    start_worker()
    request = finished(db, request_id)
    assert request.status == "succeeded"
    assert request.job_id != old_job
    assert request.previous_job_ids == [old_job]


def test_retrying_a_queued_request_is_refused(db, manager):
    request_id = submit(db)
    with pytest.raises(ActionRefused, match="only failed or cancelled"):
        retry_request(db, manager, request_id)
