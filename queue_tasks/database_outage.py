"""Workers ride out a database outage (a restart, a fail-over) instead of stopping.

Procrastinate 3.10 stops a worker as soon as its listener, heartbeat or periodic deferrer meets
a connection error, and the process then lingers without taking jobs. Here those calls wait for
the database instead: fetching finds no job, a heartbeat or a periodic tick is skipped, and the
listener reconnects with back-off. Ending a job (its status, or a retry) is retried until the
database answers, so a job that finished during the outage is recorded once it is back rather
than left `doing` under a worker that still beats.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.manager import QUEUEING_LOCK_CONSTRAINT

from queue_tasks.job_manager import PauseAwareJobManager

logger = logging.getLogger("inkwell.jobs")

T = TypeVar("T")
FIRST_WAIT_SECONDS = 0.5
MAX_WAIT_SECONDS = 5.0
# A listener that ran this long before failing was connected: start the back-off afresh.
_LISTENER_HEALTHY_SECONDS = 30.0


def is_connection_lost(error: BaseException) -> bool:
    """A failure to reach the server (down, restarting, unreachable, pool time-out), not a bad query."""
    cause = error.__cause__ if isinstance(error, ConnectorException) else error
    return isinstance(cause, psycopg.OperationalError)


def is_queueing_lock_conflict(error: BaseException | None) -> bool:
    return isinstance(error, psycopg.errors.UniqueViolation) and error.diag.constraint_name == QUEUEING_LOCK_CONSTRAINT


class OutageTolerantJobManager(PauseAwareJobManager):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._outage_started: float | None = None

    # -- what the worker calls ---------------------------------------------------------------------

    async def fetch_job(self, queues, worker_id):
        try:
            job = await super().fetch_job(queues, worker_id)
        except ConnectorException as error:
            if not is_connection_lost(error):
                raise
            self._lost("fetching jobs", error)
            return None  # the worker polls again after its polling interval
        self._back()
        return job

    async def update_heartbeat(self, worker_id: int) -> None:
        try:
            await super().update_heartbeat(worker_id)
        except ConnectorException as error:
            if not is_connection_lost(error):
                raise
            self._lost("updating the heartbeat", error)

    async def defer_periodic_job(self, *args: Any, **kwargs: Any):
        try:
            return await super().defer_periodic_job(*args, **kwargs)
        except AssertionError as error:
            # Procrastinate reads the queueing lock from the unique violation's DETAIL, which
            # PostgreSQL hides from a role under row-level security: a workers' login made before
            # it had BYPASSRLS (db/roles.py) would otherwise stop the worker on a check still queued.
            if not is_queueing_lock_conflict(error.__context__):
                raise
            raise AlreadyEnqueued("a job with this queueing lock is already queued") from error.__context__
        except ConnectorException as error:
            if not is_connection_lost(error):
                raise
            self._lost("deferring a periodic job", error)
            return None  # this tick is skipped; the next one is deferred as usual

    async def listen_for_jobs(self, *, on_notification, queues=None) -> None:
        wait = FIRST_WAIT_SECONDS
        while True:
            started = time.monotonic()
            try:
                await super().listen_for_jobs(on_notification=on_notification, queues=queues)
                return
            except ConnectorException as error:
                if not is_connection_lost(error):
                    raise
                self._lost("listening for new jobs", error)
            # Missed notifications do no harm: the worker also polls every fetch_job_polling_interval.
            if time.monotonic() - started > _LISTENER_HEALTHY_SECONDS:
                wait = FIRST_WAIT_SECONDS
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_WAIT_SECONDS)

    async def finish_job(self, job, status, delete_job):
        return await self._until_answered(
            f"recording job {job.id} as {status.value}",
            functools.partial(super().finish_job, job=job, status=status, delete_job=delete_job),
        )

    async def retry_job(self, job, retry_at=None, priority=None, queue=None, lock=None):
        return await self._until_answered(
            f"handing job {job.id} back for a retry",
            functools.partial(super().retry_job, job, retry_at=retry_at, priority=priority, queue=queue, lock=lock),
        )

    async def unregister_worker(self, worker_id: int) -> None:
        try:
            await super().unregister_worker(worker_id)
        except ConnectorException as error:
            if not is_connection_lost(error):
                raise
            # Its row goes when the next worker starts (Procrastinate prunes silent workers then).
            self._lost("unregistering the stopping worker", error)

    # -- bookkeeping -------------------------------------------------------------------------------

    async def _until_answered(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        wait = FIRST_WAIT_SECONDS
        while True:
            try:
                result = await call()
            except ConnectorException as error:
                if not is_connection_lost(error):
                    raise
                self._lost(doing, error)
                await asyncio.sleep(wait)
                wait = min(wait * 2, MAX_WAIT_SECONDS)
            else:
                self._back()
                return result

    def _lost(self, doing: str, error: BaseException) -> None:
        if self._outage_started is None:
            self._outage_started = time.monotonic()
            cause = error.__cause__ or error
            logger.warning(
                "database unreachable while %s (%s); the worker waits for it and carries on",
                doing, type(cause).__name__,
            )

    def _back(self) -> None:
        if self._outage_started is not None:
            logger.warning("database reachable again after %.1f s; the worker carries on", time.monotonic() - self._outage_started)
            self._outage_started = None
