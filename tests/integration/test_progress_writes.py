"""Progress writes are coalesced to one per window, step changes included: the step a job sets as it
starts rides on its first write, a job shorter than a window writes none. Against a real database
(every UPDATE of the request is logged by a trigger the test adds) and, for whole jobs, the real
titles handler with the real model client streaming from the local server."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from db.requests import get_request
from inkwell_settings import InkwellSettings
from queue_tasks.llm import LLMClient
from queue_tasks.models import TitlesInput
from queue_tasks.progress import JobProgress
from queue_tasks.submit import submit_titles_request
from queue_tasks.titles import write_titles
from tests.support.llm_server import LLMTestServer, ok

pytestmark = pytest.mark.timeout(60)

# What a worker runs with unless configured otherwise.
DEFAULT_INTERVAL = InkwellSettings.model_fields["progress_write_interval_seconds"].default


@pytest.fixture
def request_id(db: psycopg.Connection) -> uuid.UUID:
    """A titles request whose job a worker has just started, with every later UPDATE of it logged."""
    request_id = submit_titles_request(db, TitlesInput(topic="composting in small apartments", count=4), requested_by="ana")
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (get_request(db, request_id).job_id,))
    db.execute(
        """
        CREATE TABLE progress_log (at timestamptz NOT NULL, step text, progress int, partial_text text);
        CREATE FUNCTION log_progress() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO progress_log VALUES (clock_timestamp(), NEW.current_step, NEW.progress, NEW.partial_text);
            RETURN NULL;
        END $$;
        CREATE TRIGGER log_progress AFTER UPDATE ON inkwell.requests FOR EACH ROW EXECUTE FUNCTION log_progress();
        """
    )
    return request_id


def progress_log(db: psycopg.Connection) -> list[tuple]:
    return db.execute("SELECT extract(epoch FROM at)::float8, step, progress, partial_text FROM progress_log ORDER BY at").fetchall()


def run_job(database_url: str, request_id: uuid.UUID, job, *, interval: float = DEFAULT_INTERVAL, linger: float = 0.0):
    """Run `job(progress)` in a task of its own, as the worker does; wait `linger` s after it ended."""
    with psycopg.connect(database_url) as conn:
        job_id = get_request(conn, request_id).job_id  # its progress writes are checked against it

    async def main():
        async with AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False) as pool:
            progress = JobProgress(pool, request_id, job_id=job_id, worker_id=None, min_interval=interval)
            started = time.monotonic()
            result = await asyncio.create_task(job(progress))
            seconds = time.monotonic() - started
            await asyncio.sleep(linger)
            return progress, seconds, result

    return asyncio.run(main())


def test_a_one_second_titles_job_writes_progress_under_four_times_a_second(db, database_url, request_id):
    with LLMTestServer(default_behaviour=ok(delay_per_chunk=0.05, chunks=20)) as server:
        llm = LLMClient(InkwellSettings(database_url=None, llm_base_url=server.base_url, llm_api_key="k", llm_model="m"))

        async def titles_job(progress: JobProgress):
            try:
                return time.time(), await write_titles(get_request(db, request_id), llm, progress)
            finally:
                await llm.close()

        progress, seconds, (started_at, result) = run_job(database_url, request_id, titles_job)

    writes = progress_log(db)
    assert len(result.titles) == 3  # the test server's answer
    assert seconds >= 1.0
    assert len(writes) == progress.writes >= 1
    assert len(writes) / seconds <= 4
    # Not the start step on its own and then the stream: the start step came with the first write,
    # one window into the job.
    assert writes[0][1] == "Generating titles…"
    assert writes[0][0] - started_at >= 0.9 * DEFAULT_INTERVAL
    assert all(later[0] - earlier[0] >= 0.9 * DEFAULT_INTERVAL for earlier, later in zip(writes, writes[1:]))
    assert [w[2] for w in writes] == sorted(w[2] for w in writes)
    assert any(w[3] for w in writes), "the text streamed so far is shown"


def test_a_job_shorter_than_the_window_writes_no_progress(db, database_url, request_id):
    llm = LLMClient(InkwellSettings(database_url=None, llm_base_url=None, llm_api_key=None, offline_model_seconds=0))

    async def titles_job(progress: JobProgress):
        try:
            return await write_titles(get_request(db, request_id), llm, progress)
        finally:
            await llm.close()

    progress, seconds, result = run_job(database_url, request_id, titles_job, linger=1.5 * DEFAULT_INTERVAL)

    assert seconds < DEFAULT_INTERVAL and len(result.titles) == 4
    assert progress.writes == 0
    assert progress_log(db) == []  # the start step was dropped with the job, not written after it
    assert get_request(db, request_id).current_step == "Starting"


def test_a_step_with_no_stream_after_it_is_written_once_the_window_closes(db, database_url, request_id):
    async def job(progress: JobProgress):
        await progress.set_step("Fetching the page…", 5)
        await asyncio.sleep(2 * DEFAULT_INTERVAL)

    progress, _, _ = run_job(database_url, request_id, job)

    [(_, step, pct, partial)] = progress_log(db)
    assert (step, pct, partial) == ("Fetching the page…", 5, None)
    assert progress.writes == 1


def test_step_changes_inside_one_window_are_written_once_as_the_latest(db, database_url, request_id):
    async def job(progress: JobProgress):
        for number in range(1, 6):
            await progress.set_step(f"Row {number} of 5", number * 10)
        await asyncio.sleep(2 * DEFAULT_INTERVAL)

    progress, _, _ = run_job(database_url, request_id, job)

    assert [(step, pct) for _, step, pct, _ in progress_log(db)] == [("Row 5 of 5", 50)]
    assert progress.writes == 1


def test_a_streaming_update_due_as_the_window_closes_carries_the_pending_step(db, database_url, request_id):
    async def job(progress: JobProgress):
        started = time.monotonic()
        await progress.set_step("Generating titles…", 5)
        await progress.streaming('{"titles": [', expected_chars=100, started=started, start_pct=10, end_pct=90)
        await asyncio.sleep(DEFAULT_INTERVAL + 0.02)
        await progress.streaming('{"titles": ["Compost', expected_chars=100, started=started, start_pct=10, end_pct=90)
        await asyncio.sleep(DEFAULT_INTERVAL / 2)

    progress, _, _ = run_job(database_url, request_id, job)

    [(_, step, pct, partial)] = progress_log(db)
    assert (step, partial) == ("Generating titles…", '{"titles": ["Compost')
    assert pct == 10 + int(80 * 20 / 100)
    assert progress.writes == 1
