"""What people do to requests after submitting them: cancel and retry, one or many.

Every action goes through Procrastinate's own API (cancel_job_by_id with abort, retry_job_by_id)
or a transaction that defers a new job and re-points the request at it; the status the console
then shows comes back through the job-status trigger, never from process-local state.

Who may act is decided by the database. The console calls these on a connection acting as the
signed-in user (db.people.acting_as): the request is locked with SELECT … FOR UPDATE, which under
row-level security (migration 0041) finds only requests that user may change — an editor's own,
any for operators and admins, none for analysts — and the job change itself runs on the same
connection, under the same policies. Each action done writes an audit entry in its transaction.
On the owner connection (workers, tests, the system) there is no acting user and every request
can be acted on; the entry's actor is then 'system'.
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
from procrastinate import sql as procrastinate_sql
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Status
from procrastinate.manager import JobManager
from psycopg.rows import class_row

from db.connection import database_errors_as_unavailable
from db.credits import refusal
from db.people import ActionRefused, acting_state, audit
from db.queries import QUERIES
from db.requests import ACTIVE_STATUSES, GenerationRequest, get_request
from queue_tasks.procrastinate_app import app
from queue_tasks.submit import JOB_KINDS

__all__ = [
    "RETRYABLE_STATUSES", "ActionForbidden", "ActionRefused", "RequestNotFound", "BulkOutcome", "cancel_request", "cancel_requests", "job_manager_for",
    "retry_request", "retry_requests", "run_request_now", "discard_finished_requests",
]

logger = logging.getLogger("inkwell.jobs")

RETRYABLE_STATUSES = ("failed", "cancelled")


class RequestNotFound(ActionRefused):
    """No such request, or one the acting user may not read (the two are not told apart)."""


class ActionForbidden(ActionRefused):
    """The acting user may read the request but not do this to it."""


@dataclass
class BulkOutcome:
    done: list[uuid.UUID] = field(default_factory=list)
    refused: dict[uuid.UUID, str] = field(default_factory=dict)


def job_manager_for(pool: psycopg_pool.ConnectionPool) -> JobManager:
    """Procrastinate's JobManager working on the console's own pool."""
    console_app = app.with_connector(PsycopgConnector())
    console_app.open(pool)
    return console_app.job_manager


def _lock_request(conn: psycopg.Connection, request_id: uuid.UUID | str, verb: str) -> GenerationRequest:
    """The request, locked, if the acting user may change it; ActionRefused saying why not otherwise."""
    with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
        request = cur.execute(QUERIES["lock_request"], {"request_id": request_id}).fetchone()
    if request is not None:
        return request
    # Row-level security hid it from the lock: say why, without confirming a request the user
    # may not even read exists.
    if get_request(conn, request_id) is None:
        raise RequestNotFound(f"No request {request_id}.")
    role, _ = acting_state(conn)
    if role == "editor":
        raise ActionForbidden(
            f"You can see this request but not {verb} it: only the person who submitted it, an operator or an admin can."
        )
    raise ActionForbidden(f"Your role ({role or 'none'}) can read requests but not {verb} them.")


def cancel_request(conn: psycopg.Connection, manager: JobManager, request_id: uuid.UUID | str) -> str:
    """Cancel a waiting request at once, or ask its worker to stop a running one.

    Returns the request's state afterwards: "cancelled", or "cancelling" for a running job
    whose worker was asked to abort (the model call is interrupted; the status follows).
    """
    with database_errors_as_unavailable(), conn.transaction():
        request = _lock_request(conn, request_id, "cancel")
        if request.status not in ACTIVE_STATUSES or request.job_id is None:
            raise ActionRefused(f"This request is already {request.status}; only waiting or running requests can be cancelled.")
        changed = manager.cancel_job_by_id(request.job_id, abort=True, connection=conn)
        state = _job_status(conn, request.job_id)
        outcome = "cancelling" if state == Status.DOING.value else "cancelled"
        if changed:
            audit(conn, "request.cancelled", "request", request.id,
                  {"kind": request.kind, "job_id": request.job_id, "outcome": outcome})
    if not changed:
        raise ActionRefused("The job finished before it could be cancelled.")
    logger.info("request %s job %s: %s on request", request_id, request.job_id, outcome)
    return outcome


def retry_request(conn: psycopg.Connection, manager: JobManager, request_id: uuid.UUID | str) -> None:
    """Run a failed or cancelled request again; its history keeps what happened before.

    A failed job is retried in place by Procrastinate (its retry_job query, a `retried` event);
    a cancelled one, which Procrastinate does not retry, gets a new job. Either way in one
    transaction with the request's lock and the audit entry. A retry pays the request's credits
    again (migration 0045): short of them, ActionRefused with the database's message.
    """
    try:
        _retry(conn, manager, request_id)
    except (psycopg.Error, ConnectorException) as error:
        if found := refusal(error):
            refused = ActionRefused(found[1])
            refused.sqlstate = found[0]  # the HTTP API answers 402 or 429 by it
            raise refused from None
        raise


def _retry(conn: psycopg.Connection, manager: JobManager, request_id: uuid.UUID | str) -> None:
    with database_errors_as_unavailable(), conn.transaction():
        request = _lock_request(conn, request_id, "retry")
        if request.status not in RETRYABLE_STATUSES:
            raise ActionRefused(f"This request is {request.status}; only failed or cancelled requests can be retried.")
        job_status = _job_status(conn, request.job_id) if request.job_id is not None else None
        if job_status == Status.FAILED.value:
            _retry_job(conn, manager, request.job_id)
            audit(conn, "request.retried", "request", request.id, {"kind": request.kind, "job_id": request.job_id})
            logger.info("request %s job %s: retried on request", request.id, request.job_id)
            return
        task = JOB_KINDS[request.kind].task
        # At the fair-share priority of a new one-request submission (the database refuses higher, 0072).
        priority = conn.execute(QUERIES["fair_share_priority"], {"new_requests": 1, "requested_by": request.requested_by}).fetchone()[0]
        new_job_id = task.configure(connection=conn, queue=request.queue_name, priority=priority).defer(
            request_id=str(request.id)
        )
        conn.execute(QUERIES["attach_new_job"], {"request_id": request.id, "job_id": new_job_id})
        audit(conn, "request.retried", "request", request.id,
              {"kind": request.kind, "job_id": new_job_id, "previous_job_id": request.job_id})
    logger.info("request %s: retried on new job %s (was job %s)", request.id, new_job_id, request.job_id)


def run_request_now(conn: psycopg.Connection, request_id: uuid.UUID | str) -> None:
    """Start a scheduled request, or one waiting to retry, as soon as a worker is free instead of at
    its time (migration 0131: under the same row-level security as cancel and retry, audited)."""
    try:
        with database_errors_as_unavailable(), conn.transaction():
            request = _lock_request(conn, request_id, "run")
            job_id = conn.execute(QUERIES["run_request_now"], {"request_id": request.id}).fetchone()[0]
    except psycopg.errors.InsufficientPrivilege as refused:
        raise ActionForbidden(refused.diag.message_primary or "You may not run this request now.") from None
    if job_id is None:
        raise ActionRefused(f"This request is {request.status} and not waiting for a later time: there is nothing to bring forward.")
    logger.info("request %s job %s: run now on request", request.id, job_id)


def discard_finished_requests(
    conn: psycopg.Connection,
    *,
    request_ids: Iterable[uuid.UUID] | None = None,
    finished_before: dt.datetime | None = None,
) -> int:
    """Clear finished requests (succeeded, failed, cancelled) out of the console's lists: the given
    ones, or those finished before a time, or both conditions together; unfinished ones are left
    alone. Nothing is deleted: analysts' views keep them until the retention rules remove them
    (migration 0132). Operators and admins only (the database checks it), audited. How many."""
    ids = None if request_ids is None else [str(request_id) for request_id in request_ids]
    try:
        with database_errors_as_unavailable(), conn.transaction():
            discarded = conn.execute(
                QUERIES["discard_finished_requests"], {"request_ids": ids, "finished_before": finished_before}
            ).fetchone()[0]
    except psycopg.errors.InsufficientPrivilege as refused:
        raise ActionForbidden(refused.diag.message_primary or "You may not discard requests.") from None
    logger.info("%d finished request(s) discarded from the console's lists", discarded)
    return discarded


def _job_status(conn: psycopg.Connection, job_id: int) -> str | None:
    """The job's status; None when housekeeping has removed the job already."""
    row = conn.execute(QUERIES["job_status"], {"job_id": job_id}).fetchone()
    return row[0] if row else None


def _retry_job(conn: psycopg.Connection, manager: JobManager, job_id: int) -> None:
    """Procrastinate's retry of a failed job, on the caller's connection and transaction.

    (JobManager.retry_job_by_id takes no connection: it would run on the pool, outside the
    request's lock and as the owner, not as the acting user.)
    """
    try:
        manager.connector.get_sync_connector().execute_query_one_with_connection(
            conn,
            query=procrastinate_sql.queries["retry_job"],
            job_id=job_id,
            retry_at=dt.datetime.now(dt.timezone.utc),
            new_priority=None,
            new_queue_name=None,
            new_lock=None,
        )
    except ConnectorException as error:
        if isinstance(error.__cause__, psycopg.errors.RaiseException):
            raise ActionRefused("This request was just retried by someone else.") from None
        raise


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
