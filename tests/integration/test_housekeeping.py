"""Housekeeping through a real worker: old finished jobs leave Procrastinate's tables, their events
are archived so History timelines stay whole, and Inkwell's own history stays unless told otherwise."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import psycopg
import pytest

from db.connection import open_pool
from db.history import request_events
from db.posts import save_post
from db.requests import get_request
from queue_tasks.actions import cancel_request, job_manager_for
from queue_tasks.housekeeping import clean_up_queue
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(120)


def submit(db, topic: str, schedule_at: dt.datetime | None = None):
    return submit_titles_request(db, TitlesInput(topic=topic), requested_by="ana", schedule_at=schedule_at)


def age_job(db, request_id, days: int) -> None:
    """Make a request's queue job (and its request row) look `days` older."""
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_events SET at = at - make_interval(days => %s) WHERE job_id = %s", (days, job_id))
    db.execute(
        "UPDATE inkwell.requests SET created_at = created_at - make_interval(days => %s), "
        "finished_at = finished_at - make_interval(days => %s) WHERE id = %s",
        (days, days, request_id),
    )


def run_housekeeping(db) -> dict:
    job_id = clean_up_queue.configure(connection=db).defer(timestamp=int(time.time()))
    wait_for(
        lambda: db.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()[0]
        in ("succeeded", "failed"),
        timeout=30, message="the housekeeping job to finish",
    )
    assert db.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()[0] == "succeeded"


def job_ids(db) -> set[int]:
    return {row[0] for row in db.execute("SELECT id FROM procrastinate_jobs WHERE task_name = 'inkwell.generate_titles'")}


def finished_all(db, request_ids) -> None:
    wait_for(lambda: all(get_request(db, r).is_finished for r in request_ids), timeout=30, message="the requests to finish")


@pytest.fixture
def manager(database_url):
    pool = open_pool(database_url)
    yield job_manager_for(pool)
    pool.close()


def test_old_finished_jobs_are_removed_from_the_queue_but_their_history_stays(db, start_worker, manager):
    old_done, recent_done, old_cancelled = submit(db, "old topic"), submit(db, "recent topic"), submit(db, "cancelled topic")
    waiting = submit(db, "later topic", schedule_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    cancel_request(db, manager, old_cancelled)
    start_worker()
    finished_all(db, [old_done, recent_done])
    for request_id in (old_done, old_cancelled, waiting):
        age_job(db, request_id, days=8)
    before = {r: [(e.type, e.at) for e in request_events(db, get_request(db, r))] for r in (old_done, old_cancelled)}

    run_housekeeping(db)

    jobs = {r: get_request(db, r).job_id for r in (old_done, recent_done, old_cancelled, waiting)}
    assert job_ids(db) == {jobs[recent_done], jobs[waiting]}, "only old finished jobs are removed; waiting ones stay"
    gone = [jobs[old_done], jobs[old_cancelled]]
    assert db.execute("SELECT count(*) FROM procrastinate_events WHERE job_id = ANY(%s)", (gone,)).fetchone()[0] == 0
    # Inkwell's history is untouched, and the timelines read the same from the archive.
    for request_id in (old_done, recent_done, old_cancelled, waiting):
        assert get_request(db, request_id) is not None
    assert get_request(db, old_done).result["titles"]
    after = {r: [(e.type, e.at) for e in request_events(db, get_request(db, r))] for r in (old_done, old_cancelled)}
    assert after == before
    assert [t for t, _ in after[old_done]] == ["deferred", "started", "succeeded"]
    assert [t for t, _ in after[old_cancelled]][-1] == "cancelled"
    archived_jobs = {row[0] for row in db.execute("SELECT DISTINCT job_id FROM inkwell.job_events_archive")}
    assert archived_jobs == set(gone), "recent jobs' events are not archived yet"


def test_history_retention_removes_old_requests_but_keeps_those_with_saved_posts(db, database_url, start_worker):
    old, old_with_post, recent = submit(db, "old topic"), submit(db, "old post topic"), submit(db, "recent topic")

    async def save():
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await save_post(conn, request_id=old_with_post, title="Kept", subheader=None, meta_description="m",
                            outline=[], body_markdown="Body.", word_count=1, organization=None, status="draft")

    asyncio.run(save())
    start_worker(extra_env={"INKWELL_HISTORY_RETENTION_DAYS": "30"})
    finished_all(db, [old, old_with_post, recent])
    old_job = get_request(db, old).job_id
    for request_id in (old, old_with_post):
        age_job(db, request_id, days=40)

    run_housekeeping(db)

    assert get_request(db, old) is None
    assert db.execute("SELECT count(*) FROM inkwell.job_events_archive WHERE job_id = %s", (old_job,)).fetchone()[0] == 0
    assert get_request(db, old_with_post) is not None, "a request that saved a post stays with its post"
    assert get_request(db, recent) is not None


def test_history_is_kept_by_default_however_old(db, start_worker):
    old = submit(db, "old topic")
    start_worker()
    finished_all(db, [old])
    age_job(db, old, days=400)

    run_housekeeping(db)

    assert get_request(db, old).result["titles"]
    assert [e.type for e in request_events(db, get_request(db, old))] == ["deferred", "started", "succeeded"]
