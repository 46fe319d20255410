"""Which failures are retried, how many times, and after how long."""

from __future__ import annotations

import pytest
from procrastinate.jobs import Job

from queue_tasks.errors import WORKER_SHUTDOWN, InkwellRetryStrategy, PermanentJobError, TransientJobError


def job(attempts: int) -> Job:
    return Job(id=1, queue="default", lock=None, queueing_lock=None, task_name="t", attempts=attempts)


strategy = InkwellRetryStrategy(max_attempts=3, base_seconds=2.0, max_seconds=60.0)


def wait_of(decision) -> float:
    import datetime as dt

    return (decision.retry_at - dt.datetime.now(dt.timezone.utc)).total_seconds()


def test_transient_failure_is_retried_until_three_attempts_in_all():
    error = TransientJobError("rate_limited", "429")
    assert strategy.get_retry_decision(exception=error, job=job(0)) is not None
    assert strategy.get_retry_decision(exception=error, job=job(1)) is not None
    assert strategy.get_retry_decision(exception=error, job=job(2)) is None


def test_permanent_failure_is_never_retried():
    assert strategy.get_retry_decision(exception=PermanentJobError("model_auth_failed", "401"), job=job(0)) is None


def test_unexpected_exception_is_not_retried():
    assert strategy.get_retry_decision(exception=RuntimeError("bug"), job=job(0)) is None


def test_backoff_grows_exponentially_with_jitter():
    first = strategy.backoff_seconds(0, None)
    second = strategy.backoff_seconds(1, None)
    assert 1.6 <= first <= 2.4
    assert 3.2 <= second <= 4.8


def test_retry_after_from_the_server_is_honoured_when_longer():
    decision = strategy.get_retry_decision(exception=TransientJobError("rate_limited", "429", retry_after=30), job=job(0))
    assert 29 <= wait_of(decision) <= 30.5


def test_wait_is_capped():
    assert strategy.backoff_seconds(0, retry_after=3600) == 60.0


def test_worker_shutdown_requeues_at_once_whatever_the_attempts():
    decision = strategy.get_retry_decision(exception=TransientJobError(WORKER_SHUTDOWN, "stopping"), job=job(5))
    assert decision is not None and wait_of(decision) <= 0.5


@pytest.mark.parametrize("attempts", [0, 1])
def test_a_cancelled_task_is_not_retried(attempts):
    import asyncio

    assert strategy.get_retry_decision(exception=asyncio.CancelledError(), job=job(attempts)) is None
