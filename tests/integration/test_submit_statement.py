"""A submission is one statement: Procrastinate's own job rows and the request rows, both or neither,
in one round trip on an idle autocommit connection, in a savepoint inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest
from procrastinate import App
from procrastinate.testing import InMemoryConnector
from psycopg import pq

from db.connection import QueueUnavailable
from queue_tasks.enqueue import enqueue_requests
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests, submit_titles_request
from queue_tasks.titles import generate_titles

JOB_COLUMNS = "queue_name, task_name, lock, queueing_lock, status, scheduled_at, attempts, abort_requested, worker_id"


def count(db: psycopg.Connection, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def job_row(db: psycopg.Connection, job_id: int) -> tuple:
    return db.execute(f"SELECT {JOB_COLUMNS}, args FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()


def event_types(db: psycopg.Connection, job_id: int) -> list[str]:
    return [row[0] for row in db.execute("SELECT type FROM procrastinate_events WHERE job_id = %s ORDER BY id", (job_id,))]


def round_trips(conn: psycopg.Connection, trace_path: Path, action) -> int:
    """How many times the client waited for the server during `action`: the Sync and Flush messages
    and simple queries it sent, read from libpq's protocol trace."""
    with open(trace_path, "w") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            action()
        finally:
            conn.pgconn.untrace()
    sent = [line.split("\t")[2].split()[0] for line in trace_path.read_text().splitlines() if line.startswith("F\t")]
    return sum(1 for message in sent if message in ("Sync", "Flush", "Query"))


@pytest.mark.parametrize("scheduled", [False, True], ids=["now", "scheduled"])
def test_the_job_is_the_row_procrastinate_s_own_batch_defer_writes(db, scheduled):
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30) if scheduled else None
    [ours] = enqueue_requests(db, generate_titles, "titles", [TitlesInput(topic="urban beekeeping")],
                              requested_by="ana", schedule_at=start, queue="default")
    request_id, job_id = ours
    [theirs] = generate_titles.configure(connection=db, queue="default", schedule_at=start).batch_defer(
        {"request_id": str(request_id)}
    )
    assert job_row(db, job_id) == job_row(db, theirs)
    assert job_row(db, job_id)[-1] == {"request_id": str(request_id)}
    assert event_types(db, job_id) == event_types(db, theirs)
    assert sorted(event_types(db, job_id)) == (["deferred", "scheduled"] if scheduled else ["deferred"])


def test_bulk_submit_keeps_the_order_of_the_inputs(db):
    inputs = [TitlesInput(topic=f"topic number {i}") for i in range(300)]
    ids = submit_requests(db, "titles", inputs, requested_by="bulk")
    rows = {
        request_id: (topic, job_id, job_request_id)
        for request_id, topic, job_id, job_request_id in db.execute(
            "SELECT r.id, r.input->>'topic', r.job_id, j.args->>'request_id' "
            "FROM inkwell.requests r JOIN procrastinate_jobs j ON j.id = r.job_id"
        )
    }
    assert [rows[i][0] for i in ids] == [data.topic for data in inputs]
    assert all(rows[i][2] == str(i) for i in ids)
    # Workers take equal priorities by job id: the upload's order.
    job_ids = [rows[i][1] for i in ids]
    assert job_ids == sorted(job_ids) and len(set(job_ids)) == 300


def test_a_submission_on_an_autocommit_connection_is_one_round_trip(db, tmp_path):
    submit_titles_request(db, TitlesInput(topic="warm up"), requested_by="ana")  # first-use lookups
    trips = round_trips(db, tmp_path / "trace", lambda: submit_titles_request(db, TitlesInput(topic="urban beekeeping"), requested_by="ana"))
    assert trips == 1
    assert count(db, "inkwell.requests") == count(db, "procrastinate_jobs") == 2


def test_inside_the_caller_s_transaction_a_submission_is_a_savepoint_of_it(db, tmp_path):
    with db.transaction():
        trips = round_trips(db, tmp_path / "trace", lambda: submit_titles_request(db, TitlesInput(topic="urban beekeeping"), requested_by="ana"))
    assert trips == 3  # SAVEPOINT, the statement, RELEASE
    assert count(db, "inkwell.requests") == count(db, "procrastinate_jobs") == 1


def test_a_failed_submission_inside_the_caller_s_transaction_leaves_that_transaction_usable(db):
    db.execute(
        """
        CREATE FUNCTION refuse_request() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$;
        CREATE TRIGGER refuse_request BEFORE INSERT ON inkwell.requests FOR EACH ROW EXECUTE FUNCTION refuse_request();
        """
    )
    with db.transaction():
        db.execute("CREATE TABLE caller_work (n int)")
        db.execute("INSERT INTO caller_work VALUES (1)")
        with pytest.raises(psycopg.errors.RaiseException, match="disk full"):
            submit_titles_request(db, TitlesInput(topic="urban beekeeping"), requested_by="ana")
        db.execute("INSERT INTO caller_work VALUES (2)")
    assert count(db, "caller_work") == 2
    assert count(db, "procrastinate_jobs") == count(db, "inkwell.requests") == 0


def test_submit_on_a_connection_the_server_dropped_says_queue_unavailable(db, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        db.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(QueueUnavailable, match="Queue unavailable"):
            submit_titles_request(conn, TitlesInput(topic="urban beekeeping"), requested_by="ana")
    assert count(db, "procrastinate_jobs") == count(db, "inkwell.requests") == 0


def test_a_task_with_a_queueing_lock_is_refused_before_anything_is_written(db):
    other = App(connector=InMemoryConnector())

    @other.task(name="tests.locked", queueing_lock="only-one")
    def locked(request_id: str) -> None:
        pass

    with pytest.raises(ValueError, match="queueing lock"):
        enqueue_requests(db, locked, "titles", [TitlesInput(topic="urban beekeeping")], requested_by="ana")
    assert count(db, "procrastinate_jobs") == count(db, "inkwell.requests") == 0
