"""Ending a job writes its request row once (migration 0101): the result and the `succeeded` state
together, the status trigger's copy skipped because it changes nothing."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request


def updated_rows(db) -> int:
    """Row versions written to inkwell.requests so far (this backend's counter, pending ones included)."""
    return db.execute("SELECT pg_stat_get_xact_tuples_updated('inkwell.requests'::regclass)").fetchone()[0]


def running_request(db):
    request_id = submit_titles_request(db, TitlesInput(topic="heat pumps"), requested_by="ana")
    job_id = get_request(db, request_id).job_id
    worker_id = db.execute("SELECT id FROM procrastinate_register_worker_v1() AS id").fetchone()[0]
    db.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s", (worker_id, job_id))
    return request_id, job_id, worker_id


def test_a_succeeded_job_writes_its_request_once_with_the_result_and_the_final_state(db):
    request_id, job_id, worker_id = running_request(db)
    db.execute("UPDATE inkwell.requests SET progress = 60, current_step = 'Writing', eta_seconds = 1, "
               "partial_text = 'Ti', error_code = 'rate_limited', error_message = 'earlier attempt' WHERE id = %s",
               (request_id,))

    with db.transaction():
        before = updated_rows(db)
        finished = db.execute(
            "SELECT inkwell.finish_request_job(%s, %s, %s, %s, 'm', false, 7, true)",
            (request_id, job_id, worker_id, Jsonb({"titles": ["A", "B"]})),
        ).fetchone()[0]
        versions = updated_rows(db) - before

    assert finished is True
    assert versions == 1
    request = get_request(db, request_id)
    job_status = db.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()[0]
    assert job_status == "succeeded"
    assert (request.status, request.current_step, request.progress) == ("succeeded", "Done", 100)
    assert request.result == {"titles": ["A", "B"]}
    assert request.partial_text is None and request.eta_seconds is None
    assert request.error_code is None and request.error_message is None
    assert request.finished_at is not None
    assert db.execute("SELECT tokens_used FROM inkwell.requests WHERE id = %s", (request_id,)).fetchone()[0] == 7


def test_an_update_that_changes_nothing_leaves_no_row_version(db):
    request_id, _, _ = running_request(db)
    db.execute("UPDATE inkwell.requests SET current_step = 'Writing' WHERE id = %s", (request_id,))
    with db.transaction():
        before = updated_rows(db)
        cursor = db.execute("UPDATE inkwell.requests SET current_step = 'Writing' WHERE id = %s", (request_id,))
        versions = updated_rows(db) - before
    assert cursor.rowcount == 0
    assert versions == 0
