"""Per-kind hard time limit: a hung call is cancelled at the limit, counted as a transient fault
(`time_limit_exceeded`) and retried within the attempt budget."""

from __future__ import annotations

import pytest

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.support.llm_server import ok, stall

pytestmark = pytest.mark.timeout(120)

# The model client would wait 60 s; the titles kind's own limit (1.5 s) is what stops the call.
HUNG_CALLS_STOPPED_BY_THE_KIND_LIMIT = {
    "INKWELL_LLM_TIMEOUT_SECONDS": "60",
    "INKWELL_TASK_TIME_LIMIT_SECONDS": "300",
    "INKWELL_TASK_TIME_LIMITS": "titles=1.5",
}


def test_a_hung_model_call_is_cancelled_at_the_kinds_time_limit_and_the_job_retried(db, start_worker, llm_server):
    llm_server.set_script([stall(60), ok()])
    request_id = submit_titles_request(db, TitlesInput(topic="standing desks"), requested_by="ana")
    worker = start_worker(extra_env=HUNG_CALLS_STOPPED_BY_THE_KIND_LIMIT)

    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=60)

    assert request.status == "succeeded", worker.log
    assert request.attempts == 2
    assert request.result["titles"]
    # The hung call was cancelled (its connection closed), not left to run out its 60 s.
    assert llm_server.wait_for_disconnect(timeout=5)
    assert llm_server.disconnects[0].behaviour == "stall"
    assert f"request {request_id} job {request.job_id}: attempt 1 failed with time_limit_exceeded" in worker.log
    assert "time limit of 1.5 s" in worker.log


def test_a_job_that_hangs_on_every_attempt_fails_with_time_limit_exceeded_after_the_budget(db, start_worker, llm_server):
    llm_server.set_script([stall(60), stall(60), stall(60)])
    request_id = submit_titles_request(db, TitlesInput(topic="quiet keyboards"), requested_by="ana")
    worker = start_worker(extra_env={**HUNG_CALLS_STOPPED_BY_THE_KIND_LIMIT, "INKWELL_MAX_ATTEMPTS": "3"})

    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=60)

    assert request.status == "failed", worker.log
    assert request.error_code == "time_limit_exceeded"
    assert request.attempts == 3
    assert llm_server.request_count == 3
    assert "1.5 s" in request.error_message


def test_another_kinds_limit_does_not_apply(db, start_worker, llm_server):
    # A 2.5 s answer is within the titles default (300 s) although blog posts here get 1 s.
    llm_server.set_script([ok(delay_per_chunk=0.25, chunks=10)])
    request_id = submit_titles_request(db, TitlesInput(topic="slow cookers"), requested_by="ana")
    worker = start_worker(extra_env={"INKWELL_TASK_TIME_LIMITS": "blog_post=1"})

    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=60)

    assert request.status == "succeeded", worker.log
    assert request.attempts == 1
