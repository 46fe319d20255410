"""A database outage: PostgreSQL stopped (fast shutdown) and started again under a running worker
and a running console.

The server here is this module's own, so stopping it touches no other test. Workers and the
console must carry on by themselves once it is back; a submission during the outage is refused
with the "queue unavailable" message and leaves nothing behind.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from db import roles
from db.connection import QueueUnavailable
from db.embedded import EmbeddedPostgres
from db.migrate import migrate
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests, submit_titles_request
from tests.conftest import wait_for
from tests.support.llm_server import ok

pytestmark = pytest.mark.timeout(240)

TEMPLATE = "outage_template"
# Heartbeats every second, so the outage surely meets the heartbeat, the polling and the listener.
BEATING_OFTEN = {"INKWELL_STALLED_WORKER_SECONDS": "3"}
OUTAGE_SECONDS = 4


@pytest.fixture(scope="module")
def restartable_postgres(tmp_path_factory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("outage-pg") / "data", durable=False)
    server.start()
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
        # The workers' and the console's logins, as on the suite's own server (tests/conftest.py).
        roles.create_roles(conn, passwords=None)
    migrate(server.uri_for(TEMPLATE))
    yield server
    server.stop()


@pytest.fixture
def database_url(restartable_postgres: EmbeddedPostgres) -> Iterator[str]:
    """Overrides the suite's fixture: every fixture built on it (db, inkwell_env, start_worker,
    console_env) works on this module's server."""
    name = f"outage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(restartable_postgres.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield restartable_postgres.uri_for(name)
    if not restartable_postgres.is_running():  # a failed test may leave it stopped
        restartable_postgres.start()
    with psycopg.connect(restartable_postgres.uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def connect(database_url: str) -> psycopg.Connection:
    # A fresh connection each time: a restart ends every connection opened before it.
    return psycopg.connect(database_url, autocommit=True)


def request_status(database_url: str, request_id) -> str:
    with connect(database_url) as conn:
        return get_request(conn, request_id).status


def submit_titles(database_url: str, topic: str) -> uuid.UUID:
    with connect(database_url) as conn:
        return submit_titles_request(conn, TitlesInput(topic=topic), requested_by="ana")


def counts(database_url: str) -> tuple[int, int]:
    with connect(database_url) as conn:
        requests = conn.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0]
        jobs = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE 'inkwell.generate%'").fetchone()[0]
    return requests, jobs


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


# --- The worker -----------------------------------------------------------------------------------


def test_a_running_worker_waits_out_a_database_restart_and_runs_jobs_submitted_after_it(
    restartable_postgres, database_url, start_worker
):
    worker = start_worker(extra_env=BEATING_OFTEN)
    before = submit_titles(database_url, "composting before the outage")
    wait_for(lambda: request_status(database_url, before) == "succeeded", timeout=30, message="the first job")

    restartable_postgres.stop()
    time.sleep(OUTAGE_SECONDS)
    assert worker.process.poll() is None, worker.log
    restartable_postgres.start()

    after = submit_titles(database_url, "composting after the outage")
    wait_for(lambda: request_status(database_url, after) == "succeeded", timeout=60, message="the job submitted after recovery")

    assert worker.process.poll() is None, "the same worker process ran it"
    log = worker.log
    assert "database unreachable while" in log and "the worker waits for it and carries on" in log
    assert "database reachable again after" in log
    assert "Side task" not in log, "no side task (listener, heartbeat, periodic deferrer) stopped the worker"
    # The heartbeat is written again by the same worker after recovery.
    with connect(database_url) as conn:
        fresh = conn.execute(
            "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - interval '5 seconds'"
        ).fetchone()[0]
    assert fresh == 1
    assert worker.stop() == 0


