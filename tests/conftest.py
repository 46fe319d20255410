"""Fixtures shared by the whole suite: a throwaway PostgreSQL, a fresh database per test,
real `procrastinate worker` subprocesses, and the local OpenAI-compatible test server."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from db import roles
from db.embedded import EmbeddedPostgres
from db.migrate import migrate
from tests.support.llm_server import LLMTestServer
from tests.support.worker_process import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DB = "inkwell_template"


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, message: str = "") -> object:
    """Poll until condition() is truthy and return its value; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message or condition}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", durable=False)
    server.start()
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        # The console's, workers' and analysts' logins (db/roles.py); this server trusts its socket,
        # so they need no password here.
        roles.create_roles(conn, passwords=None)
    # Migrations run once into a template; every test clones it (fast, and fully isolated).
    migrate(server.uri_for(TEMPLATE_DB))
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield postgres.uri_for(name)
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def console_database_url(database_url: str) -> str:
    """The test's database as the console logs in to it: role inkwell_console."""
    return roles.url_for(database_url, user=roles.CONSOLE)


@pytest.fixture
def worker_database_url(database_url: str) -> str:
    """The test's database as the workers log in to it: role inkwell_worker."""
    return roles.url_for(database_url, user=roles.WORKER)


@pytest.fixture
def analyst_database_url(database_url: str) -> str:
    """The test's database as analysts log in to it: role inkwell_analyst."""
    return roles.url_for(database_url, user=roles.ANALYST)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database, for arranging and asserting."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def llm_server() -> Iterator[LLMTestServer]:
    with LLMTestServer() as server:
        yield server


@pytest.fixture
def inkwell_env(database_url: str, llm_server: LLMTestServer, monkeypatch) -> dict[str, str]:
    """Settings for code under test, in this process and in the workers it starts.

    Short retry waits and time-outs keep the suite quick; the values are read by the same
    settings object the product uses.
    """
    env = {
        "DATABASE_URL": database_url,
        "INKWELL_LLM_BASE_URL": llm_server.base_url,
        "INKWELL_LLM_API_KEY": "test-key",
        "INKWELL_LLM_MODEL": "inkwell-test-model",
        "INKWELL_LLM_TIMEOUT_SECONDS": "3",
        "INKWELL_RETRY_BASE_SECONDS": "0.2",
        "INKWELL_RETRY_MAX_SECONDS": "2",
        "INKWELL_PROGRESS_WRITE_INTERVAL_SECONDS": "0.1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from inkwell_settings import get_settings

    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


@pytest.fixture
def start_worker(inkwell_env: dict[str, str], worker_database_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a real `procrastinate worker` subprocess on the test's database, logged in as the
    workers' role (inkwell_worker), as ./run starts it."""
    workers: list[WorkerProcess] = []

    def start(*, concurrency: int = 4, extra_env: dict[str, str] | None = None, one_shot: bool = False) -> WorkerProcess:
        name = f"worker-{len(workers)}"
        env = {**os.environ, **inkwell_env, "DATABASE_URL": worker_database_url, "PYTHONPATH": str(ROOT), **(extra_env or {})}
        log_path = tmp_path / f"{name}.log"
        command = [
            sys.executable, "-m", "procrastinate", "--app=queue_tasks.app", "worker",
            "--name", name, "--concurrency", str(concurrency),
        ]
        if one_shot:
            command.append("--one-shot")
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        worker = WorkerProcess(process, log_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.stop(timeout=10)
