"""The Overview's figures on known data, and the home page's Overview tab under AppTest."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from streamlit.testing.v1 import AppTest

from db.overview import (
    LAST_DAY,
    LAST_HOUR,
    count_requests_by_status,
    failures_by_error_code,
    finished_per_interval,
    wait_and_run_times,
)
from db.queues import list_workers
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.support.console import offline_user, signed_in_app


@pytest.fixture
def now(db) -> dt.datetime:
    return db.execute("SELECT now()").fetchone()[0]


def insert_request(
    db,
    status: str,
    *,
    created_at: dt.datetime,
    started_at: dt.datetime | None = None,
    finished_at: dt.datetime | None = None,
    scheduled_at: dt.datetime | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    db.execute(
        """
        INSERT INTO inkwell.requests (id, kind, input, status, requested_by, created_at, scheduled_at,
                                      started_at, finished_at, error_code, error_message)
        VALUES (%s, 'titles', '{"topic": "known data"}', %s, 'ana', %s, %s, %s, %s, %s, %s)
        """,
        (uuid.uuid4(), status, created_at, scheduled_at, started_at, finished_at, error_code, error_message),
    )


def finished(db, status: str, at: dt.datetime, **fields) -> None:
    insert_request(db, status, created_at=at - dt.timedelta(seconds=10), started_at=at - dt.timedelta(seconds=5),
                   finished_at=at, **fields)


def start_of_minute(at: dt.datetime) -> dt.datetime:
    return at.replace(second=0, microsecond=0)


def test_requests_are_counted_by_status(db, now):
    for status, count in [("queued", 3), ("running", 1), ("succeeded", 2), ("failed", 1)]:
        for _ in range(count):
            insert_request(db, status, created_at=now)
    assert count_requests_by_status(db) == {"queued": 3, "running": 1, "succeeded": 2, "failed": 1}


def test_finished_and_failed_requests_are_counted_per_minute_over_the_last_hour(db, now):
    ten_minutes_ago, half_an_hour_ago = now - dt.timedelta(minutes=10), now - dt.timedelta(minutes=30)
    finished(db, "succeeded", ten_minutes_ago)
    finished(db, "succeeded", ten_minutes_ago)
    finished(db, "failed", ten_minutes_ago)
    finished(db, "failed", half_an_hour_ago)
    finished(db, "cancelled", ten_minutes_ago)  # neither succeeded nor failed
    finished(db, "succeeded", now - dt.timedelta(hours=3))  # outside the hour

    intervals = finished_per_interval(db, "minute", LAST_HOUR)
    counts = {i.interval_start: (i.succeeded, i.failed) for i in intervals if i.succeeded or i.failed}
    assert counts == {start_of_minute(ten_minutes_ago): (2, 1), start_of_minute(half_an_hour_ago): (0, 1)}
    assert len(intervals) == 61  # every minute of the hour, empty ones as zeros, plus the current one
    assert intervals == sorted(intervals, key=lambda i: i.interval_start)


def test_finished_and_failed_requests_are_counted_per_hour_over_the_last_day(db, now):
    three_hours_ago = now - dt.timedelta(hours=3)
    finished(db, "succeeded", three_hours_ago)
    finished(db, "failed", three_hours_ago)
    finished(db, "succeeded", now - dt.timedelta(hours=30))  # outside the day

    intervals = finished_per_interval(db, "hour", LAST_DAY)
    counts = {i.interval_start: (i.succeeded, i.failed) for i in intervals if i.succeeded or i.failed}
    assert counts == {three_hours_ago.replace(minute=0, second=0, microsecond=0): (1, 1)}
    assert len(intervals) == 25


def test_median_and_p95_wait_and_run_times_cover_requests_that_ended_in_the_last_day(db, now):
    for seconds in range(1, 21):  # waits 1..20 s, runs 2..40 s
        created = now - dt.timedelta(hours=1)
        started = created + dt.timedelta(seconds=seconds)
        status = "failed" if seconds % 5 == 0 else "succeeded"
        insert_request(db, status, created_at=created, started_at=started,
                       finished_at=started + dt.timedelta(seconds=2 * seconds))
    # Waiting for a scheduled time is not waiting for a worker: 3 s from the due time.
    created = now - dt.timedelta(hours=2)
    insert_request(db, "succeeded", created_at=created, scheduled_at=created + dt.timedelta(minutes=30),
                   started_at=created + dt.timedelta(minutes=30, seconds=3),
                   finished_at=created + dt.timedelta(minutes=30, seconds=13))
    old = now - dt.timedelta(days=3)
    insert_request(db, "succeeded", created_at=old, started_at=old + dt.timedelta(hours=1), finished_at=old + dt.timedelta(hours=2))
    cancelled_at = now - dt.timedelta(minutes=5)
    insert_request(db, "cancelled", created_at=cancelled_at - dt.timedelta(hours=5), started_at=cancelled_at, finished_at=cancelled_at)

    times = wait_and_run_times(db)

    waits = sorted([*range(1, 21), 3])  # 21 values
    runs = sorted([*(2 * s for s in range(1, 21)), 10])
    assert times.requests == 21
    assert times.wait_median == pytest.approx(waits[10])
    assert times.wait_p95 == pytest.approx(waits[19])  # 0.95 × (21 − 1) = 19: exactly the 20th value
    assert times.run_median == pytest.approx(runs[10])
    assert times.run_p95 == pytest.approx(runs[19])


def test_wait_and_run_times_are_empty_without_finished_requests(db):
    times = wait_and_run_times(db)
    assert (times.requests, times.wait_median, times.run_p95) == (0, None, None)


def test_failures_are_grouped_by_error_code_most_frequent_first_with_the_latest_message(db, now):
    finished(db, "failed", now - dt.timedelta(hours=2), error_code="rate_limited", error_message="older 429")
    finished(db, "failed", now - dt.timedelta(hours=1), error_code="rate_limited", error_message="latest 429")
    finished(db, "failed", now - dt.timedelta(hours=1), error_code="bad_request", error_message="400")
    finished(db, "failed", now - dt.timedelta(days=2), error_code="timeout", error_message="too old to count")
    finished(db, "succeeded", now - dt.timedelta(hours=1))

    groups = failures_by_error_code(db)
    assert [(g.error_code, g.failures, g.latest_message) for g in groups] == [
        ("rate_limited", 2, "latest 429"),
        ("bad_request", 1, "400"),
    ]


def test_a_worker_without_a_recent_heartbeat_is_flagged_stale(db):
    db.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '5 seconds'), (now() - interval '45 seconds')")
    assert [w.is_stale for w in list_workers(db, stale_after_seconds=30)] == [False, True]


# --- the Overview tab under AppTest ---




def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_overview_renders_on_an_empty_database(console_as):
    at = console_as().run()
    assert not at.exception
    assert metric(at, "Queued") == "0" and metric(at, "Failed") == "0"
    assert metric(at, "Wait, median") == "—"
    assert any("No worker is running" in w.value for w in at.warning)
    assert any("No request failed in the last 24 hours" in s.value for s in at.success)


def test_overview_shows_counts_queue_depth_and_failures(console_as, db, now):
    submit_requests(db, "titles", [TitlesInput(topic="one"), TitlesInput(topic="two")], requested_by="ana", queue="bulk")
    finished(db, "failed", now - dt.timedelta(minutes=3), error_code="rate_limited", error_message="429 <b>slow</b>")
    db.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())")

    at = console_as().run()
    assert not at.exception
    assert (metric(at, "Queued"), metric(at, "Failed")) == ("2", "1")
    queues = next(d.value for d in at.dataframe if "Queue" in d.value.columns)
    assert queues.set_index("Queue").loc["bulk", "Waiting"] == 2
    failures = next(d.value for d in at.dataframe if "Error code" in d.value.columns)
    assert failures.to_dict("records")[0]["Latest message"] == "429 <b>slow</b>"  # a table cell: shown as text
    workers = next(d.value for d in at.dataframe if "Worker" in d.value.columns)
    assert list(workers["State"]) == ["alive"]


def test_overview_shows_queue_unavailable_when_the_database_is_down(database_down):
    at = signed_in_app(offline_user()).run()
    assert not at.exception
    assert sum("Queue unavailable" in e.value for e in at.error) >= 2  # the latest requests and the Overview
    assert not at.metric