def test_a_job_running_through_a_short_outage_finishes_and_its_result_is_stored_once(
    restartable_postgres, database_url, start_worker, llm_server
):
    llm_server.set_script([ok(delay_per_chunk=0.4, chunks=20)])  # the model takes about 8 s
    request_id = submit_titles(database_url, "rain gardens for renters")
    worker = start_worker()
    wait_for(lambda: llm_server.active_requests, timeout=30, message="the model call to start")

    restartable_postgres.stop()
    time.sleep(OUTAGE_SECONDS)
    restartable_postgres.start()

    wait_for(lambda: request_status(database_url, request_id) in ("succeeded", "failed"), timeout=60, message="the job to end")
    with connect(database_url) as conn:
        request = get_request(conn, request_id)
        finished_events = conn.execute(
            "SELECT count(*) FROM procrastinate_events WHERE job_id = %s AND type = 'succeeded'", (request.job_id,)
        ).fetchone()[0]
    assert (request.status, request.attempts, request.error_code) == ("succeeded", 1, None), worker.log
    assert request.result["titles"]
    assert finished_events == 1
    assert len(llm_server.chat_requests) == 1, "the model was asked once"


# --- The console ----------------------------------------------------------------------------------


def test_the_console_shows_queue_unavailable_during_the_outage_and_recovers_by_itself(
    restartable_postgres, database_url, console_as
):
    submit_titles(database_url, "sourdough for beginners")
    at = console_as("operator").run()
    assert not at.exception
    assert "sourdough for beginners" in texts(at.markdown)
    assert "Queue unavailable" not in texts(at.error)

    restartable_postgres.stop()
    try:
        at.run()
        assert not at.exception
        assert "Queue unavailable — try again later" in texts(at.error)
        assert "sourdough for beginners" not in texts(at.markdown)
    finally:
        restartable_postgres.start()

    def recovered() -> bool:
        at.run()
        return not at.exception and "Queue unavailable" not in texts(at.error) and "sourdough for beginners" in texts(at.markdown)

    wait_for(recovered, timeout=30, interval=0.5, message="the page to show the requests again")


def test_a_submission_during_the_outage_is_refused_as_queue_unavailable_and_writes_nothing(
    restartable_postgres, database_url, console_as
):
    at = console_as("editor", "pages/1_Submit.py").run()
    assert not at.exception

    restartable_postgres.stop()
    try:
        at.text_area(key="one_topic").input("winter gardening")
        at.button(key="one_submit").click().run()
        assert not at.exception
        assert "Queue unavailable — try again later" in texts(at.error)
        assert not at.success
    finally:
        restartable_postgres.start()
    assert counts(database_url) == (0, 0)

    # The same click after recovery is not taken for a double submit: it queues the request.
    def submitted() -> bool:
        at.button(key="one_submit").click().run()
        return "Queued 1 request." in texts(at.success)

    wait_for(submitted, timeout=30, interval=0.5, message="the submission to go through after recovery")
    assert counts(database_url) == (1, 1)


def test_a_submission_whose_connection_dies_mid_transaction_leaves_neither_request_nor_job(database_url):
    """The submit's transaction is cut between its statements (its backend terminated while it waits
    on a lock): it raises QueueUnavailable and the database holds nothing of it."""
    with connect(database_url) as blocker, connect(database_url) as watcher:
        submitting = psycopg.connect(database_url, autocommit=True, application_name="hostile-submit")
        outcome: list[BaseException | None] = []

        def submit() -> None:
            try:
                submit_requests(
                    submitting, "titles", [TitlesInput(topic=f"topic number {i}") for i in range(50)], requested_by="ana"
                )
                outcome.append(None)
            except BaseException as error:  # noqa: BLE001 — handed to the test thread
                outcome.append(error)

        with blocker.transaction():
            # EXCLUSIVE: reads of the table go on, writes wait; so the submit inserts its jobs and
            # then waits to insert its request rows, inside its transaction.
            blocker.execute("LOCK TABLE inkwell.requests IN EXCLUSIVE MODE")
            thread = threading.Thread(target=submit)
            thread.start()
            pid, query = wait_for(
                lambda: watcher.execute(
                    "SELECT pid, query FROM pg_stat_activity WHERE application_name = 'hostile-submit' AND wait_event_type = 'Lock'"
                ).fetchone(),
                timeout=10,
                message="the submit to wait inside its transaction",
            )
            # Its job rows are already inserted (uncommitted); the request rows are what it waits to write.
            assert "inkwell.requests" in query
            watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
            thread.join(timeout=10)
        submitting.close()

    assert len(outcome) == 1 and isinstance(outcome[0], QueueUnavailable), outcome
    assert "Queue unavailable" in str(outcome[0])
    assert counts(database_url) == (0, 0)
