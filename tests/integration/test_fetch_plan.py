"""The job fetch keeps its cheap plan when the queue tables' statistics are stale (migration 0100).

Statistics taken while procrastinate_jobs was empty, or while all its rows were finished, made the
planner read and sort every waiting job on each fetch.
auto_explain (loaded in the test's own session, plans sent back as NOTICEs) shows the plan the fetch
function really runs.
"""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.timeout(120)


def add_jobs(conn: psycopg.Connection, count: int, *, status: str = "todo", lock: str | None = None) -> None:
    conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, lock) "
        "SELECT 'default', 'inkwell.generate_titles', '{}'::jsonb, %s::procrastinate_job_status, %s "
        "FROM generate_series(1, %s)",
        (status, lock, count),
    )


def fetch_plan(database_url: str) -> tuple[int | None, str]:
    """Fetch one job in a fresh session (no cached plan); returns its id and the fetch statement's plan."""
    notices: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = notice")
        row = conn.execute("SELECT id FROM inkwell.fetch_job_v2(ARRAY['default']::varchar[], NULL)").fetchone()
    plans = [n for n in notices if "WITH candidate AS" in n]
    assert plans, f"auto_explain reported no fetch plan: {notices!r}"
    return row[0], plans[0]


def test_stats_of_an_empty_table_do_not_make_the_fetch_sort_the_whole_queue(db, database_url):
    db.execute("ANALYZE procrastinate_jobs")  # empty: what the planner knows when the burst comes
    add_jobs(db, 2000)
    # 1,500 of them ran: their old versions stay in the indexes until a vacuum
    db.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id IN "
               "(SELECT id FROM procrastinate_jobs ORDER BY id LIMIT 1500)")
    first_waiting = db.execute("SELECT min(id) FROM procrastinate_jobs WHERE status = 'todo'").fetchone()[0]

    job_id, plan = fetch_plan(database_url)

    assert job_id == first_waiting
    assert "Sort" not in plan, plan
    assert "Index Scan using procrastinate_jobs_priority_idx_v1 on procrastinate_jobs jobs" in plan, plan


def test_a_locked_job_still_waits_for_the_running_job_of_its_lock(db, database_url):
    add_jobs(db, 1, status="doing", lock="site-42")
    add_jobs(db, 1, lock="site-42")
    db.execute("ANALYZE procrastinate_jobs")
    add_jobs(db, 1)  # no lock: the one that may run
    free = db.execute("SELECT max(id) FROM procrastinate_jobs").fetchone()[0]

    job_id, _ = fetch_plan(database_url)

    assert job_id == free
