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
    queue_name: str = "default"
    scheduled_at: dt.datetime | None
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None
    # When a request waiting to retry is tried next (its job's time); None otherwise.
    next_attempt_at: dt.datetime | None = None

    @property
    def waits_for_later(self) -> bool:
        """Scheduled for later or waiting to retry: "Run now" can bring it forward."""
        if self.status == "scheduled":
            return self.scheduled_at is None or self.scheduled_at > dt.datetime.now(dt.timezone.utc)
        return self.status == "queued" and self.next_attempt_at is not None


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


def typical_run_seconds(conn: psycopg.Connection, kinds: Collection[str]) -> dict[str, float]:
    """Per kind, the median run time of its latest succeeded requests (the ones this reader may see);
    kinds with none are left out."""
    rows = conn.execute(QUERIES["typical_run_seconds"], {"kinds": sorted(set(kinds))}).fetchall()
    return {kind: float(seconds) for kind, seconds in rows if seconds is not None}


def time_left(request: LiveRequest, typical_seconds: float | None, now: dt.datetime) -> int | None:
    """Seconds a running request has left: what recent runs of its kind took, less the time it has run
    (so the steps still to come count), and never less than its current step's own estimate."""
    own = request.eta_seconds
    if request.status != "running" or typical_seconds is None or request.started_at is None:
        return own
    by_history = typical_seconds - (now - request.started_at).total_seconds()
    if by_history <= 0:
        return own
    return max(own or 0, round(by_history))


class NavCounts(BaseModel):
    """What the navigation shows beside Live and History."""

    model_config = ConfigDict(frozen=True)

    queued: int
    running: int
    failed_last_hour: int


def nav_counts(conn: psycopg.Connection) -> NavCounts:
    """Requests queued, running, and failed in the last hour, of those the reader may see."""
    with conn.cursor(row_factory=class_row(NavCounts)) as cur:
        row = cur.execute(QUERIES["nav_counts"]).fetchone()
    assert row is not None  # an aggregate always returns one row
    return row
