"""What every benchmark shares: a throwaway durable PostgreSQL, real worker subprocesses, timing helpers.

The server is `db.embedded.EmbeddedPostgres(durable=True)`: fsync, synchronous_commit and
full_page_writes are on, so every commit costs what it costs in production on this disk.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from db.embedded import EmbeddedPostgres  # noqa: E402
from db.migrate import migrate  # noqa: E402
from tests.support.worker_process import WorkerProcess  # noqa: E402

INKWELL_APP = "queue_tasks.app"
BARE_APP = "bench.bare_app.app"
BARE_QUEUE = "bare"
INKWELL_QUEUE = "default"

# What every Inkwell worker in a benchmark runs with: the offline model answering at once.
BASE_INKWELL_ENV = {
    "INKWELL_OFFLINE_MODEL_SECONDS": "0",
    "INKWELL_LLM_BASE_URL": "",
    "INKWELL_LLM_API_KEY": "",
}


@contextlib.contextmanager
def throwaway_database(keep: str | None = None) -> Iterator[str]:
    """A fresh durable PostgreSQL in a temporary folder, migrated; yields its URL and removes it after."""
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="inkwell-bench-"))
    server = EmbeddedPostgres(folder / "pgdata", durable=True)
    url = server.start()
    try:
        migrate(url)
        yield url
    finally:
        server.stop()
        if not keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def inkwell_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker: the base settings plus `extra`, and no INKWELL_* setting left over
    from an earlier call (a variant's setting must not leak into the next round)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("INKWELL_")}
    env = {**inherited, **BASE_INKWELL_ENV, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **extra}
    # Settings are read once per process; make the benchmark process agree with its workers.
    for key in [k for k in os.environ if k.startswith("INKWELL_")]:
        del os.environ[key]
    os.environ.update({k: v for k, v in env.items() if k.startswith("INKWELL_") or k == "DATABASE_URL"})
    from inkwell_settings import get_settings

    get_settings.cache_clear()
    return env


def start_worker(
    app: str, env: dict[str, str], *, concurrency: int, queues: str, name: str, log_level: str = "warning",
    cwd: Path = ROOT,
) -> WorkerProcess:
    """A real `python -m procrastinate worker` subprocess, run in `cwd` (the code it imports). Both apps
    log at the same level (WARNING by default: the INFO lines cost ~5 % per job in either)."""
    log_path = Path(tempfile.gettempdir()) / f"inkwell-bench-{os.getpid()}-{name}.log"
    command = [
        sys.executable, "-m", "procrastinate", f"--app={app}", f"--log-level={log_level}", "worker",
        "--name", name, "--concurrency", str(concurrency), "--queues", queues,
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return WorkerProcess(process, log_path)


def wait_for_workers(conn: psycopg.Connection, count: int, timeout: float = 60.0) -> None:
    """Until `count` workers have registered (their first heartbeat): they are listening and idle."""
    deadline = time.monotonic() + timeout
    while registered_workers(conn) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} workers did not start in {timeout:.0f} s")
        time.sleep(0.05)


def wait_until_finished(conn: psycopg.Connection, queue: str, total: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND status IN ('succeeded', 'failed')"
    while conn.execute(query, (queue,)).fetchone()[0] < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{total} jobs on {queue!r} did not finish in {timeout:.0f} s")
        time.sleep(0.05)


def last_job_id(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs").fetchone()[0]


def drain_seconds(conn: psycopg.Connection, queue: str, after_job_id: int) -> float:
    """From the first job's start to the last job's end, by Procrastinate's own event timestamps."""
    first, last = conn.execute(
        """
        SELECT min(e.at) FILTER (WHERE e.type = 'started'), max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed'))
          FROM procrastinate_events AS e JOIN procrastinate_jobs AS j ON j.id = e.job_id
         WHERE j.queue_name = %s AND j.id > %s
        """,
        (queue, after_job_id),
    ).fetchone()
    return (last - first).total_seconds()


def registered_workers(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def p50(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    return percentile(values, 0.95)


def figure(name: str, value: float, unit: str, *, target: str = "", extra: str = "") -> None:
    """One figure line: `FIGURE <name> = <value> <unit> [target ...] [...]` (the smoke test looks for these)."""
    parts = [f"FIGURE {name} = {value:,.3f} {unit}"]
    if target:
        parts.append(f"[target {target}]")
    if extra:
        parts.append(extra)
    print("  ".join(parts), flush=True)


def commit_rate(conn: psycopg.Connection, commits: int = 1_000) -> float:
    """Single-row UPDATE commits per second from one connection: what this disk's fsync allows."""
    conn.execute("DROP TABLE IF EXISTS bench_commit_probe_durable")
    conn.execute("CREATE TABLE bench_commit_probe_durable (id int PRIMARY KEY, n int)")
    conn.execute("INSERT INTO bench_commit_probe_durable VALUES (1, 0)")
    t = time.perf_counter()
    for _ in range(commits):
        conn.execute("UPDATE bench_commit_probe_durable SET n = n + 1 WHERE id = 1")
    rate = commits / (time.perf_counter() - t)
    conn.execute("DROP TABLE bench_commit_probe_durable")
    return rate


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of these processes so far (the ones that have exited count as zero)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_by_process(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes that still runs."""
    import psutil

    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            seconds[pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def cpu_since(before: dict[int, float], pids: Sequence[int]) -> float:
    """CPU seconds these processes used since `before` (a `cpu_by_process` snapshot): a process started
    since counts in full, one gone since counts as nothing (never negative, unlike a difference of sums)."""
    now = cpu_by_process(pids)
    return sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in now.items())


def postgres_pids(conn: psycopg.Connection) -> list[int]:
    """The server's postmaster and every process it has now (backends, WAL writer, checkpointer ...)."""
    import psutil

    data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] == "postgres" and process.cwd() == data_dir and process.ppid() not in (
                p.pid for p in psutil.process_iter() if p.name() == "postgres"
            ):
                return [process.pid, *(child.pid for child in process.children())]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return []


def machine_line(conn: psycopg.Connection | None = None) -> str:
    import procrastinate
    import psutil

    memory = psutil.virtual_memory().total / 2**30
    pg = conn.execute("SHOW server_version").fetchone()[0] if conn is not None else "?"
    load = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs, {memory:.0f} GiB, {platform.python_implementation()} {platform.python_version()}, "
        f"PostgreSQL {pg} (durable: fsync on), Procrastinate {procrastinate.__version__}, psycopg {psycopg.__version__}; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
