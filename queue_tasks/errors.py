"""Why a job failed, in two kinds: transient faults the queue retries, permanent ones it does not."""

from __future__ import annotations

import random

from procrastinate import RetryDecision
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy

from queue_tasks.redaction import redact


# The code of a job handed back to the queue because its worker was asked to stop.
WORKER_SHUTDOWN = "worker_shutdown"


class JobError(Exception):
    """A failure with a stable code (for filters and analysts) and a message a person can act on."""

    def __init__(self, code: str, message: str):
        message = without_secrets(message)
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


def without_secrets(text: str) -> str:
    """The text with the configured API key, in any form (queue_tasks/redaction.py), redacted: an
    endpoint or a proxy may quote the request's headers in its error, and every job error is stored
    on the request and logged by the worker."""
    return redact(text)


class TransientJobError(JobError):
    """Worth another attempt: rate limits, 5xx, time-outs, dropped connections."""

    def __init__(self, code: str, message: str, retry_after: float | None = None):
        super().__init__(code, message)
        self.retry_after = retry_after


class PermanentJobError(JobError):
    """Another attempt would fail the same way: bad request, bad key, unusable output."""


class InkwellRetryStrategy(BaseRetryStrategy):
    """Retry transient faults only, up to `max_attempts` in all, with exponential back-off.

    The queue owns retries (the SDK is built with max_retries=0) so attempts are counted once,
    recorded as events, and visible in the console. A server's Retry-After is honoured.
    """

    def __init__(self, *, max_attempts: int, base_seconds: float, max_seconds: float):
        self.max_attempts = max_attempts
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds

    def backoff_seconds(self, attempts_so_far: int, retry_after: float | None) -> float:
        exponential = self.base_seconds * (2**attempts_so_far)
        # Jitter spreads out the retries of many jobs that failed together (a 429 burst).
        wait = exponential * random.uniform(0.8, 1.2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_seconds)

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if not isinstance(exception, TransientJobError):
            return None
        if exception.code == WORKER_SHUTDOWN:
            # Not the job's fault: a stopping worker hands it back to the queue at once.
            return RetryDecision(retry_in={"seconds": 0})
        # job.attempts counts the attempts that ended before this one.
        if job.attempts + 1 >= self.max_attempts:
            return None
        wait = self.backoff_seconds(job.attempts, exception.retry_after)
        return RetryDecision(retry_in={"milliseconds": int(wait * 1000)})
