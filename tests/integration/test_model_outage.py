"""A model outage pauses the model jobs; it fails none and spends no attempts. The workers notice the
endpoint is down, hold the jobs back, probe with back-off and resume by themselves; the console says so."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from console_time import clock
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(150)

PAGES = ["app.py", "pages/2_Live.py", "pages/4_Workers_and_queues.py"]


def endpoint_down_since(db):
    return db.execute("SELECT down_since FROM inkwell.model_endpoint").fetchone()[0]


def test_an_outage_longer_than_every_retry_fails_nothing_and_costs_no_attempts(db, start_worker, llm_server):
    llm_server.stop()  # connection refused, as when the endpoint's host is down
    request_ids = submit_requests(db, "titles", [TitlesInput(topic=f"heat pumps, part {i}") for i in range(12)],
                                  requested_by="ana")
    worker = start_worker(concurrency=4)

    wait_for(lambda: endpoint_down_since(db) is not None, timeout=30, message="the workers to find the endpoint down")
    # Three attempts with 0.2 s / 0.4 s back-off would all have been spent many times over by now.
    time.sleep(8)
    statuses = {get_request(db, r).status for r in request_ids}
    assert statuses <= {"queued", "running"}, statuses
    assert max(get_request(db, r).attempts for r in request_ids) <= 1

    llm_server.start()  # back, on the same port
    wait_for(lambda: all(get_request(db, r).is_finished for r in request_ids), timeout=90,
             message="the backlog to finish once the endpoint answers")

    requests = [get_request(db, r) for r in request_ids]
    assert [r.status for r in requests] == ["succeeded"] * 12, worker.log
    assert [r.attempts for r in requests] == [1] * 12, "an outage spends no attempts"
    assert endpoint_down_since(db) is None, "a model answer marks the endpoint up again"
    assert "model endpoint unreachable" in worker.log


@pytest.mark.parametrize("page", PAGES)
def test_the_console_shows_the_outage_on_home_live_and_workers(console_as, db, page):
    submit_requests(db, "titles", [TitlesInput(topic=f"bike commuting {i}") for i in range(3)], requested_by="ana")
    down_since = db.execute("UPDATE inkwell.model_endpoint SET down_since = now() - interval '3 minutes', failures_in_row = 3, "
                            "next_probe_at = now() + interval '1 minute', last_error = 'model_unreachable' "
                            "RETURNING down_since").fetchone()[0]

    at = (console_as() if page == "app.py" else console_as(page=page)).run()

    assert not at.exception
    banners = [w.value for w in at.warning if "Model endpoint unreachable" in w.value]
    assert banners == [f"**Model endpoint unreachable since {clock(down_since, dt.timezone.utc, dt.datetime.now(dt.timezone.utc))} (3 min ago) — 3 requests waiting.** "
                       "Workers start no model calls while it is down and try it again now and then; they resume by "
                       "themselves when it answers. Waiting spends none of a request's attempts."]


def test_no_outage_banner_while_the_endpoint_is_up(console_as):
    at = console_as(page="pages/2_Live.py").run()
    assert not at.exception
    assert not [w for w in at.warning if "Model endpoint unreachable" in w.value]


def test_a_request_on_its_last_attempt_when_the_endpoint_goes_down_waits_instead_of_failing(db, start_worker, llm_server):
    # Its first two attempts were spent on its own faults; the third meets an endpoint that is down,
    # the first failure of the row: the worker asks the endpoint, gets no answer, and holds the job.
    request_id = submit_requests(db, "titles", [TitlesInput(topic="winter cycling")], requested_by="ana")[0]
    db.execute("UPDATE procrastinate_jobs SET attempts = 2 WHERE id = %s", (get_request(db, request_id).job_id,))
    db.execute("UPDATE inkwell.requests SET attempts = 2 WHERE id = %s", (request_id,))
    llm_server.stop()
    worker = start_worker(concurrency=1)

    wait_for(lambda: "handed back without spending the attempt" in worker.log, timeout=30)
    assert get_request(db, request_id).status in ("queued", "running")
    llm_server.start()

    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=60)
    assert request.status == "succeeded", worker.log
    assert request.attempts == 3
