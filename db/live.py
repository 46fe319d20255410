"""What the Live page reads: the requests still waiting or running, cheaply however long the history.

Both listing queries keep `status IN ('scheduled', 'queued', 'running')` literally, so Postgres can
walk the partial index `requests_unfinished_idx` (unfinished rows only) instead of the whole table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict

from db.queries import QUERIES
from db.requests import ACTIVE_STATUSES

# A page of cards refreshed every second: more than this is not readable anyway.
LIVE_LIMIT = 200

ActiveStatus = Literal["scheduled", "queued", "running"]


class LiveFilters(BaseModel):
    """What the Live page is narrowed to; an empty list means all of them."""

    model_config = ConfigDict(frozen=True)

    statuses: tuple[ActiveStatus, ...] = ()
    kinds: tuple[str, ...] = ()
    requested_by: str | None = None

    @property
    def narrows(self) -> bool:
        return bool(self.statuses or self.kinds or self.requested_by)


class LiveRequest(BaseModel):
    """What a Live card shows of a request: the page refreshes up to 200 of them every second, so
    not the whole row (no result, no error, no model name)."""

    id: uuid.UUID
    kind: str
    input: dict[str, Any]
    status: str
    progress: int
    current_step: str
    eta_seconds: int | None
    partial_text: str | None
    attempts: int
    requested_by: str
    user_id: int | None  # who may cancel it (console_ui.may_act_on)
    scheduled_at: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class LiveRequests(BaseModel):
    requests: list[LiveRequest]
    total: int

    @property
    def is_cut_short(self) -> bool:
        return self.total > len(self.requests)


def list_live_requests(conn: psycopg.Connection, filters: LiveFilters, *, limit: int = LIVE_LIMIT) -> LiveRequests:
    """The newest waiting and running requests that match, and how many match in all."""
    params = {
        "statuses": list(filters.statuses or ACTIVE_STATUSES),
        "kinds": list(filters.kinds) or None,
        "requested_by": filters.requested_by,
    }
    with conn.cursor(row_factory=class_row(LiveRequest)) as cur:
        requests = cur.execute(QUERIES["list_live_requests"], {**params, "limit": limit}).fetchall()
    if len(requests) < limit:
        return LiveRequests(requests=requests, total=len(requests))
    # Counted only when the list is full; rows may finish in between, so never report fewer than shown.
    total = conn.execute(QUERIES["count_live_requests"], params).fetchone()[0]
    return LiveRequests(requests=requests, total=max(total, len(requests)))


def list_live_requests_by_id(conn: psycopg.Connection, ids: Collection[uuid.UUID | str]) -> list[LiveRequest]:
    """Given requests in their current state, finished or not (the ones a user just cancelled)."""
    if not ids:
        return []
    with conn.cursor(row_factory=class_row(LiveRequest)) as cur:
        return cur.execute(QUERIES["list_live_requests_by_id"], {"ids": list(ids)}).fetchall()
