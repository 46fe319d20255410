"""A request scheduled for later waits as `scheduled`, starts within a few seconds of its time on a
running worker, and can be cancelled before it starts."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from db.connection import open_pool
from db.requests import get_request
from queue_tasks.actions import cancel_request, job_manager_for
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(90)

# The worker polls for due jobs every second (NOTIFY fires on insert, not when a time comes).
START_WITHIN_SECONDS = 3.0


@pytest.fixture
def manager(database_url):
    pool = open_pool(database_url)
    yield job_manager_for(pool)
    pool.close()


def schedule(db, seconds: float):
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    request_id = submit_titles_request(db, TitlesInput(topic="winter gardening"), requested_by="ana", schedule_at=start)
    return request_id, start


def test_a_scheduled_titles_request_starts_within_a_few_seconds_of_its_time(db, start_worker, llm_server):
    request_id, start = schedule(db, 4)
    start_worker()

    time.sleep(1.5)  # the worker is up and listening, and the start time has not come
    waiting = get_request(db, request_id)
    assert (waiting.status, waiting.current_step, waiting.scheduled_at) == ("scheduled", "Scheduled", start)
    assert llm_server.request_count == 0

    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)
    assert request.status == "succeeded"
    assert start <= request.started_at <= start + dt.timedelta(seconds=START_WITHIN_SECONDS), (
        f"started {(request.started_at - start).total_seconds():.2f} s after its time"
    )


def test_a_scheduled_request_cancelled_before_its_time_never_starts(db, start_worker, llm_server, manager):
    request_id, start = schedule(db, 3)
    start_worker()
    time.sleep(0.5)

    assert cancel_request(db, manager, request_id) == "cancelled"
    # Well past its time, with a worker polling all along: it stayed cancelled and never ran.
    wait_for(lambda: dt.datetime.now(dt.timezone.utc) > start + dt.timedelta(seconds=3), timeout=10)
    request = get_request(db, request_id)
    assert (request.status, request.attempts, request.started_at) == ("cancelled", 0, None)
    assert llm_server.request_count == 0
    job_status = db.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (request.job_id,)).fetchone()[0]
    assert job_status == "cancelled"
