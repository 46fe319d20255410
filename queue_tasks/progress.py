"""Progress reporting from inside a task, written to inkwell.requests for the console to show.

Writes are coalesced: at most one per `min_interval` seconds per job, step changes and streaming
updates alike, and the first window opens when the job starts. Inside a window a streaming update
is dropped (the next one carries newer text); a step change is kept, and written by the first
streaming update after the window closes or, when none comes, a fifth of a window later. So the
step a job sets as it starts is not a write of its own, and a job shorter than one window writes
no progress at all: the Live page shows the status trigger's "Starting", then "Done".
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from procrastinate.exceptions import JobAborted
from psycopg_pool import AsyncConnectionPool

from db.requests import record_progress
from queue_tasks.errors import PermanentJobError

logger = logging.getLogger("inkwell.jobs")

# Partial text shown while a job streams: the tail is what a person watches.
PARTIAL_TEXT_CHARS = 2_000

# The code of a job whose request was taken away from it meanwhile (its worker went silent and the
# job was re-queued and started elsewhere): it stops; nothing of it is written.
JOB_NOT_OWNED = "job_not_owned"


class JobProgress:
    def __init__(
        self, pool: AsyncConnectionPool, request_id: uuid.UUID, *, job_id: int, worker_id: int | None, min_interval: float
    ):
        self._pool = pool
        self._request_id = request_id
        self._job_id = job_id
        self._worker_id = worker_id
        self._min_interval = min_interval
        self._last_write = time.monotonic()  # the first window opens as the job starts
        self.step = "Starting"
        self.progress = 0
        self.writes = 0
        # A step change not written yet, and the timer that writes it when the window closes.
        self._step_pending = False
        self._step_eta: int | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None
        self._job_task: asyncio.Task | None = None
        self._job_ended = False

    def write_due(self) -> bool:
        """Whether a write now would be outside the current window (cheap: ask it per streamed piece)."""
        return time.monotonic() - self._last_write >= self._min_interval

    async def set_step(self, step: str, progress: int, eta_seconds: int | None = None) -> None:
        self.step = step
        self.progress = max(self.progress, progress)
        if self.write_due():
            self._claim_window()
            await self._store(eta_seconds, None)
            return
        self._step_pending = True
        self._step_eta = eta_seconds
        self._schedule_flush()

    async def streaming(
        self, text: str, *, expected_chars: int, started: float, start_pct: int, end_pct: int
    ) -> None:
        """Move the bar with the text received so far against the length expected."""
        if not self.write_due():
            return
        now = time.monotonic()
        fraction = min(1.0, len(text) / max(1, expected_chars))
        self.progress = max(self.progress, start_pct + int((end_pct - start_pct) * fraction))
        elapsed = now - started
        eta = None
        if len(text) and elapsed > 0:
            rate = len(text) / elapsed
            eta = int(max(0, expected_chars - len(text)) / rate) if rate else None
        self._claim_window()
        await self._store(eta, text[-PARTIAL_TEXT_CHARS:])

    def _claim_window(self) -> None:
        # Synchronous, before any await: a write decided elsewhere in the meantime sees the window taken.
        self._last_write = time.monotonic()
        self._step_pending = False
        self.writes += 1

    async def _store(self, eta_seconds: int | None, partial_text: str | None) -> None:
        """Write progress; stop the job when the job row says its cancellation was asked for, or when
        the request is no longer this job's under this worker (every write from a job is checked)."""
        async with self._pool.connection() as conn:
            abort_requested = await record_progress(
                conn,
                self._request_id,
                job_id=self._job_id,
                worker_id=self._worker_id,
                progress=self.progress,
                step=self.step,
                eta_seconds=eta_seconds,
                partial_text=partial_text,
            )
        if abort_requested is None:
            raise PermanentJobError(
                JOB_NOT_OWNED, f"Job {self._job_id} no longer runs this request under worker {self._worker_id}; it stopped."
            )
        if abort_requested:
            logger.info("request %s job %s: its cancellation was asked for (job row); stopping", self._request_id, self._job_id)
            raise JobAborted()

    def _schedule_flush(self) -> None:
        if self._flush_timer is not None or self._job_ended:
            return
        if self._job_task is None and (task := asyncio.current_task()) is not None:
            # When the job's task ends (result stored, or failed, or cancelled) a pending step is moot.
            self._job_task = task
            task.add_done_callback(self._end_of_job)
        # A little after the window closes, so a streaming update due then carries the step with its text.
        delay = max(0.0, self._last_write + self._min_interval * 1.2 - time.monotonic())
        self._flush_timer = asyncio.get_running_loop().call_later(delay, self._flush_step)

    def _flush_step(self) -> None:
        self._flush_timer = None
        if not self._step_pending or self._job_ended:
            return
        if not self.write_due():  # a streaming write took this window; the step waits for the next
            self._schedule_flush()
            return
        self._claim_window()
        self._flush_task = asyncio.get_running_loop().create_task(self._store_step(self._step_eta))

    async def _store_step(self, eta_seconds: int | None) -> None:
        try:
            await self._store(eta_seconds, None)
        except (JobAborted, PermanentJobError):
            pass  # the job's next write from its own task says so and stops it
        except Exception as error:  # progress is for the eye; the job itself must not fail on it
            logger.warning("request %s: progress step not written: %s", self._request_id, error)

    def _end_of_job(self, _task: asyncio.Task) -> None:
        self._job_ended = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
