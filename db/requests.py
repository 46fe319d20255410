"""Reading and writing `inkwell.requests`: the console uses the sync functions, the worker the async ones."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.queries import QUERIES

ACTIVE_STATUSES = ("scheduled", "queued", "running")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")


class GenerationRequest(BaseModel):
    """A row of inkwell.requests, as the console and the worker see it."""

    id: uuid.UUID
    kind: str
    input: dict[str, Any]
    status: str
    progress: int
    current_step: str
    eta_seconds: int | None
    partial_text: str | None
    result: dict[str, Any] | None
    model_name: str | None
    offline_model: bool | None
    error_code: str | None
    error_message: str | None
    attempts: int
    requested_by: str
    queue_name: str
    scheduled_at: dt.datetime | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime
    job_id: int | None
    previous_job_ids: list[int]
    # Who submitted it (NULL: before sign-in existed, or the system): the console offers cancel and
    # retry to that user (console_ui.may_act_on); the database decides.
    user_id: int | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class NewRequest(BaseModel):
    """What the submitter stores for one request, once its queue job exists."""

    id: uuid.UUID
    kind: str
    input: dict[str, Any]
    requested_by: str
    queue_name: str
    scheduled_at: dt.datetime | None
    job_id: int


def insert_requests_with_jobs(
    conn: psycopg.Connection,
    *,
    kind: str,
    inputs: Sequence[dict[str, Any]],
    requested_by: str,
    queue_name: str,
    scheduled_at: dt.datetime | None,
    task_name: str,
    lock: str | None = None,
) -> list[tuple[uuid.UUID, int]]:
    """Queue one request per input: its Procrastinate job and its row, in one statement.

    One statement is atomic by itself (both or neither, in or out of the caller's transaction) and
    one round trip for any number of requests. The jobs go through Procrastinate's own SQL function
    (`procrastinate_defer_jobs_v1`, what `batch_defer` calls), built in the statement instead of
    from a composite-type array dumped in Python. Returns (request id, job id) in input order.
    """
    request_ids = [uuid.uuid4() for _ in inputs]
    rows = conn.execute(
        QUERIES["insert_requests_with_jobs"],
        {
            "ids": request_ids,
            "inputs": Jsonb(list(inputs)),
            "kind": kind,
            "requested_by": requested_by,
            "queue_name": queue_name,
            "scheduled_at": scheduled_at,
            "task_name": task_name,
            "lock": lock,
        },
    ).fetchall()
    job_ids = dict(rows)
    return [(request_id, job_ids[request_id]) for request_id in request_ids]


def get_request(conn: psycopg.Connection, request_id: uuid.UUID | str) -> GenerationRequest | None:
    with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
        return cur.execute(QUERIES["get_request"], {"request_id": request_id}).fetchone()


def list_recent_requests(conn: psycopg.Connection, limit: int = 20) -> list[GenerationRequest]:
    with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
        return cur.execute(QUERIES["list_recent_requests"], {"limit": limit}).fetchall()


async def get_request_async(conn: psycopg.AsyncConnection, request_id: uuid.UUID | str) -> GenerationRequest | None:
    async with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
        await cur.execute(QUERIES["get_request"], {"request_id": request_id})
        return await cur.fetchone()


async def record_progress(
    conn: psycopg.AsyncConnection,
    request_id: uuid.UUID | str,
    *,
    progress: int,
    step: str,
    eta_seconds: int | None,
    partial_text: str | None,
) -> None:
    await conn.execute(
        QUERIES["record_progress"],
        {
            "request_id": request_id,
            "progress": max(0, min(100, progress)),
            "step": step,
            "eta_seconds": eta_seconds,
            "partial_text": partial_text,
        },
    )


async def store_result(
    conn: psycopg.AsyncConnection,
    request_id: uuid.UUID | str,
    *,
    job_id: int,
    worker_id: int | None,
    result: dict[str, Any],
    model_name: str,
    offline_model: bool,
    tokens_used: int | None = None,
) -> bool:
    """Store the result; False (nothing written) when the job no longer runs under this worker."""
    cur = await conn.execute(
        QUERIES["store_result"],
        {
            "request_id": request_id,
            "job_id": job_id,
            "worker_id": worker_id,
            "result": Jsonb(result),
            "model_name": model_name,
            "offline_model": offline_model,
            "tokens_used": tokens_used,
        },
    )
    return await cur.fetchone() is not None


async def record_error(
    conn: psycopg.AsyncConnection, request_id: uuid.UUID | str, *, error_code: str, error_message: str
) -> None:
    await conn.execute(
        QUERIES["record_error"],
        {"request_id": request_id, "error_code": error_code, "error_message": error_message},
    )


def list_own_requests(
    conn: psycopg.Connection,
    *,
    limit: int,
    status: str | None = None,
    kind: str | None = None,
    since: dt.datetime | None = None,
    before: tuple[dt.datetime, uuid.UUID] | None = None,
) -> list[GenerationRequest]:
    """The acting user's (or visitor's) own requests, newest first; `before` is the keyset of the
    last row of the previous page."""
    params = {
        "limit": limit, "status": status, "kind": kind, "since": since,
        "before_created_at": before[0] if before else None, "before_id": before[1] if before else None,
    }
    with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
        return cur.execute(QUERIES["list_own_requests"], params).fetchall()


async def get_requests_by_ids_async(conn: psycopg.AsyncConnection, ids: Sequence[uuid.UUID]) -> list[GenerationRequest]:
    async with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
        await cur.execute(QUERIES["get_requests_by_ids"], {"ids": list(ids)})
        return await cur.fetchall()
