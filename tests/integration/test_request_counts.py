"""The Overview's requests-by-status come from a per-day rollup of the days that ended plus a live
count of today's requests (migration 0026): always the exact count, however requests change.

"Days ago" is made the way it happens: requests created (or moved, as housekeeping's tests do) to
earlier days, jobs finishing after midnight, retries of old failures, history retention deleting
old rows; and a roll-up that has not run for a while (the periodic task was down) is simulated by
moving its mark back.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import psycopg.sql
import pytest
from psycopg.errors import LockNotAvailable

from db.overview import count_requests_by_status, recount_request_counts, roll_up_request_counts
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.request_counts import roll_up_request_counts as roll_up_task
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(120)


def exact_counts(db) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM inkwell.requests GROUP BY status").fetchall())


def rollup_rows(db) -> list[tuple]:
    return db.execute("SELECT day, status, requests FROM inkwell.request_counts_by_day ORDER BY day, status, requests").fetchall()


def insert_requests(db, status: str, days_ago: int, count: int = 1) -> None:
    for _ in range(count):
        db.execute(
            """
            INSERT INTO inkwell.requests (id, kind, input, status, requested_by, created_at)
            VALUES (%s, 'titles', '{"topic": "counted"}', %s, 'ana', now() - make_interval(days => %s))
            """,
            (uuid.uuid4(), status, days_ago),
        )


def submit(db, *topics: str) -> list[uuid.UUID]:
    return submit_requests(db, "titles", [TitlesInput(topic=t) for t in topics], requested_by="ana")


def move_to_days_ago(db, request_ids, days: int) -> None:
    db.execute("UPDATE inkwell.requests SET created_at = created_at - make_interval(days => %s) WHERE id = ANY(%s)",
               (days, list(request_ids)))


def run_jobs(db, request_ids, *statuses: str) -> None:
    """Move the requests' jobs through these statuses, as a worker does; the 0002 trigger follows."""
    job_ids = [get_request(db, r).job_id for r in request_ids]
    for status in statuses:
        db.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = ANY(%s)", (status, job_ids))


def roll_up(database_url: str, lock_timeout: str = "2s") -> int:
    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await roll_up_request_counts(conn, lock_timeout=lock_timeout)

    return asyncio.run(run())


def pretend_not_rolled_up_for(db, days: int) -> None:
    db.execute("UPDATE inkwell.request_counts_rollup SET counted_before = inkwell.utc_day(now()) - %s", (days,))


def test_counts_of_older_days_and_today_add_up_to_the_exact_count(db, database_url):
    insert_requests(db, "succeeded", days_ago=3, count=4)
    insert_requests(db, "failed", days_ago=2, count=2)
    insert_requests(db, "cancelled", days_ago=1)
    insert_requests(db, "succeeded", days_ago=0, count=3)
    submit(db, "waiting today")
    assert count_requests_by_status(db) == exact_counts(db) == {"succeeded": 7, "failed": 2, "cancelled": 1, "queued": 1}
    roll_up(database_url)
    assert count_requests_by_status(db) == exact_counts(db)


def test_todays_requests_on_their_way_through_the_queue_write_nothing_to_the_rollup(db):
    before = rollup_rows(db)
    request_ids = submit(db, "one", "two", "three")
    run_jobs(db, request_ids, "doing")
    db.execute("UPDATE inkwell.requests SET progress = 50, current_step = 'Writing', partial_text = 'so far' WHERE id = ANY(%s)",
               (request_ids,))
    run_jobs(db, request_ids, "succeeded")
    assert rollup_rows(db) == before
    assert count_requests_by_status(db) == exact_counts(db) == {"succeeded": 3}


def test_jobs_that_finish_after_midnight_move_their_day_from_running_to_finished(db, database_url):
    request_ids = submit(db, "started before midnight", "also before", "failed after")
    run_jobs(db, request_ids, "doing")
    move_to_days_ago(db, request_ids, 1)  # they were created yesterday, and are still running
    assert count_requests_by_status(db) == exact_counts(db) == {"running": 3}

    run_jobs(db, request_ids[:2], "succeeded")
    run_jobs(db, request_ids[2:], "failed")

    assert count_requests_by_status(db) == exact_counts(db) == {"succeeded": 2, "failed": 1}
    roll_up(database_url)
    yesterday = db.execute("SELECT inkwell.utc_day(now()) - 1").fetchone()[0]
    assert rollup_rows(db) == [(yesterday, "failed", 1), (yesterday, "succeeded", 2)], "folded: one row per day and status"
    assert count_requests_by_status(db) == exact_counts(db)


