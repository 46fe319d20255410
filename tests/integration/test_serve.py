"""The launcher (`python serve.py`, what ./run starts): everything comes up, and everything goes away."""

from __future__ import annotations

import json
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
from urllib.parse import quote, urlsplit

import psutil
import psycopg
import pytest

from db import roles
from db.embedded import EmbeddedPostgres
from db.migrate import migrate
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
    db_port: int = 0

    def url_of(self, role: str, password: str | None = None) -> str:
        """A role's URL over TCP on 127.0.0.1, with its password from the launcher's 0600 file."""
        if password is None:
            password = json.loads((self.data_dir / roles.PASSWORDS_FILE_NAME).read_text())[role]
        return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{self.db_port}/{roles.DATABASE}"

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
    port, db_port = free_port(), free_port()
    output_path = tmp_path / f"{name}.log"
    with output_path.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "serve.py", "--port", str(port), "--db-port", str(db_port), "--workers", "1", "--concurrency", "2"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        )
    return Served(process, port, tmp_path / "inkwell", output_path, db_port)


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
    """The account `authenticate` finds with these credentials in the launcher's database (running),
    signing in as the console does: logged in as inkwell_console."""
    with psycopg.connect(served.url_of(roles.CONSOLE), autocommit=True) as conn:
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


# --- roles, passwords and the TCP listener ---


def test_analysts_connect_over_tcp_with_their_password_as_documented_and_nobody_without_one(serve: Served):
    serve.wait_healthy()
    assert f"PostgreSQL listens on 127.0.0.1:{serve.db_port}" in serve.output
    passwords_file = serve.data_dir / roles.PASSWORDS_FILE_NAME
    assert passwords_file.stat().st_mode & 0o777 == 0o600
    with psycopg.connect(serve.url_of(roles.ANALYST), autocommit=True) as analyst:
        assert analyst.execute("SELECT count(*) FROM analytics.requests").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("SELECT password_hash FROM inkwell.users")
    for role in (roles.ANALYST, roles.CONSOLE, roles.OWNER, "postgres"):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(serve.url_of(role, password="guessed-password"), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{serve.db_port}/postgres", connect_timeout=5)
    hba = (serve.pgdata / "pg_hba.conf").read_text()
    assert "trust" not in hba and "scram-sha-256" in hba


def test_nothing_runs_as_a_superuser_or_the_owner_after_start_and_the_console_listens_on_loopback_only(serve: Served):
    serve.wait_healthy()
    children = {name: process for name, process in serve.processes().items() if "postgres" not in name}
    logins = {name.split()[2] if name.startswith("-m procrastinate") else name.split()[1]:
              urlsplit(process.environ()["DATABASE_URL"]).username
              for name, process in children.items() if "DATABASE_URL" in process.environ()}
    assert set(logins.values()) == {roles.WORKER, roles.CONSOLE}, logins
    with psycopg.connect(serve.url_of(roles.OWNER), autocommit=True) as owner:
        users = {name for (name,) in owner.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname IS NOT NULL AND pid <> pg_backend_pid()")}
        assert users <= {roles.WORKER, roles.CONSOLE} and roles.WORKER in users, f"connected: {users}"
        superusers = {name for (name,) in owner.execute("SELECT rolname FROM pg_roles WHERE rolsuper")}
        assert superusers == {"postgres"}
    listening = {
        (c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN
    }
    assert ("127.0.0.1", serve.port) in listening
    assert ("0.0.0.0", serve.port) not in listening and ("::", serve.port) not in listening


def test_a_data_folder_from_before_the_roles_is_taken_over_with_its_history(tmp_path: Path):
    # What an earlier ./run left: everything in the superuser's `postgres` database, trusted socket.
    older = EmbeddedPostgres(tmp_path / "inkwell" / "pgdata")
    migrate(older.start())
    with psycopg.connect(older.uri, autocommit=True) as conn:
        conn.execute("""INSERT INTO inkwell.requests (id, kind, input, status, requested_by)
                        VALUES (gen_random_uuid(), 'titles', '{"topic": "kept"}', 'succeeded', 'Ana')""")
    older.stop()

    served = launch(tmp_path)
    try:
        served.wait_healthy()
        assert "Moved the data of an earlier run" in served.output
        with psycopg.connect(served.url_of(roles.ANALYST), autocommit=True) as analyst:
            assert analyst.execute("SELECT topic FROM analytics.requests").fetchall() == [("kept",)]
        with psycopg.connect(served.url_of(roles.OWNER), autocommit=True) as owner:
            foreign = owner.execute(
                """SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                    WHERE n.nspname IN ('inkwell', 'analytics', 'public') AND c.relowner <> 'inkwell_owner'::regrole"""
            ).fetchone()[0]
            assert foreign == 0, "every table, view and sequence now belongs to inkwell_owner"
    finally:
        leave_nothing_running(served)
