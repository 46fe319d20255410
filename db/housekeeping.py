"""Housekeeping queries: archive the events of old finished queue jobs, and trim Inkwell's history."""

from __future__ import annotations

import psycopg

from db.queries import QUERIES

FINISHED_JOB_STATUSES = ["succeeded", "failed", "cancelled", "aborted"]


async def archive_finished_job_events(conn: psycopg.AsyncConnection, *, older_than_hours: int) -> int:
    """Copy the events of jobs finished over `older_than_hours` ago; returns how many were new."""
    cur = await conn.execute(
        QUERIES["archive_finished_job_events"],
        {"statuses": FINISHED_JOB_STATUSES, "older_than_hours": older_than_hours},
    )
    return cur.rowcount


async def delete_old_history(conn: psycopg.AsyncConnection, *, older_than_seconds: float) -> tuple[int, int]:
    """Delete finished requests (and their archived events) older than this; returns both counts."""
    cur = await conn.execute(QUERIES["delete_old_history"], {"older_than_seconds": older_than_seconds})
    requests, events = await cur.fetchone()
    return requests, events
