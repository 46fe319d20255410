"""Procrastinate's JobManager, made to honour queue pauses and model outages, to let only a job's
own worker end it, and to abort a job only when the database says so.

Procrastinate has no queue pause. Workers claim jobs only through `JobManager.fetch_job`, so
overriding it to call `inkwell.fetch_job_v2` (Procrastinate 3.10's fetch function plus a "queue not
paused" condition, migration 0004, and "model jobs wait while the model endpoint is down", 0060)
makes every worker skip paused queues, with Procrastinate's claiming rules otherwise unchanged:
priority, then age, SKIP LOCKED, job locks.

Procrastinate's worker acts on any `abort_job_requested` notification, and any database login can
send one. Here a notification is passed on only when the job row says its abort was requested.

A worker also records where it runs (host, process id, concurrency) when it registers, and the jobs
it ended since it started with each heartbeat (migration 0130), for the Workers and queues page.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from procrastinate import jobs
from procrastinate.manager import JobManager, NotificationCallback

from db.queries import QUERIES

logger = logging.getLogger("inkwell.jobs")


@dataclass
class JobsEnded:
    """Jobs a worker ended since it started: succeeded, failed for good, handed back for a retry."""

    succeeded: int = 0
    failed: int = 0
    retried: int = 0


class PauseAwareJobManager(JobManager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Jobs their task ended itself, in the transaction that stored what it produced (runner.py):
        # the worker's own ending of them afterwards is skipped.
        self._ended_by_task: set[int] = set()
        # Set by the app when it builds its worker (procrastinate_app.py), recorded at registration.
        self.worker_concurrency = 1
        self.jobs_ended = JobsEnded()
        self._jobs_ended_written = JobsEnded()

    async def register_worker(self) -> int:
        row = await self.connector.execute_query_one_async(
            query=QUERIES["register_worker_with_details"],
            host=socket.gethostname(), pid=os.getpid(), concurrency=self.worker_concurrency,
        )
        return row["worker_id"]

    async def update_heartbeat(self, worker_id: int) -> None:
        # The counts ride along with the heartbeat: no write per job, at most one heartbeat late.
        if self.jobs_ended == self._jobs_ended_written:
            await super().update_heartbeat(worker_id)
            return
        counts = JobsEnded(**vars(self.jobs_ended))
        await self.connector.execute_query_async(
            query=QUERIES["beat_with_job_counts"], worker_id=worker_id,
            succeeded=counts.succeeded, failed=counts.failed, retried=counts.retried,
        )
        self._jobs_ended_written = counts

    def _count_ended(self, status: jobs.Status) -> None:
        if status == jobs.Status.SUCCEEDED:
            self.jobs_ended.succeeded += 1
        elif status == jobs.Status.FAILED:
            self.jobs_ended.failed += 1

    def ended_by_task(self, job: jobs.Job) -> None:
        self._ended_by_task.add(job.id)

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> jobs.Job | None:
        row = await self.connector.execute_query_one_async(
            query=QUERIES["fetch_job"], queues=queues, worker_id=worker_id
        )
        # Like Procrastinate's: the function always returns a row, all NULL when nothing is due.
        if row["id"] is None:
            return None
        return jobs.Job.from_row(row)

    # A job is ended only by the worker that runs it (migration 0030): a worker whose jobs were
    # re-queued while it was silent (frozen, cut off) must not end them under the worker now
    # running them. The stalled-job check passes the silent worker's id, still the job's own.
    async def finish_job(self, job: jobs.Job, status: jobs.Status, delete_job: bool) -> bool:
        if job.id in self._ended_by_task:
            self._ended_by_task.discard(job.id)
            self._count_ended(status)
            return True
        ended = await self._finish_if_owned(job, status, delete_job) is not None
        if ended:
            self._count_ended(status)
        else:
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
        if job.id in self._ended_by_task:
            self._ended_by_task.discard(job.id)
            self.jobs_ended.retried += 1
            return True
        ended = await self._retry_if_owned(job, retry_at, priority=priority, queue=queue, lock=lock) is not None
        if ended:
            self.jobs_ended.retried += 1
        else:
            logger.warning("job %s: not handed back for a retry: it no longer runs under worker %s (re-queued meanwhile)",
                           job.id, job.worker_id)
        return ended

    # The stalled-job check (maintenance.py): a job another check, or its own worker, ended
    # meanwhile is simply left alone, without a warning. Returns the job's new status, or None.
    async def end_stalled_job(self, job: jobs.Job, max_attempts: int) -> str | None:
        row = await self.connector.execute_query_one_async(
            query=QUERIES["end_stalled_job"], job_id=job.id, worker_id=job.worker_id, max_attempts=max_attempts
        )
        return row["status"]

    async def prune_dead_workers(self, seconds_since_heartbeat: float) -> list[int]:
        rows = await self.connector.execute_query_all_async(
            query=QUERIES["prune_dead_workers"], seconds=seconds_since_heartbeat
        )
        return [row["worker_id"] for row in rows]

    async def listen_for_jobs(self, *, on_notification: NotificationCallback, queues: Iterable[str] | None = None) -> None:
        async def checked(*, channel: str, notification: jobs.Notification) -> None:
            if notification.get("type") == "abort_job_requested" and not await self._abort_requested(notification):
                return
            await on_notification(channel=channel, notification=notification)

        await super().listen_for_jobs(on_notification=checked, queues=queues)

    async def _abort_requested(self, notification: jobs.Notification) -> bool:
        """Whether the job row says this job's abort was requested; a notification alone proves nothing."""
        job_id = notification.get("job_id")
        try:
            row = await self.connector.execute_query_one_async(query=QUERIES["job_abort_requested"], job_id=int(job_id))
        except (TypeError, ValueError):
            row = {"abort_requested": False}
        if not row["abort_requested"]:
            logger.warning("job %s: an abort notification arrived but the job row asks no abort; ignored "
                           "(a notification anyone could have sent)", job_id)
        return bool(row["abort_requested"])

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
