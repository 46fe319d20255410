"""What every Inkwell task does around its own work: load the request, keep time, store the
result once, and turn every failure into an error code on the request.

A kind of job is a `RequestHandler`: given the request's validated input, the model client
and a progress reporter, it returns a pydantic result. `run_request` does the rest.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import psycopg_pool
import pydantic
from procrastinate import JobContext
from procrastinate.job_context import AbortReason

from db.requests import GenerationRequest, get_request_async, record_error, store_result
from inkwell_settings import get_settings
from queue_tasks.errors import (
    WORKER_SHUTDOWN,
    InkwellRetryStrategy,
    JobError,
    PermanentJobError,
    TransientJobError,
)
from queue_tasks.llm import LLMClient
from queue_tasks.models import describe_validation_error
from queue_tasks.progress import JobProgress

logger = logging.getLogger("inkwell.jobs")

RequestHandler = Callable[[GenerationRequest, LLMClient, JobProgress], Awaitable[pydantic.BaseModel]]

DATABASE_UNAVAILABLE = "database_unavailable"
# The database went away (restart, failover, network) or the pool waited too long for it.
DATABASE_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout)


def _database_unavailable() -> TransientJobError:
    return TransientJobError(DATABASE_UNAVAILABLE, "The database could not be reached while this job ran; it will be retried.")


@functools.cache
def get_llm_client() -> LLMClient:
    # One client (and its connection pool) per worker process, shared by all jobs.
    return LLMClient(get_settings())


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
    attempt = request.attempts  # counted by the job-status trigger when this run started
    time_limit = settings.time_limit_for(request.kind)

    logger.info("request %s job %s (%s): picked up, attempt %d of %d", request_id, job.id, request.kind, attempt, settings.max_attempts)
    progress = JobProgress(pool, uuid.UUID(request_id), min_interval=settings.progress_write_interval_seconds)
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
        except JobError:
            raise
        except DATABASE_ERRORS:
            raise _database_unavailable() from None
        except Exception as error:
            logger.exception("request %s job %s: unexpected error", request_id, job.id)
            raise PermanentJobError("internal_error", f"Unexpected error: {type(error).__name__}: {error}"[:500]) from None
    except JobError as error:
        try:
            async with pool.connection() as conn:
                await record_error(conn, request_id, error_code=error.code, error_message=error.message)
        except DATABASE_ERRORS:
            # The job's own retry or failure is still recorded by the queue once the database answers.
            logger.warning("request %s job %s: could not record %s: the database is unreachable", request_id, job.id, error.code)
        will_retry = retry_strategy().get_retry_decision(exception=error, job=job) is not None
        logger.warning(
            "request %s job %s: attempt %d failed with %s (%s)%s",
            request_id, job.id, attempt, error.code, error.message,
            ", will retry" if will_retry else ", giving up",
        )
        raise

    stored = result.model_dump(mode="json")
    try:
        kept = await _store(pool, request_id, job, stored)
    except DATABASE_ERRORS:
        logger.warning("request %s job %s: result not stored: the database is unreachable; will retry", request_id, job.id)
        raise _database_unavailable() from None
    if not kept:
        # This worker went silent and the job was re-queued meanwhile: the worker now running it
        # stores its own result; the job is not ended from here either (job_manager.py).
        logger.warning("request %s job %s: result not stored: the job no longer runs under this worker", request_id, job.id)
        return {"request_id": request_id, "kind": request.kind, "stored": False}
    logger.info("request %s job %s: finished, result stored (%d progress writes)", request_id, job.id, progress.writes)
    return {"request_id": request_id, "kind": request.kind}


async def _store(pool: psycopg_pool.AsyncConnectionPool, request_id: str, job, stored: dict[str, Any]) -> bool:
    async with pool.connection() as conn:
        return await store_result(
            conn,
            request_id,
            job_id=job.id,
            worker_id=job.worker_id,
            result=stored,
            model_name=stored.get("model", ""),
            offline_model=bool(stored.get("offline_model")),
            # Every kind's result carries the ModelAnswer.tokens_used its handler added up.
            tokens_used=stored.get("tokens_used"),
        )
