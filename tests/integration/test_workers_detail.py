"""Each worker on the Workers and queues page: host, process id, concurrency, uptime, the jobs it
ended since it started and the jobs it runs now, linked to their requests (migration 0130)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from db.queues import worker_details
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.support.console import make_user, signed_in_app
from tests.support.llm_server import ok

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "4_Workers_and_queues.py")
# Heartbeats (and with them the job counts) every second.
BEATING_OFTEN = {"INKWELL_STALLED_WORKER_SECONDS": "3"}


def submit(db, topic: str):
    return submit_titles_request(db, TitlesInput(topic=topic), requested_by="Ana")


@pytest.mark.timeout(120)
def test_the_page_shows_a_real_workers_process_and_the_job_it_runs_linked_to_its_request(
    inkwell_env, db, start_worker, llm_server
):
    llm_server.push(ok(delay_per_chunk=0.5, chunks=30))  # runs about 15 s
    request_id = submit(db, "tiny house living")
    worker = start_worker(concurrency=3, extra_env=BEATING_OFTEN)
    wait_for(lambda: get_request(db, request_id).status == "running", timeout=20, message="the job to start")

    at = signed_in_app(make_user(db, "operator"), "pages/4_Workers_and_queues.py").run()

    assert not at.exception
    row = at.dataframe[0].value.iloc[0]
    assert row["Process id"] == str(worker.process.pid)
    assert row["Host"] == socket.gethostname()
    assert row["Concurrency"] == "3"
    assert row["Running"] == 1 and row["State"] == "alive"
    [link] = at.get("page_link")
    assert link.label.startswith("tiny house living · Titles")
    assert link.proto.query_string == f"request={request_id}"
    assert any(f"pid {worker.process.pid}" in m.value for m in at.markdown)


@pytest.mark.timeout(120)
def test_jobs_a_worker_ended_are_counted_and_its_row_goes_when_it_stops(inkwell_env, db, start_worker, llm_server):
    first, second = submit(db, "urban beekeeping"), submit(db, "winter gardening")
    worker = start_worker(extra_env=BEATING_OFTEN)
    wait_for(lambda: all(get_request(db, r).status == "succeeded" for r in (first, second)), timeout=30)
    # The two requests, and the queue's own periodic checks that ran meanwhile.
    counted = wait_for(
        lambda: [w for w in worker_details(db, stale_after_seconds=30) if w.jobs_succeeded >= 2], timeout=10,
        message="the heartbeat to carry the counts",
    )
    assert counted[0].pid == worker.process.pid and counted[0].jobs_failed == 0

    worker.stop()
    assert db.execute("SELECT count(*) FROM inkwell.worker_details").fetchone()[0] == 0


def test_a_worker_without_details_is_still_listed(console_as, db):
    db.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())")
    at = console_as(script=PAGE).run()
    assert not at.exception
    row = at.dataframe[0].value.iloc[0]
    assert (row["Host"], row["Process id"], row["Running"], row["State"]) == ("—", "—", 0, "alive")


def test_a_dead_workers_details_go_when_its_row_is_pruned(db):
    worker_id = db.execute(
        "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '5 minutes') RETURNING id"
    ).fetchone()[0]
    db.execute("INSERT INTO inkwell.worker_details (worker_id, host, pid, concurrency) VALUES (%s, 'gone', 1, 4)",
               (worker_id,))
    assert [row[0] for row in db.execute("SELECT inkwell.prune_dead_workers(30)").fetchall()] == [worker_id]
    assert db.execute("SELECT count(*) FROM inkwell.worker_details").fetchone()[0] == 0
