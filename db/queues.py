"""Queues and workers as operators see them: depth per queue, worker heartbeats, pause and resume.

A pause is a row in `inkwell.queue_pauses`; workers honour it because their fetch skips those
queues (queue_tasks/job_manager.py). Deleting the row wakes idle workers through a trigger.
"""

from __future__ import annotations

import datetime as dt
import logging

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.queries import QUERIES

logger = logging.getLogger("inkwell.queues")

# Procrastinate notifies on the channel "procrastinate_queue_v1#<queue>", and PostgreSQL channel
# names stop at 63 bytes: a longer queue name could not be woken.
MAX_QUEUE_NAME_BYTES = 40


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


class WorkerStatus(BaseModel):
    id: int
    last_heartbeat: dt.datetime
    is_stale: bool
    running_jobs: int


class QueueNameError(ValueError):
    """The queue name cannot be used; nothing was changed."""


def queue_summaries(conn: psycopg.Connection, always_listed: list[str]) -> list[QueueSummary]:
    """Every queue with work, recent failures or a pause, plus `always_listed` even when idle."""
    with conn.cursor(row_factory=class_row(QueueSummary)) as cur:
        return cur.execute(QUERIES["queue_summaries"], {"always_listed": always_listed}).fetchall()


def list_workers(conn: psycopg.Connection, stale_after_seconds: float) -> list[WorkerStatus]:
    with conn.cursor(row_factory=class_row(WorkerStatus)) as cur:
        return cur.execute(QUERIES["list_workers"], {"stale_after_seconds": stale_after_seconds}).fetchall()


def _checked_queue_name(queue_name: str) -> str:
    name = queue_name.strip()
    if not name:
        raise QueueNameError("Say which queue: the name is empty.")
    if len(name.encode()) > MAX_QUEUE_NAME_BYTES:
        raise QueueNameError(f"Queue names are at most {MAX_QUEUE_NAME_BYTES} bytes long.")
    return name


def pause_queue(conn: psycopg.Connection, queue_name: str, paused_by: str) -> bool:
    """Stop every worker fetching from the queue; jobs already running finish. False if already paused."""
    name = _checked_queue_name(queue_name)
    paused = conn.execute(QUERIES["pause_queue"], {"queue_name": name, "paused_by": paused_by}).fetchone()
    if paused:
        logger.info("queue %s paused by %s", name, paused_by)
    return paused is not None


def resume_queue(conn: psycopg.Connection, queue_name: str, resumed_by: str) -> bool:
    """Let workers fetch from the queue again, waking idle ones at once. False if it was not paused."""
    row = conn.execute(QUERIES["resume_queue"], {"queue_name": queue_name}).fetchone()
    if row:
        _, paused_by, paused_at = row
        logger.info("queue %s resumed by %s (paused by %s at %s)", queue_name, resumed_by, paused_by, paused_at)
    return row is not None
