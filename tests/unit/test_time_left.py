"""Time left for a running request: recent runs of its kind, less the time it has run."""

from __future__ import annotations

import datetime as dt
import uuid

from db.live import LiveRequest, time_left

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)


def running(seconds_ago: float, own_eta: int | None) -> LiveRequest:
    return LiveRequest(
        id=uuid.uuid4(), kind="blog_post", input={}, status="running", progress=15, current_step="Outline",
        eta_seconds=own_eta, partial_text=None, attempts=0, requested_by="Ana", user_id=1, scheduled_at=None,
        created_at=NOW - dt.timedelta(seconds=seconds_ago + 1), started_at=NOW - dt.timedelta(seconds=seconds_ago),
        finished_at=None,
    )


def test_the_steps_to_come_count_not_only_the_current_one():
    assert time_left(running(1.5, own_eta=0), typical_seconds=10.0, now=NOW) == 8


def test_the_current_step_estimate_wins_when_it_is_longer():
    assert time_left(running(1, own_eta=30), typical_seconds=10.0, now=NOW) == 30


def test_without_history_or_past_it_the_step_estimate_is_used():
    assert time_left(running(1, own_eta=4), typical_seconds=None, now=NOW) == 4
    assert time_left(running(20, own_eta=4), typical_seconds=10.0, now=NOW) == 4
