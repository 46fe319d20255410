"""Connections for the console, and the one error it shows when the database is out of reach."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import psycopg
import psycopg_pool
from procrastinate.exceptions import ConnectorException


class QueueUnavailable(RuntimeError):
    """The database (and so the queue) cannot be reached right now; nothing was written."""

    def __init__(self, detail: str = ""):
        super().__init__("Queue unavailable — try again later." + (f" ({detail})" if detail else ""))
        self.detail = detail


def open_pool(
    database_url: str, *, max_size: int = 8, timeout: float = 3.0, check_each_checkout: bool = True
) -> psycopg_pool.ConnectionPool:
    """A pool that opens without waiting for the database and reconnects by itself.

    `check` replaces connections the server closed (a restart), so an outage ends by itself
    once the database is back, without restarting the console. It costs a round trip per
    checkout: the HTTP API, whose status polls are one statement each, opens its pool with
    `check_each_checkout=False` and uses `checked_connection`, which checks the pool after a
    failure instead.
    """
    pool = psycopg_pool.ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        timeout=timeout,
        open=False,
        check=psycopg_pool.ConnectionPool.check_connection if check_each_checkout else None,
        kwargs={"application_name": "inkwell-console", "connect_timeout": max(1, int(timeout)), "autocommit": True},
        reconnect_timeout=0,  # keep trying for ever: the database may be down for a long time
    )
    pool.open(wait=False)
    return pool


async def open_async_pool(database_url: str, *, max_size: int = 8, timeout: float = 3.0) -> psycopg_pool.AsyncConnectionPool:
    """open_pool's asyncio form, for the HTTP API's status polls (no thread hop per call), with no
    check per checkout: use `checked_async_connection`, which checks the pool after a failure."""
    pool = psycopg_pool.AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs={"application_name": "inkwell-api", "connect_timeout": max(1, int(timeout)), "autocommit": True},
        reconnect_timeout=0,
    )
    await pool.open(wait=False)
    return pool


@contextlib.contextmanager
def database_errors_as_unavailable() -> Iterator[None]:
    """Turn connection-level failures into QueueUnavailable; let programming errors through."""
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.TooManyRequests) as error:
        raise QueueUnavailable(type(error).__name__) from error
    except ConnectorException as error:
        if isinstance(error.__cause__, psycopg.OperationalError):
            raise QueueUnavailable(type(error.__cause__).__name__) from error
        raise


@contextlib.contextmanager
def console_connection(pool: psycopg_pool.ConnectionPool) -> Iterator[psycopg.Connection]:
    with database_errors_as_unavailable(), pool.connection() as conn:
        yield conn


# The pool checks running now (a pool's id → its thread or task), so a burst of failures starts one.
_pool_checks: dict[int, threading.Thread | asyncio.Task] = {}
_pool_checks_lock = threading.Lock()


def _check_pool_soon(pool: psycopg_pool.ConnectionPool | psycopg_pool.AsyncConnectionPool) -> None:
    """Check every idle connection of `pool` in the background, replacing the ones the server closed."""
    with _pool_checks_lock:
        if id(pool) in _pool_checks:
            return

        def done(*_: object) -> None:
            with _pool_checks_lock:
                _pool_checks.pop(id(pool), None)

        if isinstance(pool, psycopg_pool.AsyncConnectionPool):
            task = asyncio.get_running_loop().create_task(pool.check())
            task.add_done_callback(done)
            _pool_checks[id(pool)] = task
        else:
            def check() -> None:
                try:
                    pool.check()
                finally:
                    done()

            thread = threading.Thread(target=check, name="inkwell-pool-check", daemon=True)
            _pool_checks[id(pool)] = thread
            thread.start()


@contextlib.contextmanager
def checked_connection(pool: psycopg_pool.ConnectionPool) -> Iterator[psycopg.Connection]:
    """console_connection for a pool opened with check_each_checkout=False (the HTTP API's): a
    connection-level failure answers QueueUnavailable as there, and has the pool's idle connections
    checked, so after a database restart the stale ones are replaced at the first failure instead
    of each failing one call in turn."""
    try:
        with console_connection(pool) as conn:
            yield conn
    except QueueUnavailable:
        _check_pool_soon(pool)
        raise


@contextlib.asynccontextmanager
async def checked_async_connection(pool: psycopg_pool.AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection]:
    """checked_connection for an AsyncConnectionPool: QueueUnavailable on a connection-level failure,
    and the pool's idle connections checked (one check at a time) so stale ones are replaced at once."""
    try:
        with database_errors_as_unavailable():
            async with pool.connection() as conn:
                yield conn
    except QueueUnavailable:
        _check_pool_soon(pool)
        raise
