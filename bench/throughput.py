"""Throughput: jobs through the full Inkwell titles path vs bare Procrastinate no-op jobs, same database.

    python -m bench.throughput [--jobs 2000] [--concurrency 10] [--workers 1,2,4] [--rounds 2] [--profile]

Each round starts W idle, listening worker processes (`python -m procrastinate ... worker`), commits
N jobs in one transaction, and times the drain from the first `started` event to the last
`succeeded` event (Procrastinate's own timestamps; the wall time from commit to "all done", polled
every 50 ms, is printed beside it). Inkwell jobs are real titles requests (`submit_requests`: request
row, progress writes, the offline model answering at once, result stored); bare jobs are a no-op async
task of a separate App (bench/bare_app.py). Bare and Inkwell rounds alternate, so both see the same
machine load. `--profile` samples one Inkwell worker with py-spy during an extra round.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench.common import (
    BARE_APP,
    BARE_QUEUE,
    INKWELL_APP,
    commit_rate,
    drain_seconds,
    cpu_by_process,
    cpu_since,
    postgres_pids,
    INKWELL_QUEUE,
    figure,
    inkwell_env,
    last_job_id,
    machine_line,
    p50,
    registered_workers,
    start_worker,
    throwaway_database,
    wait_for_workers,
    wait_until_finished,
)


def defer_jobs(conn: psycopg.Connection, which: str, jobs: int) -> None:
    if which != "bare":
        from queue_tasks.models import TitlesInput
        from queue_tasks.submit import submit_requests

        inputs = [TitlesInput(topic=f"benchmark topic {i}") for i in range(jobs)]
        submit_requests(conn, "titles", inputs, requested_by="bench")
    else:
        from bench.bare_app import noop

        with conn.transaction():
            noop.configure(connection=conn).batch_defer(*({} for _ in range(jobs)))


# A variant of the Inkwell path: the same jobs with streaming off (one parsed completion instead of
# ~22 parsed stream chunks per answer), to show what the SDK's per-chunk parsing costs.
VARIANT_ENV = {"inkwell-nostream": {"INKWELL_LLM_STREAM": "false"}}


def one_round(conn, url, which: str, *, workers: int, concurrency: int, jobs: int, profile: Path | None = None):
    """Drain `jobs` jobs with `workers` processes; returns (jobs/s by events, jobs/s by wall clock, CPU ms per job)."""
    env = inkwell_env(url, **VARIANT_ENV.get(which, {}))
    app, queue = (BARE_APP, BARE_QUEUE) if which == "bare" else (INKWELL_APP, INKWELL_QUEUE)
    before = registered_workers(conn)
    started = [
        start_worker(app, env, concurrency=concurrency, queues=queue, name=f"{which}-{workers}x{concurrency}-{i}")
        for i in range(workers)
    ]
    spy = None
    try:
        wait_for_workers(conn, before + workers)
        time.sleep(0.5)  # registered → listening
        if profile is not None:
            spy = subprocess.Popen(
                [shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy", "record", "--format", "raw",
                 "-o", str(profile), "--rate", "200", "--pid", str(started[0].process.pid), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        first_id = last_job_id(conn)
        server_pids = postgres_pids(conn)
        worker_pids = [w.process.pid for w in started]
        cpu_before = cpu_by_process(worker_pids), cpu_by_process(server_pids)
        defer_jobs(conn, which, jobs)
        committed = time.perf_counter()
        server_pids = postgres_pids(conn)  # with the backends the drain opened
        wait_until_finished(conn, queue, jobs + _finished_before(conn, queue, first_id))
        wall = time.perf_counter() - committed
        cpu_ms = (
            cpu_since(cpu_before[0], worker_pids) * 1000 / jobs,
            cpu_since(cpu_before[1], server_pids) * 1000 / jobs,
        )
        drained = drain_seconds(conn, queue, first_id)
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        for worker in started:
            worker.stop()
    failed = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND id > %s AND status <> 'succeeded'", (queue, first_id)
    ).fetchone()[0]
    if failed:
        print(f"  !! {failed} {which} jobs did not succeed; see {started[0].log_path}", flush=True)
    return jobs / drained, jobs / wall, cpu_ms


def _finished_before(conn, queue: str, first_id: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND id <= %s AND status IN ('succeeded', 'failed')",
        (queue, first_id),
    ).fetchone()[0]


def summarize_profile(path: Path, top: int = 20) -> None:
    """py-spy's raw output is one collapsed stack per line with a sample count; print the functions that
    hold the most samples inclusively, and where the time goes by package."""
    if not path.exists():
        print("  (py-spy produced no profile: is ptrace allowed here?)")
        return
    inclusive: collections.Counter[str] = collections.Counter()
    by_package: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        frames = stack.split(";")
        total += samples
        for frame in set(frames):
            inclusive[frame] += samples
        leaf = frames[-1]
        package = "idle (event loop select)" if "select" in leaf and "selectors" in leaf else _package(leaf)
        by_package[package] += samples
    print(f"\nProfile of one Inkwell worker ({total} samples at 200 Hz; % of samples):")
    print("  self time by package (leaf frame):")
    for package, samples in by_package.most_common(12):
        print(f"    {100 * samples / total:5.1f} %  {package}")
    print("  inclusive, top functions outside asyncio/runpy plumbing:")
    shown = 0
    for frame, samples in inclusive.most_common():
        if any(skip in frame for skip in ("runpy", "asyncio/", "<module>", "procrastinate/cli", "procrastinate/__main__", "_run_module")):
            continue
        print(f"    {100 * samples / total:5.1f} %  {frame[:150]}")
        shown += 1
        if shown >= top:
            break


def _package(frame: str) -> str:
    # Frames look like "function (path/to/module.py:123)".
    path = frame.rpartition("(")[2]
    for marker in ("site-packages/", "python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1].split("/", 1)[0].split(".py")[0]
    return path.split("/")[-2] if "/" in path else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts for the scale-out table")
    parser.add_argument("--rounds", type=int, default=2, help="bare/Inkwell pairs per worker count (order alternates)")
    parser.add_argument("--profile", action="store_true", help="py-spy one Inkwell worker in an extra round")
    parser.add_argument("--no-stream-variant", action="store_true",
                        help="also run Inkwell with INKWELL_LLM_STREAM=false (1 worker rounds)")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]

    with throwaway_database() as url, psycopg.connect(url, autocommit=True) as conn:
        print(machine_line(conn))
        figure("commit_rate_one_connection", commit_rate(conn), "commits/s", extra="single-row UPDATE, autocommit, fsync on")
        print(f"{args.jobs:,} jobs per round, concurrency {args.concurrency} per worker, {args.rounds} rounds of each")
        rates: dict[tuple[str, int], list[tuple[float, float]]] = collections.defaultdict(list)
        cpu: dict[tuple[str, int], list[tuple[float, float]]] = collections.defaultdict(list)
        for workers in worker_counts:
            for round_number in range(args.rounds):
                order = ("bare", "inkwell") if round_number % 2 == 0 else ("inkwell", "bare")
                if args.no_stream_variant and workers == 1:
                    order = (*order, "inkwell-nostream")
                for which in order:
                    by_events, by_wall, (worker_ms, server_ms) = one_round(
                        conn, url, which, workers=workers, concurrency=args.concurrency, jobs=args.jobs
                    )
                    rates[(which, workers)].append((by_events, by_wall))
                    cpu[(which, workers)].append((worker_ms, server_ms))
                    print(f"  {which:8s} {workers} worker(s): {by_events:8.0f} jobs/s (events)  {by_wall:8.0f} jobs/s (wall)  "
                          f"CPU per job: worker {worker_ms:5.2f} ms, PostgreSQL {server_ms:5.2f} ms", flush=True)

        print("\nScale-out (median of rounds; jobs/s by events, wall in brackets):")
        print(f"  {'workers':>7} | {'bare':>16} | {'Inkwell':>16} | ratio")
        for workers in worker_counts:
            bare = p50([r[0] for r in rates[("bare", workers)]])
            ink = p50([r[0] for r in rates[("inkwell", workers)]])
            bare_wall = p50([r[1] for r in rates[("bare", workers)]])
            ink_wall = p50([r[1] for r in rates[("inkwell", workers)]])
            print(f"  {workers:>7} | {bare:7.0f} ({bare_wall:6.0f}) | {ink:7.0f} ({ink_wall:6.0f}) | {ink / bare:.2f}")
            figure(f"throughput_bare_{workers}w_c{args.concurrency}", bare, "jobs/s")
            figure(f"throughput_inkwell_{workers}w_c{args.concurrency}", ink, "jobs/s")
            figure(f"throughput_ratio_{workers}w_c{args.concurrency}", ink / bare, "x bare",
                   target="≥ 0.8" if workers == 1 else "")
            if (variant := rates.get(("inkwell-nostream", workers))):
                nostream = p50([r[0] for r in variant])
                figure(f"throughput_inkwell_nostream_{workers}w_c{args.concurrency}", nostream, "jobs/s",
                       extra=f"{nostream / bare:.2f} x bare (INKWELL_LLM_STREAM=false)")
            for which in ("bare", "inkwell", "inkwell-nostream"):
                if not cpu.get((which, workers)):
                    continue
                figure(f"cpu_per_job_{which}_{workers}w_worker", p50([c[0] for c in cpu[(which, workers)]]), "ms")
                figure(f"cpu_per_job_{which}_{workers}w_postgres", p50([c[1] for c in cpu[(which, workers)]]), "ms")

        if args.profile:
            profile = Path("/tmp") / f"inkwell-bench-profile-{time.time_ns()}.txt"
            one_round(conn, url, "inkwell", workers=1, concurrency=args.concurrency, jobs=args.jobs, profile=profile)
            summarize_profile(profile)


if __name__ == "__main__":
    main()
