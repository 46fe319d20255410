"""The Overview's figures: requests per status, throughput over time, wait and run times, failures.

The time-window queries read requests_finished_at_idx (migration 0003), so they cost what the
window holds, not what the table holds. Requests per status add the per-day rollup of the days
that ended (migration 0026, kept by queue_tasks/request_counts.py) to a live count of today's
requests, so they cost what today holds. The console caches the figures for a few seconds.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.queries import QUERIES
from db.queues import QueueSummary, WorkerStatus, list_workers, queue_summaries

LATENCY_WINDOW = dt.timedelta(hours=24)
FAILURES_WINDOW = dt.timedelta(hours=24)
LAST_HOUR = dt.timedelta(hours=1)
LAST_DAY = dt.timedelta(hours=24)


class FinishedInInterval(BaseModel):
    interval_start: dt.datetime
    succeeded: int
    failed: int


class WaitAndRunTimes(BaseModel):
    """Seconds; None when no request ran to an end in the window."""

    requests: int
    wait_median: float | None
    wait_p95: float | None
    run_median: float | None
    run_p95: float | None


class FailureGroup(BaseModel):
    error_code: str
    failures: int
    last_failed_at: dt.datetime
    latest_message: str | None


def count_requests_by_status(conn: psycopg.Connection) -> dict[str, int]:
    """Exact counts: the rolled-up days plus the requests created since, read in one statement."""
    return dict(conn.execute(QUERIES["count_requests_by_status"]).fetchall())


async def roll_up_request_counts(conn: psycopg.AsyncConnection, *, lock_timeout: str) -> int:
    """Count the days that ended since the last roll-up; returns how many. Writers of requests wait
    while a day is counted: past `lock_timeout` (e.g. '2s') it gives up (psycopg.errors.LockNotAvailable)."""
    async with conn.transaction():
        await conn.execute(QUERIES["limit_lock_wait"], {"lock_timeout": lock_timeout})
        cur = await conn.execute(QUERIES["roll_up_request_counts"])
        return (await cur.fetchone())[0]


def recount_request_counts(conn: psycopg.Connection) -> int:
    """Count every day again from nothing (after a bulk load with triggers off); returns the days counted."""
    with conn.transaction():
        return conn.execute(QUERIES["recount_request_counts"]).fetchone()[0]


def finished_per_interval(
    conn: psycopg.Connection, unit: Literal["minute", "hour"], window: dt.timedelta
) -> list[FinishedInInterval]:
    """Succeeded and failed requests per minute or hour over `window`, oldest first, empty intervals as zeros."""
    with conn.cursor(row_factory=class_row(FinishedInInterval)) as cur:
        return cur.execute(QUERIES["finished_per_interval"], {"unit": unit, "window": window}).fetchall()


def wait_and_run_times(conn: psycopg.Connection, window: dt.timedelta = LATENCY_WINDOW) -> WaitAndRunTimes:
    """Wait counts from when a request was due (submitted, or its scheduled time), not from submission:
    a request scheduled for tomorrow is not waiting for a worker today."""
    with conn.cursor(row_factory=class_row(WaitAndRunTimes)) as cur:
        return cur.execute(QUERIES["wait_and_run_times"], {"window": window}).fetchone()


def failures_by_error_code(conn: psycopg.Connection, window: dt.timedelta = FAILURES_WINDOW) -> list[FailureGroup]:
    with conn.cursor(row_factory=class_row(FailureGroup)) as cur:
        return cur.execute(QUERIES["failures_by_error_code"], {"window": window}).fetchall()


class OverviewFigures(BaseModel):
    """Everything the Overview shows, read in one go so the console can cache it as one value."""

    requests_by_status: dict[str, int]
    queues: list[QueueSummary]
    finished_per_minute: list[FinishedInInterval]
    finished_per_hour: list[FinishedInInterval]
    wait_and_run_times: WaitAndRunTimes
    failures: list[FailureGroup]
    workers: list[WorkerStatus]


def overview_figures(
    conn: psycopg.Connection, *, stale_after_seconds: float, always_listed_queues: list[str]
) -> OverviewFigures:
    return OverviewFigures(
        requests_by_status=count_requests_by_status(conn),
        queues=queue_summaries(conn, always_listed_queues),
        finished_per_minute=finished_per_interval(conn, "minute", LAST_HOUR),
        finished_per_hour=finished_per_interval(conn, "hour", LAST_DAY),
        wait_and_run_times=wait_and_run_times(conn),
        failures=failures_by_error_code(conn),
        workers=list_workers(conn, stale_after_seconds),
    )
