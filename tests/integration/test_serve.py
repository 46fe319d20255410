"""The launcher (`python serve.py`, what ./run starts): everything comes up, and everything goes away."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import pytest

from db.embedded import EmbeddedPostgres
from db.people import authenticate

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health(port: int) -> str:
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with no_proxy.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip()
    except OSError:
        return ""


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Served:
    process: subprocess.Popen
    port: int
    data_dir: Path
    output_path: Path

    @property
    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while health(self.port) != "ok":
            assert self.process.poll() is None, f"serve.py exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"no healthy console after {START_TIMEOUT_S} s:\n{self.output}"
            time.sleep(0.25)
        # The banner comes right after the launcher's own health check passes.
        while "Inkwell is running at" not in self.output:
            assert time.monotonic() < deadline, f"no banner:\n{self.output}"
            time.sleep(0.1)

    def processes(self) -> dict[str, psutil.Process]:
        """Everything the launcher started: its children, and the postmaster with its backends
        (pg_ctl detaches the postmaster, so it is not the launcher's descendant)."""
        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            found[" ".join(child.cmdline()[1:6])] = child
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        found["postmaster"] = postmaster
        for backend in postmaster.children():
            found[f"postgres {backend.pid}"] = backend
        return found

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"


def launch(tmp_path: Path, name: str = "serve", extra_env: dict[str, str] | None = None) -> Served:
    """`python serve.py` with its data in tmp_path/inkwell (the same folder each time: a restart)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("INKWELL_ADMIN_")}
    env["INKWELL_DATA_DIR"] = str(tmp_path / "inkwell")
    env.update(extra_env or {})
    port = free_port()
    output_path = tmp_path / f"{name}.log"
    with output_path.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "serve.py", "--port", str(port), "--workers", "1", "--concurrency", "2"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        )
    return Served(process, port, tmp_path / "inkwell", output_path)


def leave_nothing_running(served: Served) -> None:
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
        try:
            served.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            served.process.kill()
    EmbeddedPostgres(served.pgdata).stop("immediate")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    served = launch(tmp_path)
    yield served
    # Whatever the test did, leave nothing running.
    leave_nothing_running(served)


def assert_all_gone(processes: dict[str, psutil.Process]) -> None:
    deadline = time.monotonic() + 5
    while (left := [name for name, p in processes.items() if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"still running: {left}"


def test_ctrl_c_stops_everything_and_exits_0(serve: Served):
    serve.wait_healthy()
    assert "Database: embedded PostgreSQL" in serve.output
    processes = serve.processes()
    names = " | ".join(processes)
    assert "procrastinate" in names and "streamlit" in names and "-m api" in names, names
    # The HTTP API is served too, on the next port, with no extra step.
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"http://127.0.0.1:{serve.port + 1}/api/v1/health", timeout=5) as response:
        assert response.status == 200
    assert f"HTTP API: http://localhost:{serve.port + 1}/api/v1" in serve.output

    serve.process.send_signal(signal.SIGINT)

    assert serve.process.wait(STOP_TIMEOUT_S) == 0, serve.output
    assert_all_gone(processes)
    assert not (serve.pgdata / "postmaster.pid").exists()


def test_a_dying_worker_stops_everything_with_an_error(serve: Served):
    serve.wait_healthy()
    processes = serve.processes()
    worker = next(p for name, p in processes.items() if "procrastinate" in name)

    worker.kill()

    assert serve.process.wait(STOP_TIMEOUT_S) == 1, serve.output
    assert "worker-0 exited unexpectedly" in serve.output
    assert_all_gone(processes)


# --- the first admin ---

GENERATED_PASSWORD = re.compile(r"Sign in as “admin” with the password:\n\n    (\S+)\n")


def sign_in_check(served: Served, username: str, password: str):
    """The account `authenticate` finds with these credentials in the launcher's database (running)."""
    with psycopg.connect(EmbeddedPostgres(served.pgdata).start(), autocommit=True) as conn:
        return authenticate(conn, username, password)


def test_the_first_start_creates_an_admin_and_prints_its_password_once_and_never_again(tmp_path: Path):
    first = launch(tmp_path, "first")
    try:
        first.wait_healthy()
        [password] = GENERATED_PASSWORD.findall(first.output)
        admin = sign_in_check(first, "admin", password)
        assert (admin.username, admin.role, admin.active) == ("admin", "admin", True)
        first.process.send_signal(signal.SIGINT)
        assert first.process.wait(STOP_TIMEOUT_S) == 0, first.output
    finally:
        leave_nothing_running(first)
    assert first.output.count(password) == 1, "printed once, by the launcher alone (not by the console or a worker)"

    second = launch(tmp_path, "second")
    try:
        second.wait_healthy()
        assert "First admin" not in second.output and password not in second.output
        assert sign_in_check(second, "admin", password) is not None, "the same admin, the same password"
    finally:
        leave_nothing_running(second)
    assert not any(password in log.read_text(errors="replace") for log in second.data_dir.rglob("*.log"))


def test_the_first_admin_takes_its_name_and_password_from_the_settings_and_prints_neither(tmp_path: Path):
    password = "a settings passphrase 42"
    served = launch(tmp_path, extra_env={"INKWELL_ADMIN_USERNAME": "chief", "INKWELL_ADMIN_PASSWORD": password})
    try:
        served.wait_healthy()
        admin = sign_in_check(served, "chief", password)
        assert (admin.username, admin.role) == ("chief", "admin")
        assert sign_in_check(served, "admin", password) is None
    finally:
        leave_nothing_running(served)
    assert "First admin" not in served.output and password not in served.output
