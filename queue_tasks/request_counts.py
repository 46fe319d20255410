"""Keep the Overview's per-day request counts (migration 0026) up to date.

Every few minutes a worker counts the UTC days that ended since the last run into
inkwell.request_counts_by_day and folds the changes of older requests recorded since, so the
Overview counts only today's requests live. Nothing else depends on when it runs: until it does,
the Overview counts the days not yet rolled up live, and its figures stay exact.
"""

from __future__ import annotations

import logging

from procrastinate import JobContext
from psycopg.errors import LockNotAvailable

from db.overview import roll_up_request_counts as roll_up
from queue_tasks.procrastinate_app import app

logger = logging.getLogger("inkwell.jobs")

# A day is rolled up within minutes of midnight UTC; the other runs only fold, or find nothing to do.
ROLL_UP_CRON = "*/5 * * * *"
# Writers of inkwell.requests wait while a day is counted; a transaction holding the table longer
# than this makes the roll-up wait for its next run instead of the workers queueing behind it.
ROLL_UP_LOCK_TIMEOUT = "2s"


@app.periodic(cron=ROLL_UP_CRON)
@app.task(name="inkwell.roll_up_request_counts", queueing_lock="inkwell.roll_up_request_counts", pass_context=True)
async def roll_up_request_counts(context: JobContext, timestamp: int) -> int:
    """How many days were counted (-1: the table stayed busy; the next run tries again)."""
    async with context.app.connector.pool.connection() as conn:
        try:
            days = await roll_up(conn, lock_timeout=ROLL_UP_LOCK_TIMEOUT)
        except LockNotAvailable:
            logger.warning("request counts: inkwell.requests stayed locked for %s; next run tries again", ROLL_UP_LOCK_TIMEOUT)
            return -1
    if days:
        logger.info("request counts: %d day(s) rolled up", days)
    return days
