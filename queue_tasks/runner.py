"""What every Inkwell task does around its own work: load the request, keep time, and end the job
in one transaction with what it produced, or with the error code of what went wrong.

A kind of job is a `RequestHandler`: given the request's validated input, the model client
and a progress reporter, it returns a pydantic result. `run_request` does the rest: the result
(with the rows a handler adds through `on_ending`: a post, an entity version, an image) and the
job's `succeeded` commit together (migration 0060), and a failed attempt's outcome, error and the
job's retry or failure commit together. Procrastinate's own ending of the job is then skipped
(job_manager.py). Every write is the job's own: the request must be linked to this job, running
under this worker; a job for a request it does not own fails at once, before any model call.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import psycopg_pool
import pydantic
from procrastinate import JobContext
from procrastinate.exceptions import JobAborted
from procrastinate.job_context import AbortReason

from db.requests import GenerationRequest, end_failed_attempt, finish_request_job, get_request_async
from inkwell_settings import get_settings
from queue_tasks.errors import (
    WORKER_SHUTDOWN,
    InkwellRetryStrategy,
    JobError,
    PermanentJobError,
    TransientJobError,
)
from queue_tasks.llm import LLMClient, current_request_id
from queue_tasks.models import describe_validation_error
from queue_tasks.progress import JOB_NOT_OWNED, JobProgress

logger = logging.getLogger("inkwell.jobs")

RequestHandler = Callable[[GenerationRequest, LLMClient, JobProgress], Awaitable[pydantic.BaseModel]]
# A write that belongs with the result (a post, an entity version, an image): run on the ending
# transaction's connection, before the result is stored; it may fill in the result (a post's id).
EndingWrite = Callable[[psycopg.AsyncConnection, pydantic.BaseModel], Awaitable[None]]
_ending_writes: contextvars.ContextVar[list[EndingWrite] | None] = contextvars.ContextVar("inkwell_ending_writes", default=None)

# The job is not the one its request is linked to (a stray or duplicate job): it fails, writing nothing on the request.
JOB_NOT_LINKED = "job_not_linked"
# Failures that show the model endpoint answered: it is up, whatever this request's trouble.
MODEL_ANSWERED_CODES = frozenset({
    "rate_limited", "model_server_error", "invalid_model_output", "model_auth_failed",
    "model_permission_denied", "model_not_found", "model_bad_request",
})
# How long the ending of a job waits for the database before the queue's own recovery takes over.
_ENDING_PATIENCE_SECONDS = 60.0

DATABASE_UNAVAILABLE = "database_unavailable"
# The database went away (restart, failover, network) or the pool waited too long for it.
DATABASE_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout)


def _database_unavailable() -> TransientJobError:
    return TransientJobError(DATABASE_UNAVAILABLE, "The database could not be reached while this job ran; it will be retried.")


@functools.cache
def get_llm_client() -> LLMClient:
    # One client (and its connection pool) per worker process, shared by all jobs.
    return LLMClient(get_settings())


def on_ending(write: EndingWrite) -> None:
    """Have `write` run in the transaction that ends the job succeeded, with the result: a handler's
    rows commit with the result and the job's status, or not at all."""
    writes = _ending_writes.get()
    if writes is None:
        raise RuntimeError("on_ending is for request handlers run by run_request")
    writes.append(write)


def retry_strategy() -> InkwellRetryStrategy:
    settings = get_settings()
    return InkwellRetryStrategy(
        max_attempts=settings.max_attempts,
        base_seconds=settings.retry_base_seconds,
        max_seconds=settings.retry_max_seconds,
    )


