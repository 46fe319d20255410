"""Change counters (migration 0090): how the console's lists know, cheaply, that their rows moved.

A counter only grows; a list re-reads its rows when a counter it watches differs from the value it
saw last, instead of re-reading them on every tick.
"""

from __future__ import annotations

from typing import Literal

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict

from db.queries import QUERIES

Topic = Literal["requests", "request_status", "posts", "site_builds"]


class ChangeCounters(BaseModel):
    model_config = ConfigDict(frozen=True)

    requests: int
    request_status: int
    posts: int
    site_builds: int

    def of(self, topics: tuple[Topic, ...]) -> tuple[int, ...]:
        return tuple(getattr(self, topic) for topic in topics)


def read_change_counters(conn: psycopg.Connection) -> ChangeCounters:
    with conn.cursor(row_factory=class_row(ChangeCounters)) as cur:
        cur.execute(QUERIES["change_counters"])
        row = cur.fetchone()
    assert row is not None  # the function always returns one row
    return row
