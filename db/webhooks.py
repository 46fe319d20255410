"""Completion webhooks: callback URLs of requests, users' signing secrets, delivery attempts (migration 0080).

A delivery job is deferred by the database itself when a request with a callback reaches a
terminal state; queue_tasks/webhooks.py delivers it and records each attempt here.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.queries import QUERIES


class Callback(BaseModel):
    url: str
    user_id: int
    secret: str | None


class DeliveryAttempt(BaseModel):
    id: int
    webhook_id: str
    attempt: int
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int | None
    attempted_at: dt.datetime


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def add_callback(conn: psycopg.Connection, request_id: uuid.UUID, url: str) -> None:
    """In the submission's transaction, as the acting user: POST the final status of this request to `url`."""
    conn.execute(QUERIES["add_request_callback"], {"request_id": request_id, "url": url})


def webhook_secret(conn: psycopg.Connection) -> str:
    """The acting user's signing secret (made on first use)."""
    return conn.execute(QUERIES["webhook_secret"], {"new_secret": new_secret()}).fetchone()[0]


async def get_callback(conn: psycopg.AsyncConnection, request_id: uuid.UUID | str) -> Callback | None:
    async with conn.cursor(row_factory=class_row(Callback)) as cur:
        await cur.execute(QUERIES["get_request_callback"], {"request_id": request_id})
        callback = await cur.fetchone()
    if callback is not None and callback.secret is None:
        cur = await conn.execute(QUERIES["ensure_webhook_secret_for_user"], {"user_id": callback.user_id, "new_secret": new_secret()})
        callback.secret = (await cur.fetchone())[0]
    return callback


async def record_attempt(
    conn: psycopg.AsyncConnection,
    *,
    request_id: uuid.UUID | str,
    webhook_id: str,
    attempt: int,
    url: str,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> None:
    await conn.execute(
        QUERIES["record_webhook_attempt"],
        {"request_id": request_id, "webhook_id": webhook_id, "attempt": attempt, "url": url,
         "status_code": status_code, "error": error, "duration_ms": duration_ms},
    )


def list_deliveries(conn: psycopg.Connection, request_id: uuid.UUID | str) -> list[DeliveryAttempt]:
    with conn.cursor(row_factory=class_row(DeliveryAttempt)) as cur:
        return cur.execute(QUERIES["list_webhook_deliveries"], {"request_id": request_id}).fetchall()
