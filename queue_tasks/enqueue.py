"""The one way a request and its queue job are written: on the caller's connection and transaction.

The job INSERT runs on that connection (Procrastinate's `configure(connection=...)`), followed by
the request rows, so whatever transaction the caller opened holds both or neither.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import psycopg
import pydantic
from procrastinate.tasks import Task

from db.requests import NewRequest, insert_requests


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
    """One job per input (batch defer) and its request row; returns (request id, job id) in order."""
    request_ids = [uuid.uuid4() for _ in inputs]
    job_ids = task.configure(connection=conn, queue=queue, schedule_at=schedule_at).batch_defer(
        *({"request_id": str(request_id)} for request_id in request_ids)
    )
    insert_requests(
        conn,
        [
            NewRequest(
                id=request_id,
                kind=kind,
                input=data.model_dump(mode="json"),
                requested_by=requested_by,
                queue_name=queue,
                scheduled_at=schedule_at,
                job_id=job_id,
            )
            for request_id, data, job_id in zip(request_ids, inputs, job_ids)
        ],
    )
    return list(zip(request_ids, job_ids))
