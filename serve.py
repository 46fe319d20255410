"""Start Inkwell: PostgreSQL, the schema, the queue workers, the Streamlit console and the HTTP API.

    python serve.py [--port 8501] [--api-port PORT+1] [--address 127.0.0.1] [--db-port 5433] [--workers auto|N] [--concurrency N]

Without DATABASE_URL an embedded PostgreSQL keeps its data in .inkwell/pgdata (or
$INKWELL_DATA_DIR/pgdata), listens on the unix socket and 127.0.0.1:--db-port, asks every role for
its password (SCRAM) and gets its roles (db/roles.py) with generated passwords kept in
.inkwell/database-passwords.json (mode 0600): migrations and the first admin run as inkwell_owner,
the workers as inkwell_worker, the console as inkwell_console. With DATABASE_URL (the owner's),
INKWELL_CONSOLE_DATABASE_URL and INKWELL_WORKER_DATABASE_URL name the other two roles' logins. Ctrl-C or SIGTERM stops everything and exits 0; if a worker or the
console dies on its own, everything is stopped and the exit code is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import psycopg

from db import roles
from db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from db.migrate import migrate
from db.people import ensure_first_admin
from inkwell_settings import get_settings

ROOT = Path(__file__).resolve().parent
DEFAULT_DB_PORT = 5433
CHILD_STOP_TIMEOUT_S = 15
HEALTH_TIMEOUT_S = 120
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class LaunchError(RuntimeError):
    """Inkwell cannot go on (port taken, console not healthy, a child exited): say why and stop."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run Inkwell: database, queue workers and console.")
    parser.add_argument("--port", type=int, default=8501, help="console port (default 8501)")
    parser.add_argument("--api-port", type=int, default=None, help="HTTP API port (default: the console's + 1)")
    parser.add_argument(
        "--address", default="127.0.0.1",
        help="address the console listens on (default 127.0.0.1: this machine only; 0.0.0.0 for every "
             "interface — put it behind TLS then, see deploy/)",
    )
    parser.add_argument(
        "--db-port", type=int, default=DEFAULT_DB_PORT,
        help=f"TCP port of the embedded PostgreSQL on 127.0.0.1 (default {DEFAULT_DB_PORT}; analysts connect there)",
    )
    parser.add_argument(
        "--workers", type=_worker_count, default="auto",
        help="worker processes, or `auto`: one per CPU core (default auto)",
    )
    parser.add_argument(
        "--concurrency",
        type=_at_least(1),
        default=int(os.environ.get("INKWELL_WORKER_CONCURRENCY", "10")),
        help="jobs run at once per worker (default $INKWELL_WORKER_CONCURRENCY or 10)",
    )
    return parser.parse_args(argv)


