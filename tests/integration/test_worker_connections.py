"""The worker's connection pool (queue_tasks/procrastinate_app.py): statements commit on their own,
and a pooled connection is checked without a round trip unless the server has written to it."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest

from inkwell_settings import get_settings
from queue_tasks.procrastinate_app import _connector, autocommit


@pytest.fixture
def connector(worker_database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", worker_database_url)
    get_settings.cache_clear()
    yield _connector()
    get_settings.cache_clear()


@contextlib.asynccontextmanager
async def opened(connector):
    await connector.open_async()
    try:
        yield connector.pool
    finally:
        await connector.close_async()


def last_query_of(db: psycopg.Connection, pid: int) -> str:
    return db.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]


def test_a_pooled_connection_commits_each_statement_on_its_own(connector):
    async def scenario():
        async with opened(connector) as pool:
            async with pool.connection() as conn:
                assert conn.autocommit
                await conn.execute("SELECT 1")
                # No transaction left open between statements: nothing to COMMIT afterwards.
                assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                async with conn.transaction():  # several statements that must hold together still can
                    await conn.execute("SELECT 2")
                    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS

    asyncio.run(scenario())


def test_an_idle_healthy_connection_is_handed_out_without_a_round_trip(connector, db):
    async def scenario():
        async with opened(connector) as pool:
            async with pool.connection() as conn:
                pid = conn.info.backend_pid
                await conn.execute("SELECT 'the last statement sent'")
            async with pool.connection() as again:
                assert again.info.backend_pid == pid  # the pool holds one connection (min_size 1)
                # The check sent nothing: the backend's last statement is still ours, not an empty query.
                assert last_query_of(db, pid) == "SELECT 'the last statement sent'"
                assert (await (await again.execute("SELECT 3")).fetchone())[0] == 3

    asyncio.run(scenario())


def test_a_connection_the_server_ended_is_not_handed_out(connector, db):
    async def scenario():
        async with opened(connector) as pool:
            async with pool.connection() as conn:
                ended = conn.info.backend_pid
            assert db.execute("SELECT pg_terminate_backend(%s)", (ended,)).fetchone()[0]
            await asyncio.sleep(0.2)  # the server's goodbye reaches the socket
            async with pool.connection() as conn:
                assert conn.info.backend_pid != ended
                assert (await (await conn.execute("SELECT 4")).fetchone())[0] == 4

    asyncio.run(scenario())


def test_the_listen_connection_still_opens(connector):
    async def scenario():
        async with opened(connector):
            async with connector._get_standalone_connection() as conn:  # Procrastinate's LISTEN connection
                assert conn.autocommit
                await conn.execute("LISTEN inkwell_test_channel")

    asyncio.run(scenario())


def test_autocommit_also_configures_a_synchronous_connection(worker_database_url):
    with psycopg.connect(worker_database_url) as conn:
        assert autocommit(conn) is None
        assert conn.autocommit
