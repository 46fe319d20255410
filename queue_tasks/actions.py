"""What people do to requests after submitting them: cancel and retry, one or many.

Every action goes through Procrastinate's own API (cancel_job_by_id with abort, retry_job_by_id)
or a transaction that defers a new job and re-points the request at it; the status the console
then shows comes back through the job-status trigger, never from process-local state.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
import psycopg_pool
from procrastinate import PsycopgConnector
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Status
from procrastinate.manager import JobManager
from psycopg.rows import class_row

from db.connection import database_errors_as_unavailable
from db.queries import QUERIES
from db.requests import ACTIVE_STATUSES, GenerationRequest
from queue_tasks.procrastinate_app import app
from queue_tasks.submit import JOB_KINDS

logger = logging.getLogger("inkwell.jobs")

RETRYABLE_STATUSES = ("failed", "cancelled")


class ActionRefused(ValueError):
    """The action does not apply to the request in its current state; nothing was changed."""


@dataclass
class BulkOutcome:
    done: list[uuid.UUID] = field(default_factory=list)
    refused: dict[uuid.UUID, str] = field(default_factory=dict)


def job_manager_for(pool: psycopg_pool.ConnectionPool) -> JobManager:
    """Procrastinate's JobManager working on the console's own pool."""
    console_app = app.with_connector(PsycopgConnector())
    console_app.open(pool)
    return console_app.job_manager


def _lock_request(conn: psycopg.Connection, request_id: uuid.UUID | str) -> GenerationRequest:
    with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
        request = cur.execute(QUERIES["lock_request"], {"request_id": request_id}).fetchone()
    if request is None:
        raise ActionRefused(f"No request {request_id}.")
    return request


def cancel_request(conn: psycopg.Connection, manager: JobManager, request_id: uuid.UUID | str) -> str:
    """Cancel a waiting request at once, or ask its worker to stop a running one.

    Returns the request's state afterwards: "cancelled", or "cancelling" for a running job
    whose worker was asked to abort (the model call is interrupted; the status follows).
    """
    with database_errors_as_unavailable(), conn.transaction():
        request = _lock_request(conn, request_id)
        if request.status not in ACTIVE_STATUSES or request.job_id is None:
            raise ActionRefused(f"This request is already {request.status}; only waiting or running requests can be cancelled.")
        changed = manager.cancel_job_by_id(request.job_id, abort=True, connection=conn)
        state = conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (request.job_id,)).fetchone()
    if not changed:
        raise ActionRefused("The job finished before it could be cancelled.")
    outcome = "cancelling" if state and state[0] == Status.DOING.value else "cancelled"
    logger.info("request %s job %s: %s on request", request_id, request.job_id, outcome)
    return outcome


def retry_request(conn: psycopg.Connection, manager: JobManager, request_id: uuid.UUID | str) -> None:
    """Run a failed or cancelled request again; its history keeps what happened before.

    A failed job is retried in place by Procrastinate (`retry_job_by_id`, a `retried` event);
    a cancelled one, which Procrastinate does not retry, gets a new job in one transaction.
    """
    with database_errors_as_unavailable():
        with conn.transaction():
            request = _lock_request(conn, request_id)
            if request.status not in RETRYABLE_STATUSES:
                raise ActionRefused(f"This request is {request.status}; only failed or cancelled requests can be retried.")
            job_status = None
            if request.job_id is not None:
                row = conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (request.job_id,)).fetchone()
                job_status = row[0] if row else None
            if job_status != Status.FAILED.value:
                task = JOB_KINDS[request.kind].task
                new_job_id = task.configure(connection=conn, queue=request.queue_name).defer(request_id=str(request.id))
                conn.execute(QUERIES["attach_new_job"], {"request_id": request.id, "job_id": new_job_id})
                logger.info("request %s: retried on new job %s (was job %s)", request.id, new_job_id, request.job_id)
                return
        try:
            manager.retry_job_by_id(request.job_id, retry_at=dt.datetime.now(dt.timezone.utc))
        except ConnectorException as error:
            if isinstance(error.__cause__, psycopg.errors.RaiseException):
                # Someone else retried it between our check and the call.
                raise ActionRefused("This request was just retried by someone else.") from None
            raise
        logger.info("request %s job %s: retried on request", request.id, request.job_id)


def _each(action, conn: psycopg.Connection, manager: JobManager, request_ids: Iterable[uuid.UUID]) -> BulkOutcome:
    """Apply a one-request action to many; each request in its own transaction, refusals collected."""
    outcome = BulkOutcome()
    for request_id in request_ids:
        try:
            action(conn, manager, request_id)
            outcome.done.append(request_id)
        except ActionRefused as refusal:
            outcome.refused[request_id] = str(refusal)
    return outcome


def cancel_requests(conn: psycopg.Connection, manager: JobManager, request_ids: Iterable[uuid.UUID]) -> BulkOutcome:
    return _each(cancel_request, conn, manager, request_ids)


def retry_requests(conn: psycopg.Connection, manager: JobManager, request_ids: Iterable[uuid.UUID]) -> BulkOutcome:
    return _each(retry_request, conn, manager, request_ids)
