"""Procrastinate's JobManager, made to honour queue pauses and to let only a job's own worker end it.

Procrastinate has no queue pause. Workers claim jobs only through `JobManager.fetch_job`, so
overriding it to call `inkwell.fetch_job_unless_paused` (Procrastinate 3.10's fetch function plus a
"queue not paused" condition, migration 0004) makes every worker skip paused queues, with
Procrastinate's claiming rules otherwise unchanged: priority, then age, SKIP LOCKED, job locks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from procrastinate import jobs
from procrastinate.manager import JobManager

from db.queries import QUERIES

logger = logging.getLogger("inkwell.jobs")


class PauseAwareJobManager(JobManager):
    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> jobs.Job | None:
        row = await self.connector.execute_query_one_async(
            query=QUERIES["fetch_job_unless_paused"], queues=queues, worker_id=worker_id
        )
        # Like Procrastinate's: the function always returns a row, all NULL when nothing is due.
        if row["id"] is None:
            return None
        return jobs.Job.from_row(row)

    # A job is ended only by the worker that runs it (migration 0030): a worker whose jobs were
    # re-queued while it was silent (frozen, cut off) must not end them under the worker now
    # running them. The stalled-job check passes the silent worker's id, still the job's own.
    async def finish_job(self, job: jobs.Job, status: jobs.Status, delete_job: bool) -> bool:
        ended = await self._finish_if_owned(job, status, delete_job) is not None
        if not ended:
            logger.warning("job %s: not ended as %s: it no longer runs under worker %s (re-queued meanwhile)",
                           job.id, status.value, job.worker_id)
        return ended

    async def retry_job(
        self,
        job: jobs.Job,
        retry_at: dt.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> bool:
        ended = await self._retry_if_owned(job, retry_at, priority=priority, queue=queue, lock=lock) is not None
        if not ended:
            logger.warning("job %s: not handed back for a retry: it no longer runs under worker %s (re-queued meanwhile)",
                           job.id, job.worker_id)
        return ended

    # The stalled-job check (maintenance.py): a job another check, or its own worker, ended
    # meanwhile is simply left alone, without a warning. Both return the job's new status, or None.
    async def requeue_stalled_job(self, job: jobs.Job) -> str | None:
        return await self._retry_if_owned(job, None)

    async def fail_stalled_job(self, job: jobs.Job) -> str | None:
        return await self._finish_if_owned(job, jobs.Status.FAILED, delete_job=False)

    async def _finish_if_owned(self, job: jobs.Job, status: jobs.Status, delete_job: bool) -> str | None:
        row = await self.connector.execute_query_one_async(
            query=QUERIES["finish_job_if_owned"],
            job_id=job.id, worker_id=job.worker_id, status=status.value, delete_job=delete_job,
        )
        return row["status"]

    async def _retry_if_owned(
        self, job: jobs.Job, retry_at: dt.datetime | None, *, priority: int | None = None,
        queue: str | None = None, lock: str | None = None,
    ) -> str | None:
        row = await self.connector.execute_query_one_async(
            query=QUERIES["retry_job_if_owned"],
            job_id=job.id, worker_id=job.worker_id, retry_at=retry_at or dt.datetime.now(dt.timezone.utc),
            new_priority=priority, new_queue_name=queue, new_lock=lock,
        )
        return row["status"]