def test_a_retried_old_failure_counts_as_queued_again_then_as_its_new_outcome(db, database_url):
    request_ids = submit(db, "failed last week")
    run_jobs(db, request_ids, "doing", "failed")
    move_to_days_ago(db, request_ids, 7)
    roll_up(database_url)
    # A retry (queue_tasks.actions) re-queues the request on its job; then a worker runs it.
    run_jobs(db, request_ids, "todo")
    assert count_requests_by_status(db) == exact_counts(db) == {"queued": 1}
    run_jobs(db, request_ids, "doing", "succeeded")
    assert count_requests_by_status(db) == exact_counts(db) == {"succeeded": 1}


def test_deleting_old_history_takes_it_out_of_the_counts(db, database_url):
    insert_requests(db, "succeeded", days_ago=40, count=5)
    insert_requests(db, "failed", days_ago=2, count=2)
    roll_up(database_url)
    db.execute("DELETE FROM inkwell.requests WHERE created_at < now() - interval '30 days'")
    assert count_requests_by_status(db) == exact_counts(db) == {"failed": 2}


def test_a_roll_up_that_did_not_run_for_days_counts_those_days_when_it_runs(db, database_url):
    insert_requests(db, "succeeded", days_ago=5, count=3)
    insert_requests(db, "failed", days_ago=3)
    insert_requests(db, "cancelled", days_ago=1, count=2)
    pretend_not_rolled_up_for(db, 4)
    assert count_requests_by_status(db) == exact_counts(db), "days not rolled up yet are counted live"

    assert roll_up(database_url) == 2  # the days with requests among the four
    assert db.execute("SELECT counted_before = inkwell.utc_day(now()) FROM inkwell.request_counts_rollup").fetchone()[0]
    assert count_requests_by_status(db) == exact_counts(db) == {"succeeded": 3, "failed": 1, "cancelled": 2}


def test_recount_after_a_load_without_triggers_gives_the_exact_count_again(db):
    db.execute("SET session_replication_role = replica")
    insert_requests(db, "succeeded", days_ago=9, count=3)
    db.execute("SET session_replication_role = DEFAULT")
    assert count_requests_by_status(db) != exact_counts(db), "the rollup missed what the load wrote"
    recount_request_counts(db)
    assert count_requests_by_status(db) == exact_counts(db) == {"succeeded": 3}


def test_roll_up_gives_up_while_a_transaction_holds_the_table_and_counts_stay_exact(db, database_url):
    insert_requests(db, "succeeded", days_ago=2, count=2)
    pretend_not_rolled_up_for(db, 3)
    with psycopg.connect(database_url) as writer:
        writer.execute("UPDATE inkwell.requests SET progress = 1")  # a writer's lock, held until commit
        with pytest.raises(LockNotAvailable):
            roll_up(database_url, lock_timeout="100ms")
        writer.rollback()
    assert count_requests_by_status(db) == exact_counts(db)
    assert roll_up(database_url) == 1


def test_readers_who_may_not_read_the_rollup_get_a_live_count_instead(db):
    insert_requests(db, "succeeded", days_ago=2, count=2)
    role = psycopg.sql.Identifier(f"counts_reader_{uuid.uuid4().hex[:8]}")
    db.execute(psycopg.sql.SQL("CREATE ROLE {} BYPASSRLS").format(role))  # reads every request, not the rollup
    try:
        db.execute(psycopg.sql.SQL("GRANT USAGE ON SCHEMA inkwell TO {}").format(role))
        db.execute(psycopg.sql.SQL("GRANT SELECT ON inkwell.requests TO {}").format(role))
        with db.transaction():
            db.execute(psycopg.sql.SQL("SET LOCAL ROLE {}").format(role))
            assert count_requests_by_status(db) == {"succeeded": 2}
    finally:
        db.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(role))
        db.execute(psycopg.sql.SQL("DROP ROLE {}").format(role))


def test_the_periodic_task_rolls_up_in_a_worker(db, start_worker):
    insert_requests(db, "failed", days_ago=2, count=2)
    pretend_not_rolled_up_for(db, 3)
    job_id = roll_up_task.configure(connection=db).defer(timestamp=int(time.time()))
    start_worker()
    wait_for(
        lambda: db.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()[0] == "succeeded",
        timeout=30, message="the roll-up job to succeed",
    )
    assert db.execute("SELECT counted_before = inkwell.utc_day(now()) FROM inkwell.request_counts_rollup").fetchone()[0]
    assert count_requests_by_status(db) == exact_counts(db) == {"failed": 2}
