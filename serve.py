"""Start Inkwell: PostgreSQL, the schema, the queue workers and the Streamlit console.

    python serve.py [--port 8501] [--workers auto|N] [--concurrency N]

Without DATABASE_URL an embedded PostgreSQL keeps its data in .inkwell/pgdata (or
$INKWELL_DATA_DIR/pgdata). Ctrl-C or SIGTERM stops everything and exits 0; if a worker or the
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

from db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from db.migrate import migrate
from db.people import ensure_first_admin
from inkwell_settings import get_settings

ROOT = Path(__file__).resolve().parent
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


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # Same option as the console's server, so a just-closed previous run does not count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
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
        database_url, database_label = self._database()
        applied = migrate(database_url)
        print("Database schema: " + (f"applied {', '.join(applied)}" if applied else "up to date"), flush=True)
        self._ensure_first_admin(database_url)

        env = self._child_env(database_url)
        for i in range(self.args.workers):
            self._spawn(f"worker-{i}", [
                sys.executable, "-m", "procrastinate", "--app=queue_tasks.app", "worker",
                "--concurrency", str(self.args.concurrency), "--name", f"worker-{i}",
            ], env)
        self._spawn("streamlit", [
            sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
            "--server.port", str(port), "--browser.gatherUsageStats", "false",
        ], env)
        self._wait_healthy(port)
        print(f"\nInkwell is running at http://localhost:{port}  (Ctrl-C to stop)", flush=True)
        print(f"Database: {database_label}", flush=True)
        print(f"Workers: {self.args.workers} × concurrency {self.args.concurrency}\n", flush=True)

    def _ensure_first_admin(self, database_url: str) -> None:
        """Create the first admin when there is none, so someone can sign in at once. A generated
        password is printed here, at once (a later failure must not lose it), and nowhere else."""
        settings = get_settings()
        password = settings.admin_password.get_secret_value() if settings.admin_password else None
        with psycopg.connect(database_url, autocommit=True) as conn:
            admin, generated = ensure_first_admin(conn, username=settings.admin_username, password=password)
        if generated is not None:
            print(
                f"\nFirst admin created. Sign in as “{admin.username}” with the password:\n\n    {generated}\n\n"
                "It is shown only this once: keep it, or set a new one on the Admin page.\n",
                flush=True,
            )

    def _database(self) -> tuple[str, str]:
        """(URL, what to tell the user): DATABASE_URL if set, else the embedded server."""
        if url := os.environ.get("DATABASE_URL"):
            return url, f"DATABASE_URL {hide_password(url)}"
        data_dir = data_root() / "pgdata"
        print(f"Starting PostgreSQL in {_display_path(data_dir)} …", flush=True)
        self.postgres = EmbeddedPostgres(data_dir)
        with self._signals_held():
            url = self.postgres.start()
        return url, f"embedded PostgreSQL, data in {_display_path(data_dir)}"

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

    def _wait_healthy(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}/_stcore/health"
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # HTTP(S)_PROXY must not apply
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            self._check_children()
            try:
                with no_proxy.open(url, timeout=2) as response:
                    if response.read().strip() == b"ok":
                        return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise LaunchError(f"the console did not answer {url} within {HEALTH_TIMEOUT_S} s")
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
