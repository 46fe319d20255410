"""A worker killed with SIGKILL mid-job does not lose the job: another worker finishes it."""

from __future__ import annotations

import pytest

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.support.llm_server import ok

pytestmark = pytest.mark.timeout(120)

# Both workers agree on a short heartbeat time-out so the test need not wait 30 s.
FAST_STALL_DETECTION = {"INKWELL_STALLED_WORKER_SECONDS": "2", "INKWELL_STALLED_CHECK_SECONDS": "1"}


def test_job_of_a_killed_worker_is_requeued_and_finished_by_another_worker(db, start_worker, llm_server):
    llm_server.set_script([ok(delay_per_chunk=0.5, chunks=30)])  # the first call would take 15 s
    request_id = submit_titles_request(db, TitlesInput(topic="rainwater harvesting"), requested_by="ana")
    doomed = start_worker(extra_env=FAST_STALL_DETECTION)
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=20)
    doomed.kill()

    survivor = start_worker(extra_env=FAST_STALL_DETECTION)
    request = wait_for(
        lambda: (r := get_request(db, request_id)).is_finished and r, timeout=60, message="the job to be finished"
    )

    assert request.status == "succeeded", survivor.log
    assert request.attempts == 2
    assert request.result["titles"]
    assert f"job {request.job_id}: its worker stopped responding, re-queued" in survivor.log
    assert f"request {request_id} job {request.job_id}: finished, result stored" in survivor.log
    # One request, one job, one stored result: the re-run replaced nothing and added nothing.
    assert db.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'inkwell.generate_titles'").fetchone()[0] == 1
