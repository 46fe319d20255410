"""Queues and workers as operators see them: depth per queue, worker heartbeats, pause and resume.

A pause is a row in `inkwell.queue_pauses`; workers honour it because their fetch skips those
queues (queue_tasks/job_manager.py). Deleting the row wakes idle workers through a trigger.

Only operators and admins pause and resume: on a connection acting as a user (db.people.acting_as)
row-level security lets no one else insert or delete a pause (migration 0041), and these functions
say so with ActionRefused. Each pause and resume writes an audit entry in its transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Iterator

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.people import ActionRefused, acting_state, audit
from db.queries import QUERIES

logger = logging.getLogger("inkwell.queues")

# Procrastinate notifies on the channel "procrastinate_queue_v1#<queue>", and PostgreSQL channel
# names stop at 63 bytes: a longer queue name could not be woken.
MAX_QUEUE_NAME_BYTES = 40
# Who may pause and resume queues (row-level security on inkwell.queue_pauses says the same).
QUEUE_RUNNERS = ("operator", "admin")


class QueueSummary(BaseModel):
    queue_name: str
    waiting: int
    scheduled: int
    running: int
    failed_last_hour: int
    paused_by: str | None
    paused_at: dt.datetime | None

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class QueuePause(BaseModel):
    queue_name: str
    paused_by: str
    paused_at: dt.datetime


def queue_pauses(conn: psycopg.Connection) -> dict[str, QueuePause]:
    """The paused queues by name."""
    with conn.cursor(row_factory=class_row(QueuePause)) as cur:
        return {pause.queue_name: pause for pause in cur.execute(QUERIES["queue_pauses"]).fetchall()}


class WorkerStatus(BaseModel):
    id: int
    last_heartbeat: dt.datetime
    is_stale: bool
    running_jobs: int


class ModelOutage(BaseModel):
    """The model endpoint is down (migration 0060): since when, how many model jobs wait, its last error."""

    down_since: dt.datetime
    waiting: int
    last_error: str | None


def model_outage(conn: psycopg.Connection) -> ModelOutage | None:
    """The model endpoint's outage as the workers recorded it, or None while it is up."""
    with conn.cursor(row_factory=class_row(ModelOutage)) as cur:
        return cur.execute(QUERIES["model_outage"]).fetchone()


class QueueNameError(ValueError):
    """The queue name cannot be used; nothing was changed."""


def queue_summaries(conn: psycopg.Connection, always_listed: list[str]) -> list[QueueSummary]:
    """Every queue with work, recent failures or a pause, plus `always_listed` even when idle."""
    with conn.cursor(row_factory=class_row(QueueSummary)) as cur:
        return cur.execute(QUERIES["queue_summaries"], {"always_listed": always_listed}).fetchall()


def list_workers(conn: psycopg.Connection, stale_after_seconds: float) -> list[WorkerStatus]:
    with conn.cursor(row_factory=class_row(WorkerStatus)) as cur:
        return cur.execute(QUERIES["list_workers"], {"stale_after_seconds": stale_after_seconds}).fetchall()


class RunningJob(BaseModel):
    worker_id: int
    job_id: int
    task_name: str
    queue_name: str
    # The request the job runs for; None for the queue's own periodic tasks (housekeeping, checks).
    request_id: uuid.UUID | None
    kind: str | None
    topic: str | None
    progress: int | None
    started_at: dt.datetime | None


class WorkerDetail(BaseModel):
    """A worker as the Workers and queues page shows it (migration 0130). Host, process id,
    concurrency and start are None for a worker registered without them."""

    id: int
    last_heartbeat: dt.datetime
    is_stale: bool
    host: str | None
    pid: int | None
    concurrency: int | None
    started_at: dt.datetime | None
    uptime: dt.timedelta | None
    jobs_succeeded: int
    jobs_failed: int
    jobs_retried: int
    running: list[RunningJob] = []


def worker_details(conn: psycopg.Connection, stale_after_seconds: float) -> list[WorkerDetail]:
    """Every registered worker with where it runs, its job counts and the jobs it runs now."""
    with conn.cursor(row_factory=class_row(WorkerDetail)) as cur:
        workers = cur.execute(QUERIES["worker_details"], {"stale_after_seconds": stale_after_seconds}).fetchall()
    with conn.cursor(row_factory=class_row(RunningJob)) as cur:
        running = cur.execute(QUERIES["jobs_running_on_workers"]).fetchall()
    by_worker = {worker.id: worker for worker in workers}
    for job in running:
        if worker := by_worker.get(job.worker_id):
            worker.running.append(job)
    return workers


def _checked_queue_name(queue_name: str) -> str:
    name = queue_name.strip()
    if not name:
        raise QueueNameError("Say which queue: the name is empty.")
    if len(name.encode()) > MAX_QUEUE_NAME_BYTES:
        raise QueueNameError(f"Queue names are at most {MAX_QUEUE_NAME_BYTES} bytes long.")
    return name


def _require_queue_runner(conn: psycopg.Connection, verb: str) -> None:
    """ActionRefused unless operators' rights apply: an acting operator or admin, or the owner connection."""
    role, restricted = acting_state(conn)
    if restricted and role not in QUEUE_RUNNERS:
        who = f"you are signed in as {'an' if role[0] in 'aeiou' else 'a'} {role}" if role else "no active account is acting"
        raise ActionRefused(f"Only operators and admins can {verb} queues; {who}.")


@contextlib.contextmanager
def _refused_by_row_security(verb: str) -> Iterator[None]:
    """Should the database refuse what the check above let through (the role changed meanwhile)."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege:
        raise ActionRefused(f"Only operators and admins can {verb} queues.") from None


def pause_queue(conn: psycopg.Connection, queue_name: str, paused_by: str) -> bool:
    """Stop every worker fetching from the queue; jobs already running finish. False if already paused."""
    name = _checked_queue_name(queue_name)
    with _refused_by_row_security("pause"), conn.transaction():
        _require_queue_runner(conn, "pause")
        paused = conn.execute(QUERIES["pause_queue"], {"queue_name": name, "paused_by": paused_by}).fetchone()
        if paused:
            audit(conn, "queue.paused", "queue", name, {"paused_by": paused_by})
    if paused:
        logger.info("queue %s paused by %s", name, paused_by)
    return paused is not None


def resume_queue(conn: psycopg.Connection, queue_name: str, resumed_by: str) -> bool:
    """Let workers fetch from the queue again, waking idle ones at once. False if it was not paused."""
    with _refused_by_row_security("resume"), conn.transaction():
        _require_queue_runner(conn, "resume")
        row = conn.execute(QUERIES["resume_queue"], {"queue_name": queue_name}).fetchone()
        if row:
            audit(conn, "queue.resumed", "queue", queue_name, {"resumed_by": resumed_by, "paused_by": row[1]})
    if row:
        _, paused_by, paused_at = row
        logger.info("queue %s resumed by %s (paused by %s at %s)", queue_name, resumed_by, paused_by, paused_at)
    return row is not None


class ServiceHealth(BaseModel):
    live_workers: int
    queue_depth: int


def service_health(conn: psycopg.Connection, stale_after_seconds: float) -> ServiceHealth:
    """Workers that beat within `stale_after_seconds`, and the jobs waiting (owner connection)."""
    with conn.cursor(row_factory=class_row(ServiceHealth)) as cur:
        return cur.execute(QUERIES["service_health"], {"stale_after_seconds": stale_after_seconds}).fetchone()
