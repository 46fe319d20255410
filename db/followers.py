"""Which requests the HTTP API's event hubs follow (migration 0150): only their changes are
announced with NOTIFY. Used by api/events.py and the hourly housekeeping."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg

from db.queries import QUERIES


async def follow_requests(conn: psycopg.AsyncConnection, request_ids: Sequence[uuid.UUID], *, listener_pid: int) -> None:
    """Record them under the hub's LISTEN backend; returns once any change made to them before is
    committed (a share lock), so a read after this sees it, and every later change is announced."""
    await conn.execute(QUERIES["follow_requests"], {"request_ids": list(request_ids), "listener_pid": listener_pid})


async def unfollow_request(conn: psycopg.AsyncConnection, request_id: uuid.UUID, *, listener_pid: int) -> None:
    await conn.execute(QUERIES["unfollow_request"], {"request_id": request_id, "listener_pid": listener_pid})


async def forget_gone_listeners(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute(QUERIES["forget_gone_listeners"])
    return (await cur.fetchone())[0]
