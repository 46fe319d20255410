"""Housekeeping tasks that run periodically inside the workers."""

from __future__ import annotations

import logging

from procrastinate import JobContext

from inkwell_settings import get_settings
from queue_tasks.procrastinate_app import app

logger = logging.getLogger("inkwell.jobs")

# croniter's optional sixth field is seconds: every 15 s by default, so with the 30 s heartbeat
# time-out a dead worker's jobs are back in the queue well within a minute.
STALLED_CHECK_CRON = f"* * * * * */{get_settings().stalled_check_seconds}"
STALLED_CHECK_TASK = "inkwell.requeue_stalled_jobs"


# queueing_lock: one check waits at a time. No `lock`: a check whose worker dies would hold it and
# block every later check. Two checks at once are harmless: a job is ended once (job_manager.py).
@app.periodic(cron=STALLED_CHECK_CRON)
@app.task(name=STALLED_CHECK_TASK, queueing_lock=STALLED_CHECK_TASK, pass_context=True)
async def requeue_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Jobs of a worker that stopped beating (killed, machine lost) go back to the queue.

    This is Procrastinate's documented recipe (heartbeats + retry_job). A job that already used
    its attempts is failed as `worker_lost` instead (with the number of attempts its worker really
    died on), so a job that kills its worker cannot loop. Each
    job is ended only while it still runs under the silent worker (job_manager.py): one that
    finished or was re-queued meanwhile is left alone. Returns how many jobs were re-queued or failed.
    """
    settings = get_settings()
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_worker_seconds)
    handled = 0
    for job in stalled:
        try:
            handled += await _requeue_or_fail(context, job, settings.max_attempts)
        except Exception:
            # One job's trouble (a database hiccup) must not leave the others stalled until the next check.
            logger.exception("job %s: could not be re-queued; the next check tries again", job.id)
    # Their jobs back in the queue, the dead workers' rows go (Procrastinate prunes only when a worker starts).
    pruned = await manager.prune_dead_workers(settings.stalled_worker_seconds)
    if pruned:
        logger.info("removed the rows of dead workers %s", ", ".join(map(str, pruned)))
    return handled


async def _requeue_or_fail(context: JobContext, job, max_attempts: int) -> bool:
    status = await context.app.job_manager.end_stalled_job(job, max_attempts)
    if status == "todo":
        logger.warning("job %s: its worker stopped responding, re-queued", job.id)
    elif status == "aborted":
        logger.warning("job %s: its worker stopped responding; its cancellation was asked for, so it ends cancelled", job.id)
    elif status == "failed":
        logger.warning("job %s: its worker stopped responding on its last attempt (%d); failed as worker_lost", job.id, job.attempts + 1)
    return status is not None
