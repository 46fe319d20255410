"""Housekeeping tasks that run periodically inside the workers."""

from __future__ import annotations

import logging

from procrastinate import JobContext
from procrastinate.jobs import Status

from db.requests import record_error
from inkwell_settings import get_settings
from queue_tasks.procrastinate_app import app

logger = logging.getLogger("inkwell.jobs")

# croniter's optional sixth field is seconds: every 15 s by default, so with the 30 s heartbeat
# time-out a dead worker's jobs are back in the queue well within a minute.
STALLED_CHECK_CRON = f"* * * * * */{get_settings().stalled_check_seconds}"


@app.periodic(cron=STALLED_CHECK_CRON)
@app.task(name="inkwell.requeue_stalled_jobs", queueing_lock="inkwell.requeue_stalled_jobs", pass_context=True)
async def requeue_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Jobs of a worker that stopped beating (killed, machine lost) go back to the queue.

    This is Procrastinate's documented recipe (heartbeats + retry_job). A job that already used
    its attempts is failed with a code instead, so a job that kills its worker cannot loop.
    """
    settings = get_settings()
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_worker_seconds)
    for job in stalled:
        if job.attempts + 1 >= settings.max_attempts:
            async with context.app.connector.pool.connection() as conn:
                request_id = job.task_kwargs.get("request_id")
                if request_id:
                    await record_error(
                        conn,
                        request_id,
                        error_code="worker_lost",
                        error_message=f"The worker running this job stopped responding {job.attempts + 1} times.",
                    )
            await manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
            logger.warning("job %s: worker lost again, failed after %d attempts", job.id, job.attempts + 1)
        else:
            await manager.retry_job(job)
            logger.warning("job %s: its worker stopped responding, re-queued", job.id)
    return len(stalled)
