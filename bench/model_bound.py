"""Model-bound concurrency: 1,000 titles jobs against a model that streams each answer over 1 s.

    python -m bench.model_bound [--jobs 1000] [--concurrency 100] [--seconds 1.0] [--chunks 20] [--profile]

The model is tests/support/llm_server.py in this process, answering every request with
`ok(delay_per_chunk=seconds/chunks, chunks=chunks)`: 20 streamed pieces over one second. One Inkwell
worker at concurrency 100 drains 1,000 jobs: ideal wall time jobs / concurrency × seconds = 10 s.
Beside it, one bare worker at the same concurrency drains 1,000 `asyncio.sleep(1)` jobs (the bare
counterpart of a 1 s model call). Figures: wall time (commit → all done) vs ideal, the worker's peak
RSS (psutil, sampled every 0.1 s), and progress writes per job per second, counted two ways: the
worker's own count per job (the runner logs it) and UPDATEs on inkwell.requests from
pg_stat_user_tables.n_tup_upd (minus the three per job that are not progress: running, result,
succeeded), each divided by jobs and by the median job run time. CPU per job (psutil user + system)
of the worker, of PostgreSQL and of this process (the model server's threads) shows which of them
bounds the wall time on a small machine. `--profile` samples the Inkwell worker with py-spy.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg

from bench.common import (
    BARE_APP,
    BARE_QUEUE,
    INKWELL_APP,
    INKWELL_QUEUE,
    cpu_by_process,
    cpu_since,
    figure,
    inkwell_env,
    last_job_id,
    machine_line,
    p50,
    postgres_pids,
    registered_workers,
    start_worker,
    throwaway_database,
    wait_for_workers,
    wait_until_finished,
)
from tests.support import llm_server
from tests.support.llm_server import LLMTestServer, ok

# socketserver's default listen backlog is 5: a burst of 100 connects would overflow it and the
# kernel's SYN retry (1 s) would show up as model latency. A real model endpoint has a large backlog.
llm_server._HTTPServer.request_queue_size = 1024

NON_PROGRESS_UPDATES_PER_JOB = 3  # status → running (trigger), store_result, status → succeeded (trigger)


class PeakRss:
    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def updates_on_requests(conn: psycopg.Connection) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'inkwell.requests'::regclass").fetchone()[0]


def run(conn, url, which: str, *, jobs: int, concurrency: int, seconds: float, server: LLMTestServer,
        profile: Path | None = None):
    """Drain the jobs; returns (wall seconds, worker peak RSS, the worker, CPU ms per job of worker /
    PostgreSQL / this process)."""
    extra = {}
    if which == "inkwell":
        extra = {
            "INKWELL_LLM_BASE_URL": server.base_url,
            "INKWELL_LLM_API_KEY": "bench-key",
            "INKWELL_LLM_MODEL": "inkwell-test-model",
            "INKWELL_WORKER_CONCURRENCY": str(concurrency),
        }
    env = inkwell_env(url, **extra)
    app, queue = (INKWELL_APP, INKWELL_QUEUE) if which == "inkwell" else (BARE_APP, BARE_QUEUE)
    before = registered_workers(conn)
    worker = start_worker(app, env, concurrency=concurrency, queues=queue, name=f"model-bound-{which}", log_level="info")
    spy = None
    try:
        wait_for_workers(conn, before + 1)
        time.sleep(1.0)
        spy = _start_profiler(worker.process.pid, profile) if profile is not None else None
        first_id = last_job_id(conn)
        pids = {"worker": [worker.process.pid], "postgres": postgres_pids(conn), "this process": [os.getpid()]}
        cpu_before = {name: cpu_by_process(group) for name, group in pids.items()}
        with PeakRss(worker.process.pid) as rss:
            if which == "inkwell":
                from queue_tasks.models import TitlesInput
                from queue_tasks.submit import submit_requests

                submit_requests(conn, "titles", [TitlesInput(topic=f"model-bound {i}") for i in range(jobs)], requested_by="bench")
            else:
                from bench.bare_app import sleep

                with conn.transaction():
                    sleep.configure(connection=conn).batch_defer(*({"seconds": seconds} for _ in range(jobs)))
            committed = time.perf_counter()
            pids["postgres"] = postgres_pids(conn)  # with the backends the worker opened since
            wait_until_finished(conn, queue, jobs, timeout=600)
            wall = time.perf_counter() - committed
        cpu_ms = {name: cpu_since(cpu_before[name], group) * 1000 / jobs for name, group in pids.items()}
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        worker.stop()  # its connections close, so its table statistics are flushed
    not_ok = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND id > %s AND status <> 'succeeded'", (queue, first_id)
    ).fetchone()[0]
    if not_ok:
        print(f"  !! {not_ok} {which} jobs did not succeed; see {worker.log_path}")
    return wall, rss.peak, worker, cpu_ms


def _start_profiler(pid: int, output: Path) -> subprocess.Popen:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    process = subprocess.Popen(
        [spy, "record", "--format", "raw", "-o", str(output), "--rate", "200", "--pid", str(pid), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0, help="how long the model takes per answer")
    parser.add_argument("--chunks", type=int, default=20, help="streamed pieces per answer")
    parser.add_argument("--profile", action="store_true", help="py-spy the Inkwell worker (py-spy in the venv)")
    args = parser.parse_args()
    ideal = args.jobs / args.concurrency * args.seconds
    behaviour = ok(delay_per_chunk=args.seconds / args.chunks, chunks=args.chunks)

    with LLMTestServer(default_behaviour=behaviour) as server, throwaway_database() as url, \
            psycopg.connect(url, autocommit=True) as conn:
        print(machine_line(conn))
        print(f"{args.jobs:,} jobs, one worker at concurrency {args.concurrency}, model answers in {args.seconds:g} s "
              f"({args.chunks} chunks); ideal {ideal:.1f} s")
        bare_wall, bare_rss, _, bare_cpu = run(
            conn, url, "bare", jobs=args.jobs, concurrency=args.concurrency, seconds=args.seconds, server=server
        )
        updates_before = updates_on_requests(conn)
        profile = Path("/tmp") / f"inkwell-bench-model-bound-profile-{time.time_ns()}.txt" if args.profile else None
        ink_wall, ink_rss, worker, ink_cpu = run(
            conn, url, "inkwell", jobs=args.jobs, concurrency=args.concurrency, seconds=args.seconds, server=server,
            profile=profile,
        )
        time.sleep(0.5)
        updates = updates_on_requests(conn) - updates_before

        run_seconds = [
            row[0] for row in conn.execute(
                "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM inkwell.requests WHERE status = 'succeeded'"
            ).fetchall()
        ]
        per_job_run = p50(run_seconds)
        logged = [int(n) for n in re.findall(r"\((\d+) progress writes\)", worker.log)]

        figure("model_bound_bare_wall", bare_wall, "s", extra=f"{bare_wall / ideal:.2f} × ideal {ideal:.1f} s")
        figure("model_bound_inkwell_wall", ink_wall, "s", target=f"≤ {1.1 * ideal:.1f} s (1.1 × ideal)",
               extra=f"{ink_wall / ideal:.2f} × ideal; {ink_wall / bare_wall:.2f} × bare")
        figure("model_bound_bare_worker_peak_rss", bare_rss / 2**20, "MB")
        figure("model_bound_inkwell_worker_peak_rss", ink_rss / 2**20, "MB", target="≤ 200 MB")
        figure("model_bound_inkwell_job_run_time_p50", per_job_run, "s", extra=f"p95 {sorted(run_seconds)[int(0.95 * (len(run_seconds) - 1))]:.2f} s")
        if logged:
            per_job = sum(logged) / len(logged)
            figure("model_bound_progress_writes_per_job", per_job, "writes", extra=f"from the worker log, {len(logged)} jobs")
            figure("model_bound_progress_writes_per_job_second", per_job / per_job_run, "writes/job/s", target="≤ 4")
        progress_updates = updates - NON_PROGRESS_UPDATES_PER_JOB * args.jobs
        figure("model_bound_requests_updates_per_job", updates / args.jobs, "UPDATEs",
               extra=f"n_tup_upd {updates:,} in all; {progress_updates / args.jobs:.2f} of them progress per job")
        figure("model_bound_progress_updates_per_job_second", progress_updates / args.jobs / per_job_run, "writes/job/s",
               target="≤ 4", extra="from pg_stat_user_tables")
        for name in ("worker", "postgres", "this process"):
            key = name.replace(" ", "_")
            figure(f"model_bound_cpu_per_job_bare_{key}", bare_cpu[name], "ms")
            figure(f"model_bound_cpu_per_job_inkwell_{key}", ink_cpu[name], "ms",
                   extra="this process = the model server's threads" if name == "this process" else "")
        print(f"model server: {server.request_count} chat requests")
        if profile is not None:
            from bench.throughput import summarize_profile

            summarize_profile(profile)


if __name__ == "__main__":
    main()
