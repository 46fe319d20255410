"""The one way a request and its queue job are written: on the caller's connection, in one statement.

The statement defers the jobs through Procrastinate's own SQL function and inserts the request rows
linked to them (db/requests.py `insert_requests_with_jobs`), so it is both or neither by itself and
one round trip; inside a transaction the caller opened, it is part of that transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import psycopg
import pydantic
from procrastinate.tasks import Task

from db.requests import insert_requests_with_jobs


def enqueue_requests(
    conn: psycopg.Connection,
    task: Task,
    kind: str,
    inputs: Sequence[pydantic.BaseModel],
    *,
    requested_by: str,
    schedule_at: dt.datetime | None = None,
    queue: str = "default",
) -> list[tuple[uuid.UUID, int]]:
    """One job per input and its request row; returns (request id, job id) in order.

    The jobs are those `task.configure(queue=queue, schedule_at=schedule_at).batch_defer(request_id=...)`
    would write, with the task's lock, at the fair-share priority (migration 0045: a small submission,
    or a submitter with a short backlog, is taken first).
    """
    if task.queueing_lock is not None:
        # Procrastinate turns a duplicate queueing lock into AlreadyEnqueued; request kinds have none.
        raise ValueError(f"{task.name} has a queueing lock: request jobs are deferred without one")
    return insert_requests_with_jobs(
        conn,
        kind=kind,
        inputs=[data.model_dump(mode="json") for data in inputs],
        requested_by=requested_by,
        queue_name=queue,
        scheduled_at=schedule_at,
        task_name=task.name,
        lock=task.lock,
    )
