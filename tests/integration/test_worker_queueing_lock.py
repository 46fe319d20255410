"""A periodic check that is still waiting when its next tick comes must not stop the worker.

The stalled-job check, the hourly clean-up and the count roll-up carry a queueing lock: one waits
at a time. When a tick finds the previous one still queued (a busy worker, two workers), PostgreSQL
refuses the insert with a unique violation, and Procrastinate reads the lock's name from the
error's DETAIL to raise AlreadyEnqueued, which its periodic deferrer shrugs off. PostgreSQL leaves
that DETAIL out for a role that row-level security applies to; Procrastinate then fails an
assertion, and the worker stops ("Side task deferrer failed"). The workers' login therefore
bypasses row-level security (db/roles.py), which shows it no row it could not already see.
"""

from __future__ import annotations

import time
import uuid

import psycopg
import psycopg.sql
import pytest

from db import roles

from queue_tasks.maintenance import STALLED_CHECK_TASK
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(120)

QUEUE_A_CHECK = """
    INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args, scheduled_at)
    VALUES ('default', %(task)s, %(lock)s, '{"timestamp": 0}', now() + interval '1 hour')
"""


def test_a_second_job_with_the_same_queueing_lock_names_its_lock_to_the_workers_login(db, worker_database_url):
    db.execute(QUEUE_A_CHECK, {"task": STALLED_CHECK_TASK, "lock": STALLED_CHECK_TASK})
    with psycopg.connect(worker_database_url, autocommit=True) as worker:
        with pytest.raises(psycopg.errors.UniqueViolation) as refused:
            worker.execute(QUEUE_A_CHECK, {"task": STALLED_CHECK_TASK, "lock": STALLED_CHECK_TASK})
    assert refused.value.diag.constraint_name == "procrastinate_jobs_queueing_lock_idx_v1"
    assert refused.value.diag.message_detail == f"Key (queueing_lock)=({STALLED_CHECK_TASK}) already exists."


def check_the_worker_rides_over_the_waiting_check(db, start_worker, extra_env: dict[str, str] | None = None) -> None:
    # The previous check, still waiting (scheduled an hour ahead): every tick of this worker meets it.
    waiting = db.execute(QUEUE_A_CHECK + " RETURNING id", {"task": STALLED_CHECK_TASK, "lock": STALLED_CHECK_TASK}).fetchone()[0]
    worker = start_worker(extra_env={"INKWELL_STALLED_CHECK_SECONDS": "1", **(extra_env or {})})
    wait_for(lambda: db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0], timeout=30,
             message="the worker to start")
    time.sleep(4)  # a tick a second, each refused by the waiting check's queueing lock

    assert worker.process.poll() is None, worker.log
    assert "Side task deferrer failed" not in worker.log, worker.log

    # Its deferrer is still at work: with the waiting check gone, the next tick queues one, and it runs.
    db.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (waiting,))
    wait_for(lambda: db.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded'", (STALLED_CHECK_TASK,)
    ).fetchone()[0], timeout=30, message="a check queued by the next tick to run")
    assert worker.process.poll() is None, worker.log


def test_a_worker_keeps_running_when_its_periodic_check_is_already_queued(db, start_worker):
    check_the_worker_rides_over_the_waiting_check(db, start_worker)


@pytest.fixture
def worker_login_under_row_security(db, database_url):
    """A workers' login as made before it had BYPASSRLS: a member of inkwell_worker (its grants and
    policies), under row-level security."""
    name = f"worker_{uuid.uuid4().hex[:8]}"
    db.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN NOBYPASSRLS IN ROLE inkwell_worker").format(psycopg.sql.Identifier(name)))
    yield roles.url_for(database_url, user=name)
    db.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(name)))
    db.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(name)))


def test_a_workers_login_without_bypassrls_still_keeps_running(db, start_worker, worker_login_under_row_security):
    with psycopg.connect(worker_login_under_row_security, autocommit=True) as worker:
        assert worker.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    check_the_worker_rides_over_the_waiting_check(db, start_worker, {"DATABASE_URL": worker_login_under_row_security})
