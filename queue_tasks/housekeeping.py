"""History housekeeping: keep Procrastinate's queue tables small without losing Inkwell's history.

Every hour, finished jobs (succeeded, failed, cancelled, aborted) older than
INKWELL_QUEUE_RETENTION_DAYS (default 7) are removed with Procrastinate's own
`job_manager.delete_old_jobs`, which deletes their events too. Just before, those events are
copied into inkwell.job_events_archive, so request timelines in History stay whole. Requests,
results and posts are Inkwell's own tables and are untouched, unless INKWELL_HISTORY_RETENTION_DAYS
is set (default: keep everything).
"""

from __future__ import annotations

import logging

from procrastinate import JobContext

from db.followers import forget_gone_listeners
from db.housekeeping import archive_finished_job_events, delete_old_history
from db.idempotency import delete_old_keys_async
from inkwell_settings import get_settings
from queue_tasks.procrastinate_app import app

logger = logging.getLogger("inkwell.jobs")

# Hourly, off the top of the hour when other cron jobs tend to run.
HOUSEKEEPING_CRON = "37 * * * *"


@app.periodic(cron=HOUSEKEEPING_CRON)
@app.task(name="inkwell.clean_up_queue", queueing_lock="inkwell.clean_up_queue", pass_context=True)
async def clean_up_queue(context: JobContext, timestamp: int) -> dict:
    settings = get_settings()
    retention_hours = max(1, round(settings.queue_retention_days * 24))
    pool = context.app.connector.pool
    async with pool.connection() as conn:
        # An hour's margin: every job the delete below can reach has had its events copied, even if
        # more jobs come of age between the two statements.
        archived = await archive_finished_job_events(conn, older_than_hours=retention_hours - 1)
    await context.app.job_manager.delete_old_jobs(
        nb_hours=retention_hours, include_failed=True, include_cancelled=True, include_aborted=True
    )
    outcome = {"archived_events": archived, "queue_retention_hours": retention_hours}
    async with pool.connection() as conn:
        # HTTP API Idempotency-Keys answer for 24 hours; older ones are only dead weight.
        outcome["deleted_idempotency_keys"] = await delete_old_keys_async(conn)
        # Followed requests (migration 0150) of API processes gone, or that ended long ago.
        outcome["forgotten_followed_requests"] = await forget_gone_listeners(conn)
    if settings.history_retention_days is not None:
        async with pool.connection() as conn:
            requests, events = await delete_old_history(
                conn, older_than_seconds=settings.history_retention_days * 86_400
            )
        outcome.update(deleted_requests=requests, deleted_archived_events=events)
    # Hourly: a line only when something was archived or deleted.
    if any(count for name, count in outcome.items() if name != "queue_retention_hours"):
        logger.info("housekeeping: %s", outcome)
    return outcome
