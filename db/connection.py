"""Connections for the console, and the one error it shows when the database is out of reach."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool
from procrastinate.exceptions import ConnectorException


class QueueUnavailable(RuntimeError):
    """The database (and so the queue) cannot be reached right now; nothing was written."""

    def __init__(self, detail: str = ""):
        super().__init__("Queue unavailable — try again later." + (f" ({detail})" if detail else ""))
        self.detail = detail


def open_pool(database_url: str, *, max_size: int = 8, timeout: float = 3.0) -> psycopg_pool.ConnectionPool:
    """A pool that opens without waiting for the database and reconnects by itself.

    `check` replaces connections the server closed (a restart), so an outage ends by itself
    once the database is back, without restarting the console.
    """
    pool = psycopg_pool.ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        timeout=timeout,
        open=False,
        check=psycopg_pool.ConnectionPool.check_connection,
        kwargs={"application_name": "inkwell-console", "connect_timeout": max(1, int(timeout)), "autocommit": True},
        reconnect_timeout=0,  # keep trying for ever: the database may be down for a long time
    )
    pool.open(wait=False)
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
