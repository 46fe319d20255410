"""Submitting writes the request row and its queue job in one transaction."""

from __future__ import annotations

import psycopg
import pytest

from db.connection import QueueUnavailable, open_pool
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import SubmitError, submit_requests, submit_titles_request


def count(db: psycopg.Connection, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_submit_stores_the_request_linked_to_its_queued_job(db):
    request_id = submit_titles_request(db, TitlesInput(topic="urban beekeeping", count=3), requested_by="  ana  ")
    request = get_request(db, request_id)
    job = db.execute("SELECT status, args, task_name FROM procrastinate_jobs WHERE id = %s", (request.job_id,)).fetchone()
    assert job == ("todo", {"request_id": str(request_id)}, "inkwell.generate_titles")
    assert (request.kind, request.status, request.current_step, request.requested_by) == ("titles", "queued", "Queued", "ana")
    assert request.input == {"topic": "urban beekeeping", "audience": None, "tone": None, "count": 3}


def test_failure_between_the_two_writes_leaves_neither(db):
    # Make the second write (the request row) fail after the job INSERT went through.
    db.execute(
        """
        CREATE FUNCTION refuse_request() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$;
        CREATE TRIGGER refuse_request BEFORE INSERT ON inkwell.requests FOR EACH ROW EXECUTE FUNCTION refuse_request();
        """
    )
    with pytest.raises(psycopg.errors.RaiseException, match="disk full"):
        submit_titles_request(db, TitlesInput(topic="urban beekeeping"), requested_by="ana")
    assert count(db, "procrastinate_jobs") == 0
    assert count(db, "inkwell.requests") == 0


def test_bulk_submit_queues_every_request_in_one_batch(db):
    inputs = [TitlesInput(topic=f"topic number {i}") for i in range(250)]
    ids = submit_requests(db, "titles", inputs, requested_by="bulk")
    assert len(set(ids)) == 250
    assert count(db, "procrastinate_jobs") == 250
    linked = db.execute(
        "SELECT count(*) FROM inkwell.requests r JOIN procrastinate_jobs j ON j.id = r.job_id "
        "WHERE j.args->>'request_id' = r.id::text"
    ).fetchone()[0]
    assert linked == 250


def test_scheduled_request_is_stored_as_scheduled(db):
    import datetime as dt

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)
    request_id = submit_titles_request(db, TitlesInput(topic="winter gardening"), requested_by="ana", schedule_at=later)
    request = get_request(db, request_id)
    assert (request.status, request.current_step) == ("scheduled", "Scheduled")
    assert request.scheduled_at == later


@pytest.mark.parametrize(
    "requester, message",
    [("", "requester name is empty"), ("   ", "requester name is empty"), ("x" * 101, "longer than 100")],
)
def test_submit_without_a_usable_requester_is_refused_and_writes_nothing(db, requester, message):
    with pytest.raises(SubmitError, match=message):
        submit_titles_request(db, TitlesInput(topic="urban beekeeping"), requested_by=requester)
    assert count(db, "procrastinate_jobs") == 0


def test_submit_while_the_database_is_down_says_queue_unavailable(tmp_path):
    # Nothing listens on this socket folder: the database is "down".
    pool = open_pool(f"postgresql://postgres@/postgres?host={tmp_path}", timeout=1)
    try:
        with pytest.raises(QueueUnavailable, match="Queue unavailable"):
            from db.connection import console_connection

            with console_connection(pool) as conn:
                submit_titles_request(conn, TitlesInput(topic="urban beekeeping"), requested_by="ana")
    finally:
        pool.close()