def _at_least(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _worker_count(text: str) -> int:
    """`auto` is one worker process per CPU core: one process runs its jobs on one core (an asyncio
    loop), and its CPU per job, not the model's wait, is what caps a process (bench/RESULTS.md)."""
    if text.strip().lower() == "auto":
        return max(1, os.cpu_count() or 1)
    try:
        return _at_least(0)(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes or `auto`, got {text!r}") from None


def data_root() -> Path:
    return Path(os.environ.get("INKWELL_DATA_DIR") or ROOT / ".inkwell").resolve()


def hide_password(url: str) -> str:
    """The URL with any password (user:password@ or password=...) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
        url = urlunsplit(parts)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", url)


def port_is_free(port: int, address: str = "") -> bool:
    with socket.socket() as probe:
        # Same option as the console's server, so a just-closed previous run does not count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _die_with_launcher(launcher_pid: int) -> None:
    """Runs in each child before exec: on Linux, have the kernel send it SIGTERM if the launcher dies
    without cleaning up (SIGKILL, OOM killer), so no worker or console outlives it."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != launcher_pid:  # the launcher died before prctl took effect
        os._exit(1)


class Launcher:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.postgres: EmbeddedPostgres | None = None
        self.children: dict[str, subprocess.Popen] = {}
        self._stopping = False
        self._holding = False
        self._held_signal: int | None = None

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        try:
            self._start()
            self._watch()
        except StopRequested as stop:
            print(f"\n{stop}: stopping Inkwell…", flush=True)
            return 0
        except (LaunchError, EmbeddedPostgresError, psycopg.OperationalError) as error:
            print(f"\nError: {error}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._stopping = True
            self._shutdown()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._stopping:
            return  # shutdown is under way and bounded in time: let it finish
        if self._holding:
            self._held_signal = signum
            return
        self._stopping = True
        raise StopRequested(signum)

    @contextlib.contextmanager
    def _signals_held(self) -> Iterator[None]:
        """Act on a stop signal only once the block is done. Python runs a signal handler right after
        fork() returns, before Popen hands back the child: raising there would leave the child
        running unseen (an initdb, a pg_ctl, a worker)."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._held_signal is not None:
            self._stopping = True
            raise StopRequested(self._held_signal)

    # -- starting ---------------------------------------------------------------------------------

    def _start(self) -> None:
        port = self.args.port
        if not port_is_free(port):
            raise LaunchError(f"port {port} is already in use; choose another with --port")
        api_port = self.args.api_port or port + 1
        if not port_is_free(api_port):
            raise LaunchError(f"port {api_port} (the HTTP API) is already in use; choose another with --api-port")
        urls, database_label = self._database()
        # Migrations and the first admin: the owner (with our embedded server: never a superuser).
        applied = migrate(urls["owner"], analyst_password="" if self.postgres else None)
        print("Database schema: " + (f"applied {', '.join(applied)}" if applied else "up to date"), flush=True)
        self._ensure_first_admin(urls["owner"])

        worker_env = self._child_env(urls["worker"])
        console_env = self._child_env(urls["console"])
        console_env.setdefault("INKWELL_API_URL", f"http://localhost:{api_port}")
        for i in range(self.args.workers):
            self._spawn(f"worker-{i}", [
                sys.executable, "-m", "procrastinate", "--app=queue_tasks.app", "worker",
                "--concurrency", str(self.args.concurrency), "--name", f"worker-{i}",
            ], worker_env)
        self._spawn("streamlit", [
            sys.executable, "-m", "streamlit", "run", "console_server.py", "--server.headless", "true",
            "--server.port", str(port), "--server.address", self.args.address,
            "--browser.gatherUsageStats", "false",
        ], console_env)
        # The HTTP API in its own process: its event loop and threads never wait on the console's
        # script runs (one GIL each), and it can be restarted or scaled out on its own. It acts for
        # callers as the console does (the console's role); its event fan-out and health read as
        # the workers' role, which sees every row.
        api_env = {**console_env, "INKWELL_API_READER_DATABASE_URL": urls["worker"]}
        self._spawn("api", [sys.executable, "-m", "api", "--host", self.args.address, "--port", str(api_port)], api_env)
        self._wait_healthy(port)
        self._wait_healthy(api_port, path="/api/openapi.json", label="the HTTP API")
        shown_host = "localhost" if self.args.address in ("127.0.0.1", "localhost", "::1") else self.args.address
        print(f"\nInkwell is running at http://{shown_host}:{port}  (Ctrl-C to stop)", flush=True)
        print(f"HTTP API: http://{shown_host}:{api_port}/api/v1  (docs: http://{shown_host}:{api_port}/api/docs)", flush=True)
        print(f"Database: {database_label}", flush=True)
        print(f"Workers: {self.args.workers} × concurrency {self.args.concurrency}\n", flush=True)

    def _ensure_first_admin(self, database_url: str) -> None:
        """Create the first admin when there is none, so someone can sign in at once. A generated
        password is printed here, at once (a later failure must not lose it), and nowhere else."""
        settings = get_settings()
        password = settings.admin_password.get_secret_value() if settings.admin_password else None
        with psycopg.connect(database_url, autocommit=True) as conn:
            admin, generated = ensure_first_admin(
                conn, username=settings.admin_username, password=password, starting_credits=settings.starting_credits
            )
        if generated is not None:
            print(
                f"\nFirst admin created. Sign in as “{admin.username}” with the password:\n\n    {generated}\n\n"
                "It is shown only this once: keep it, or set a new one on the Admin page.\n",
                flush=True,
            )

    def _database(self) -> tuple[dict[str, str], str]:
        """({"owner"|"console"|"worker": URL}, what to tell the user): DATABASE_URL (and the
        console's and workers' own URLs, when given) if set, else the embedded server's roles."""
        if url := os.environ.get("DATABASE_URL"):
            urls = {
                "owner": url,
                "console": os.environ.get("INKWELL_CONSOLE_DATABASE_URL") or url,
                "worker": os.environ.get("INKWELL_WORKER_DATABASE_URL") or url,
            }
            if urls["console"] == url or urls["worker"] == url:
                print("Warning: the console or the workers connect with DATABASE_URL, the owner's rights. Give them "
                      "their own roles (INKWELL_CONSOLE_DATABASE_URL, INKWELL_WORKER_DATABASE_URL; README, "
                      "“Roles, enforced by the database”).", file=sys.stderr, flush=True)
            return urls, f"DATABASE_URL {hide_password(url)}"
        if not port_is_free(self.args.db_port, "127.0.0.1"):
            raise LaunchError(f"port {self.args.db_port} is already in use; choose another with --db-port")
        passwords_file = data_root() / roles.PASSWORDS_FILE_NAME
        passwords = roles.load_or_create_passwords(passwords_file)
        data_dir = data_root() / "pgdata"
        print(f"Starting PostgreSQL in {_display_path(data_dir)} …", flush=True)
        self.postgres = EmbeddedPostgres(data_dir, port=self.args.db_port, superuser_password=passwords[roles.SUPERUSER_KEY])
        with self._signals_held():
            self.postgres.start()
        analyst = get_settings().analyst_password  # INKWELL_ANALYST_PASSWORD, when set, wins
        login = {**passwords, roles.ANALYST: analyst.get_secret_value()} if analyst else passwords
        with psycopg.connect(self.postgres.uri_for("template1"), autocommit=True) as conn:
            roles.create_roles(conn, login)
            if roles.adopt_older_database(conn, self.postgres.uri_for):
                print(f"Moved the data of an earlier run into the database “{roles.DATABASE}”, "
                      f"owned by {roles.OWNER}.", flush=True)
            roles.create_database(conn)
        socket_url = self.postgres.uri_for(roles.DATABASE)
        urls = {
            part: roles.url_for(socket_url, user=role, password=passwords[role])
            for part, role in (("owner", roles.OWNER), ("console", roles.CONSOLE), ("worker", roles.WORKER))
        }
        analyst_url = f"postgresql://{roles.ANALYST}:…@127.0.0.1:{self.args.db_port}/{roles.DATABASE}"
        print(f"PostgreSQL listens on 127.0.0.1:{self.args.db_port}. Analysts: psql \"{analyst_url}\" "
              f"(the password: INKWELL_ANALYST_PASSWORD, or “{roles.ANALYST}” in {_display_path(passwords_file)})", flush=True)
        return urls, f"embedded PostgreSQL on 127.0.0.1:{self.args.db_port}, data in {_display_path(data_dir)}"

    def _child_env(self, database_url: str) -> dict[str, str]:
        # The procrastinate command does not look for the app in the current folder.
        python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1"}

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        with self._signals_held():
            self.children[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                # Own process group: a terminal Ctrl-C reaches only the launcher, which stops the
                # children itself, in order.
                start_new_session=True, preexec_fn=functools.partial(_die_with_launcher, os.getpid()),
            )

    def _wait_healthy(self, port: int, path: str = "/_stcore/health", label: str = "the console") -> None:
        url = f"http://127.0.0.1:{port}{path}"
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # HTTP(S)_PROXY must not apply
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            self._check_children()
            try:
                with no_proxy.open(url, timeout=2) as response:
                    if response.status == 200 and (path != "/_stcore/health" or response.read().strip() == b"ok"):
                        return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise LaunchError(f"{label} did not answer {url} within {HEALTH_TIMEOUT_S} s")
            time.sleep(0.25)

    # -- running and stopping ---------------------------------------------------------------------

    def _watch(self) -> NoReturn:
        while True:
            self._check_children()
            time.sleep(0.5)

    def _check_children(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise LaunchError(f"{name} exited unexpectedly (exit code {child.returncode})")

    def _shutdown(self) -> None:
        running = [child for child in self.children.values() if child.poll() is None]
        for child in running:
            _signal_group(child, signal.SIGTERM)  # Procrastinate finishes or aborts its jobs on SIGTERM
        deadline = time.monotonic() + CHILD_STOP_TIMEOUT_S
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within {CHILD_STOP_TIMEOUT_S} s: killing it", file=sys.stderr)
                _signal_group(child, signal.SIGKILL)
                child.wait()
        if self.postgres is not None:
            try:
                self.postgres.stop("fast")
            except EmbeddedPostgresError as error:
                print(f"Could not stop PostgreSQL cleanly: {error}", file=sys.stderr)
        print("Inkwell stopped.", flush=True)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def _display_path(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    return Launcher(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
