"""Fixtures for the HTTP API tests: the real API server (`python -m api`) on a free port, on the
test's PostgreSQL, with real workers and the local model server (tests/conftest.py), and API
tokens made the way the console's API tokens page makes them (db.people.start_session, kind 'api')."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import psycopg
import pytest

from db.people import User, start_session
from tests.support.people import Cast, make_cast

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ApiServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, token: str | None = None, **headers: str) -> httpx2.Client:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx2.Client(base_url=self.base_url, headers=headers, timeout=30, trust_env=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_api_server(env: dict[str, str], log_path: Path) -> ApiServer:
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT,
        )
    server = ApiServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited ({process.returncode}):\n{server.log}")
        try:
            with httpx2.Client(trust_env=False, timeout=2) as client:
                if client.get(f"{server.base_url}/api/openapi.json").status_code == 200:
                    return server
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the API server did not answer within 30 s:\n{server.log}")
        time.sleep(0.1)


@pytest.fixture
def api_env(inkwell_env: dict[str, str]) -> dict[str, str]:
    """Settings for the API server and its workers: quick webhooks and heartbeats, the local site allowed."""
    extra = {
        "INKWELL_ALLOW_PRIVATE_URLS": "true",
        "INKWELL_WEBHOOK_RETRY_BASE_SECONDS": "1",
        "INKWELL_WEBHOOK_MAX_ATTEMPTS": "3",
        "INKWELL_WEBHOOK_TIMEOUT_SECONDS": "3",
        "INKWELL_API_HEARTBEAT_SECONDS": "1",
    }
    return {**inkwell_env, **extra}


@pytest.fixture
def api_server(api_env: dict[str, str], tmp_path: Path, monkeypatch) -> Iterator[ApiServer]:
    for key, value in api_env.items():
        monkeypatch.setenv(key, value)
    server = start_api_server(api_env, tmp_path / "api.log")
    yield server
    server.stop()


@pytest.fixture
def cast(db: psycopg.Connection) -> Cast:
    return make_cast(db)


@pytest.fixture
def token_for(db: psycopg.Connection) -> Callable[..., str]:
    """token_for(user, name="tests", expires_at=None) -> a raw API token of that user."""

    def make(user: User, name: str = "tests", expires_at=None) -> str:
        return start_session(db, user.id, kind="api", name=name, expires_at=expires_at)

    return make


@pytest.fixture
def worker(start_worker, api_env):
    return start_worker(concurrency=8, extra_env=api_env)