async def run_request(context: JobContext, request_id: str, handler: RequestHandler) -> dict[str, Any]:
    settings = get_settings()
    pool = context.app.connector.pool
    job = context.job
    try:
        async with pool.connection() as conn:
            request = await get_request_async(conn, request_id)
    except DATABASE_ERRORS:
        raise _database_unavailable() from None
    if request is None:
        raise PermanentJobError("request_missing", f"No request {request_id} exists for job {job.id}.")
    if request.job_id != job.id:
        # A stray job (deferred by hand, a duplicate): the request is another job's. Fail at once, before
        # any model call; the queue ends this job `failed`, and nothing is written on the request.
        logger.warning("request %s job %s: refused: the request is linked to job %s", request_id, job.id, request.job_id)
        raise PermanentJobError(
            JOB_NOT_LINKED, f"Job {job.id} is not the job of request {request_id} (that is job {request.job_id}); it did nothing."
        )
    attempt = request.attempts  # counted by the job-status trigger when this run started

    if request.result is not None:
        # The result is already stored (an earlier run): end the job succeeded without asking the model again.
        logger.info("request %s job %s: result already stored; ending succeeded without a model call", request_id, job.id)
        await _end(context, request_id, lambda conn: _finish(conn, job, request_id, request.result, [], model_answered=False))
        return {"request_id": request_id, "kind": request.kind, "already_stored": True}

    logger.info("request %s job %s (%s): picked up, attempt %d of %d", request_id, job.id, request.kind, attempt, settings.max_attempts)
    time_limit = settings.time_limit_for(request.kind)
    progress = JobProgress(pool, uuid.UUID(request_id), job_id=job.id, worker_id=job.worker_id,
                           min_interval=settings.progress_write_interval_seconds)
    writes: list[EndingWrite] = []
    _ending_writes.set(writes)
    current_request_id.set(request_id)
    try:
        try:
            # The hard limit cancels whatever the handler awaits (a hung model call included).
            async with asyncio.timeout(time_limit):
                result = await handler(request, get_llm_client(), progress)
        except TimeoutError:
            raise TransientJobError(
                "time_limit_exceeded",
                f"The job ran longer than its time limit of {time_limit:g} s and was stopped.",
            ) from None
        except pydantic.ValidationError as error:
            raise PermanentJobError("invalid_input", describe_validation_error(error)) from None
        except asyncio.CancelledError:
            if context.abort_reason() == AbortReason.SHUTDOWN:
                raise TransientJobError(WORKER_SHUTDOWN, "The worker stopped while this job ran; it was re-queued.") from None
            logger.info("request %s job %s: cancelled while running", request_id, job.id)
            raise
        except (JobError, JobAborted):
            raise
        except DATABASE_ERRORS:
            raise _database_unavailable() from None
        except Exception as error:
            logger.exception("request %s job %s: unexpected error", request_id, job.id)
            raise PermanentJobError("internal_error", f"Unexpected error: {type(error).__name__}: {error}"[:500]) from None
    except JobError as error:
        await _end_failed(context, request_id, attempt, error)
        raise

    stored = result.model_dump(mode="json")
    finished = await _end(
        context, request_id, lambda conn: _finish(conn, job, request_id, result, writes, model_answered=not stored.get("offline_model"))
    )
    if not finished:
        # This worker went silent and the job was re-queued meanwhile: the worker now running it
        # stores its own result; nothing of this run was written.
        logger.warning("request %s job %s: result not stored: the job no longer runs under this worker", request_id, job.id)
        return {"request_id": request_id, "kind": request.kind, "stored": False}
    logger.info("request %s job %s: finished, result stored (%d progress writes)", request_id, job.id, progress.writes)
    return {"request_id": request_id, "kind": request.kind}


async def _finish(conn, job, request_id: str, result: pydantic.BaseModel | dict[str, Any], writes: list[EndingWrite],
                  *, model_answered: bool) -> bool:
    """In the ending transaction: the handler's rows, then the result and the job's `succeeded`."""
    for write in writes:
        await write(conn, result)
    stored = result if isinstance(result, dict) else result.model_dump(mode="json")
    return await finish_request_job(
        conn,
        request_id,
        job_id=job.id,
        worker_id=job.worker_id,
        result=stored,
        model_name=stored.get("model", ""),
        offline_model=bool(stored.get("offline_model")),
        # Every kind's result carries the ModelAnswer.tokens_used its handler added up.
        tokens_used=stored.get("tokens_used"),
        model_answered=model_answered,
    )


async def _end_failed(context: JobContext, request_id: str, attempt: int, error: JobError) -> None:
    job = context.job
    decision = retry_strategy().get_retry_decision(exception=error, job=job)
    retry_at = decision.retry_at if decision is not None else None
    if decision is not None and retry_at is None:
        retry_at = dt.datetime.now(dt.timezone.utc)
    endpoint_down = isinstance(error, TransientJobError) and error.endpoint_down
    # Before a failure that looks like an outage becomes a request's last, ask the endpoint whether it
    # answers at all: when it does not, the outage is not the request's fault and costs no attempt.
    not_answering = endpoint_down and retry_at is None and not await get_llm_client().endpoint_answers()

    async def end(conn) -> str | None:
        return await end_failed_attempt(
            conn, request_id, job_id=job.id, worker_id=job.worker_id, code=error.code, message=error.message,
            retry_at=retry_at, endpoint_down=endpoint_down, model_answered=error.code in MODEL_ANSWERED_CODES,
            endpoint_not_answering=not_answering,
        )

    if error.code == JOB_NOT_OWNED:
        status = None  # the request is another run's now: nothing of this one is written
    else:
        status = await _end(context, request_id, end)
    outcome = {
        "todo": ", will retry", "failed": ", giving up", "aborted": ", its cancellation was asked for",
        "held": ", handed back without spending the attempt: the model endpoint looks down",
        None: ": not recorded, the job no longer runs under this worker",
    }.get(status, "")
    logger.warning("request %s job %s: attempt %d failed with %s (%s)%s",
                   request_id, job.id, attempt, error.code, error.message, outcome)
    if status == "held":
        logger.warning("request %s job %s: model endpoint unreachable (%s); the job waits for it", request_id, job.id, error.code)


async def _end(context: JobContext, request_id: str, ending: Callable[[psycopg.AsyncConnection], Awaitable[Any]]) -> Any:
    """Run an ending in one transaction, waiting out a database outage for a while: the job stays
    this worker's meanwhile. Marks the job as ended here, so the queue does not end it again."""
    pool = context.app.connector.pool
    job = context.job
    wait, waited = 0.5, 0.0
    while True:
        try:
            async with pool.connection() as conn, conn.transaction():
                outcome = await ending(conn)
            break
        except DATABASE_ERRORS:
            if waited >= _ENDING_PATIENCE_SECONDS:
                logger.warning("request %s job %s: not ended: the database is unreachable; the queue's recovery takes over",
                               request_id, job.id)
                raise _database_unavailable() from None
            await asyncio.sleep(wait)
            waited += wait
            wait = min(wait * 2, 5.0)
    context.app.job_manager.ended_by_task(job)
    return outcome
