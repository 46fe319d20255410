"""The embedded PostgreSQL wrapper: start, restart, stop, reuse, and recovery from a crashed run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil
import psycopg
import pytest

from db.embedded import SERVER_OS_USER, EmbeddedPostgres, EmbeddedPostgresError


def postmaster(server: EmbeddedPostgres) -> psutil.Process:
    return psutil.Process(int((server.data_dir / "postmaster.pid").read_text().split()[0]))


def gone(process: psutil.Process) -> bool:
    # The postmaster is not our child: a container's pid 1 may leave it a zombie for a while.
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def select(uri: str, value: int = 1) -> int:
    with psycopg.connect(uri, connect_timeout=5) as conn:
        return conn.execute("SELECT %s::int", (value,)).fetchone()[0]


@pytest.fixture
def server(tmp_path: Path):
    server = EmbeddedPostgres(tmp_path / "pgdata", durable=False)
    yield server
    server.stop("immediate")


@pytest.fixture
def durable_server(tmp_path: Path):
    server = EmbeddedPostgres(tmp_path / "pgdata")
    yield server
    server.stop("immediate")


def test_start_restart_stop(server: EmbeddedPostgres):
    uri = server.start()

    assert select(uri) == 1
    with psycopg.connect(uri) as conn:
        assert conn.execute("SHOW fsync").fetchone()[0] == "off"
        assert conn.execute("SHOW max_connections").fetchone()[0] == "200"
    first = postmaster(server)

    server.restart()
    assert server.is_running()
    assert gone(first)
    assert select(server.uri, 2) == 2

    second = postmaster(server)
    server.stop()
    assert not server.is_running()
    assert gone(second)
    server.stop()  # stopping a stopped server is a no-op


def test_durable_by_default_and_context_manager(durable_server: EmbeddedPostgres):
    with durable_server as server:
        with psycopg.connect(server.uri_for("template1")) as conn:
            assert conn.execute("SELECT current_database(), current_setting('fsync')").fetchone() == ("template1", "on")
        process = postmaster(server)
    assert gone(process)


def test_second_handle_reuses_the_running_server(server: EmbeddedPostgres):
    server.start()
    process = postmaster(server)

    other = EmbeddedPostgres(server.data_dir, durable=False)
    assert other.is_running()
    assert other.start() == server.uri
    assert postmaster(other).pid == process.pid


def test_starts_after_a_crash_left_backends_and_a_stale_pid_file(durable_server: EmbeddedPostgres):
    server = durable_server
    server.start()
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    crashed = postmaster(server)
    crashed.send_signal(signal.SIGKILL)  # only the postmaster: its backends are orphaned
    psutil.wait_procs([crashed], timeout=5)
    assert (server.data_dir / "postmaster.pid").exists()
    assert not server.is_running()

    server.start()

    with psycopg.connect(server.uri) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)


def test_starts_when_the_stale_pid_now_belongs_to_another_process(server: EmbeddedPostgres):
    server.start()
    server.stop("immediate")
    # After a reboot or in a fresh container, the old pid is often reused by something else. Postgres
    # itself gives up when that process belongs to its own OS user (as root: the server's user).
    stranger = subprocess.Popen(["sleep", "60"], user=SERVER_OS_USER if os.geteuid() == 0 else None)
    try:
        pid_file = server.data_dir / "postmaster.pid"
        pid_file.write_text(f"{stranger.pid}\n{server.data_dir}\n0\n5432\n{server.data_dir}\n\n0 0\nready\n")
        assert not server.is_running()

        server.start()

        assert select(server.uri) == 1
        assert stranger.poll() is None  # the stranger was left alone
    finally:
        stranger.kill()
        stranger.wait()


def test_tcp_port_and_failure_shows_the_server_log(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = EmbeddedPostgres(tmp_path / "pgdata", durable=False, port=port)
        with pytest.raises(EmbeddedPostgresError, match="(?s)tail of the server log.*could not bind"):
            server.start()
    assert not server.is_running()

    with server:
        assert select(f"postgresql://postgres@127.0.0.1:{port}/postgres") == 1


def test_long_data_dir_gets_a_short_socket_dir(tmp_path: Path):
    data_dir = tmp_path / ("long-" * 20) / "pgdata"
    with EmbeddedPostgres(data_dir, durable=False) as server:
        socket_dir = Path(server.uri.split("host=")[1].split("&")[0])
        assert socket_dir != data_dir
        assert len(str(socket_dir / ".s.PGSQL.5432")) < 100
        assert select(server.uri) == 1
    assert not socket_dir.exists()


def test_an_interrupted_first_start_does_not_break_the_next(server: EmbeddedPostgres):
    # Ctrl-C during initdb leaves its staging folder (PG_VERSION is among the first files written).
    staging = server.data_dir.with_name(f".{server.data_dir.name}.initdb")
    staging.mkdir()
    (staging / "PG_VERSION").write_text("18\n")

    server.start()

    assert select(server.uri) == 1
    assert not staging.exists()
