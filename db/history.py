"""The History page's reads: filtered pages of requests, newest first, the event timeline, CSV export.

Pages are keyset pages on (created_at DESC, id DESC): the next page starts after the last row's
pair, so a page costs the same at row 50 as at row 900,000, and rows submitted meanwhile neither
repeat nor shift a page. Migration 0003 lists the index each filter uses; the text filter reads the
stored column search_text and its trigram index (migration 0025).

The queries hold every filter as `(param IS NULL OR condition)`; they run unprepared
(`prepare=False`) so PostgreSQL plans each one with the actual values, dropping the unused filters
and picking the index for the ones used. A prepared, generic plan would have to serve every filter
combination and could not use those indexes. The same folding turns a single status into an
equality (`status = 'failed'`, not `status = ANY('{failed}')`): only an equality lets an index on
(kind, status, created_at) return its rows in page order (migration 0027).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.queries import QUERIES
from db.requests import TERMINAL_STATUSES, GenerationRequest

PAGE_SIZE = 50
# "More than 10,000 match" is as precise as a person needs, and counting stays cheap on a huge table.
COUNT_LIMIT = 10_000
# A text search re-reads every candidate row the trigram index gives; a common word has tens of
# thousands (bench/history_scale.py: 33,000 of 1,000,000 for one word). "More than 1,000" is enough
# to say "narrow the search".
TEXT_COUNT_LIMIT = 1_000
# The trigram index only helps with at least one whole trigram; a shorter search would scan the table.
MIN_SEARCH_CHARS = 3
EXPORT_CHUNK_ROWS = 2_000
# Spreadsheets run a cell starting with one of these as a formula; model output and topics are data.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class HistoryFilter(BaseModel):
    """What the History page is narrowed to. Empty fields match everything."""

    statuses: tuple[str, ...] = TERMINAL_STATUSES
    kind: str | None = None
    requester: str | None = None
    # Aware datetimes, so "submitted on the 3rd" means the 3rd where the user is.
    submitted_from: dt.datetime | None = None
    submitted_before: dt.datetime | None = None
    text: str | None = None
    # An editor's organization. Row-level security already limits an editor to it; given here as
    # well, the query can walk the (organization_id, created_at) index instead of filtering every
    # request through the policy (bench/history_scale.py, "editor" rows).
    organization_id: int | None = None

    def sql_params(self) -> dict[str, Any]:
        return {
            "statuses": list(self.statuses),
            "kind": self.kind or None,
            "requester": (self.requester or "").strip() or None,
            "submitted_from": self.submitted_from,
            "submitted_before": self.submitted_before,
            "text_pattern": _contains_pattern(self.text) if (self.text or "").strip() else None,
            "organization_id": self.organization_id,
        }


class PageStart(BaseModel):
    """Where a page starts: just after the request with this (created_at, id)."""

    created_at: dt.datetime
    id: uuid.UUID


class HistoryRow(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    topic: str | None
    requested_by: str
    queue_name: str
    attempts: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    model_name: str | None
    error_code: str | None
    error_message: str | None
    titles: list[Any] | None

    @property
    def page_key(self) -> PageStart:
        return PageStart(created_at=self.created_at, id=self.id)


class HistoryPage(BaseModel):
    rows: list[HistoryRow]
    has_older: bool


class JobEvent(BaseModel):
    job_id: int
    type: str
    at: dt.datetime


def _contains_pattern(text: str) -> str:
    """An ILIKE pattern for "contains this text", with the user's % and _ taken literally."""
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_query_params(filters: HistoryFilter, after: PageStart | None, limit: int) -> dict[str, Any]:
    return {
        **filters.sql_params(),
        "after_created_at": after.created_at if after else None,
        "after_id": after.id if after else None,
        "limit": limit,
    }


def history_page(
    conn: psycopg.Connection, filters: HistoryFilter, after: PageStart | None = None, page_size: int = PAGE_SIZE
) -> HistoryPage:
    """One page of matching requests, newest first, starting after `after` (None: the newest)."""
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        # One row more than a page tells whether an older page exists.
        rows = cur.execute(QUERIES["history_page"], page_query_params(filters, after, page_size + 1), prepare=False).fetchall()
    return HistoryPage(rows=rows[:page_size], has_older=len(rows) > page_size)


def count_history_up_to(conn: psycopg.Connection, filters: HistoryFilter, limit: int) -> int:
    """How many requests match, counting no further than `limit`."""
    params = {**filters.sql_params(), "limit": limit}
    return conn.execute(QUERIES["count_history_up_to"], params, prepare=False).fetchone()[0]


def count_limit(filters: HistoryFilter) -> int:
    """How far the History page counts the requests matching these filters."""
    return TEXT_COUNT_LIMIT if filters.sql_params()["text_pattern"] else COUNT_LIMIT


def matching_requests(conn: psycopg.Connection, filters: HistoryFilter, limit: int) -> list[HistoryRow]:
    """The newest `limit` matching requests, all pages together (for bulk actions)."""
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        return cur.execute(QUERIES["history_page"], page_query_params(filters, None, limit), prepare=False).fetchall()


def request_events(conn: psycopg.Connection, request: GenerationRequest) -> list[JobEvent]:
    """Everything Procrastinate recorded for the request's jobs, earlier ones (before a retry) included."""
    job_ids = [*request.previous_job_ids, *([request.job_id] if request.job_id is not None else [])]
    with conn.cursor(row_factory=class_row(JobEvent)) as cur:
        return cur.execute(QUERIES["request_events"], {"job_ids": job_ids}).fetchall()


def iter_history(conn: psycopg.Connection, filters: HistoryFilter, max_rows: int) -> Iterator[Sequence[HistoryRow]]:
    """Matching requests, newest first, in chunks read from a server-side cursor (memory stays flat)."""
    with conn.transaction(), conn.cursor(name="history_export", row_factory=class_row(HistoryRow)) as cur:
        cur.execute(QUERIES["history_page"], page_query_params(filters, None, max_rows))
        while rows := cur.fetchmany(EXPORT_CHUNK_ROWS):
            yield rows


CSV_COLUMNS = [
    "request_id", "status", "kind", "topic", "titles", "requested_by", "queue", "attempts",
    "created_at", "started_at", "finished_at", "model", "error_code", "error_message",
]


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_record(row: HistoryRow) -> list[str]:
    values = [
        row.id, row.status, row.kind, row.topic, " | ".join(str(t) for t in row.titles or []), row.requested_by,
        row.queue_name, row.attempts, row.created_at.isoformat(),
        row.started_at.isoformat() if row.started_at else None,
        row.finished_at.isoformat() if row.finished_at else None,
        row.model_name, row.error_code, row.error_message,
    ]
    return [_csv_cell(value) for value in values]


def export_history_csv(conn: psycopg.Connection, filters: HistoryFilter, max_rows: int) -> str:
    """The matching history as CSV, newest first, at most `max_rows` rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for rows in iter_history(conn, filters, max_rows):
        writer.writerows(_csv_record(row) for row in rows)
    return out.getvalue()
