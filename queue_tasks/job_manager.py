"""Procrastinate's JobManager, made to honour queue pauses.

Procrastinate has no queue pause. Workers claim jobs only through `JobManager.fetch_job`, so
overriding it to call `inkwell.fetch_job_unless_paused` (Procrastinate 3.10's fetch function plus a
"queue not paused" condition, migration 0004) makes every worker skip paused queues, with
Procrastinate's claiming rules otherwise unchanged: priority, then age, SKIP LOCKED, job locks.
"""

from __future__ import annotations

from collections.abc import Iterable

from procrastinate import jobs
from procrastinate.manager import JobManager

from db.queries import QUERIES


class PauseAwareJobManager(JobManager):
    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> jobs.Job | None:
        row = await self.connector.execute_query_one_async(
            query=QUERIES["fetch_job_unless_paused"], queues=queues, worker_id=worker_id
        )
        # Like Procrastinate's: the function always returns a row, all NULL when nothing is due.
        if row["id"] is None:
            return None
        return jobs.Job.from_row(row)
