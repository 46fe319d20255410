"""Idempotency keys of the HTTP API's creates, enforced by the database (migration 0080).

In the create's transaction, before anything is submitted, `claim` inserts the key of the acting
owner (user or visitor). The primary key makes a concurrent create with the same key wait for the
first one's transaction: when that commits, the waiter reads the answer it stored; when it rolls
back (refused, database gone), the waiter takes the key itself. So a key makes one job and one
charge, however many creates race. A key is kept 24 hours.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from db.queries import QUERIES

MAX_KEY_CHARS = 255


class IdempotencyKeyReused(ValueError):
    """The key was used before with another request body."""


def body_hash(endpoint: str, body: bytes) -> bytes:
    return hashlib.sha256(endpoint.encode() + b"\n" + body).digest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise ValueError(f"An Idempotency-Key is 1 to {MAX_KEY_CHARS} printable ASCII characters.")
    return key


def claim(conn: psycopg.Connection, key: str, request_hash: bytes) -> dict[str, Any] | None:
    """None: this create took the key (submit, then `answer`). Otherwise the answer stored for it.

    Raises IdempotencyKeyReused when the key was taken with another body. Run inside the create's
    transaction (the acting user's or visitor's).
    """
    conn.execute(QUERIES["forget_expired_idempotency_key"], {"key": key})
    if conn.execute(QUERIES["claim_idempotency_key"], {"key": key, "body_hash": request_hash}).fetchone():
        return None
    stored_hash, response = conn.execute(QUERIES["get_idempotency_key"], {"key": key}).fetchone()
    if bytes(stored_hash) != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request in the last 24 hours; use a new key for a new request."
        )
    return response if isinstance(response, dict) else json.loads(response)


def answer(conn: psycopg.Connection, key: str, response: dict[str, Any]) -> None:
    conn.execute(QUERIES["answer_idempotency_key"], {"key": key, "response": Jsonb(response)})


async def delete_old_keys_async(conn: psycopg.AsyncConnection) -> int:
    """Housekeeping (owner connection): forget keys older than 24 hours."""
    cur = await conn.execute(QUERIES["delete_old_idempotency_keys"])
    return cur.rowcount
