"""Empty and refill the queue between rounds: does any round stall?

    python -m bench.refill [--rounds 20] [--jobs 1000] [--concurrency 100] [--seconds 1.0] [--which inkwell,bare]
                           [--explain-ms 20] [--after-only]

Long-lived workers (started once, as in production) drain `--jobs` jobs per round; between rounds
the finished jobs are deleted (what housekeeping does, only sooner), so the queue tables go from
thousands of rows to none and back, round after round. Inkwell jobs are titles requests answered by
the offline model in `--seconds`; bare jobs are `asyncio.sleep(seconds)` in a plain Procrastinate
App (bench/bare_app.py). Each round prints its wall time (commit → all done), PostgreSQL CPU per
job, the mean time of the fetch query (pg_stat_statements, nested statements tracked) and the queue
table's dead rows and last (auto)analyze; the end prints max / median of the wall times.

The server runs with pg_stat_statements and auto_explain (nested statements, `--explain-ms`): every
fetch slower than that has its plan written to the server log, and the slowest few are printed.
`--after-only` runs with what migration 0100 sets; without it the run first does a "before" pass
with that migration undone (sorting allowed in the fetch, autovacuum by fraction),
so both show side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import (
    ROOT,
    BARE_APP,
    BARE_QUEUE,
    INKWELL_APP,
    INKWELL_QUEUE,
    cpu_by_process,
    cpu_since,
    inkwell_env,
    machine_line,
    postgres_pids,
    registered_workers,
    start_worker,
    wait_for_workers,
    wait_until_finished,
)
from db.embedded import EmbeddedPostgres
from db.migrate import migrate

QUEUE_TABLES = ("procrastinate_jobs", "procrastinate_events", "inkwell.requests")


def start_server(folder: Path, explain_ms: int) -> tuple[EmbeddedPostgres, str]:
    server = EmbeddedPostgres(folder / "pgdata", durable=True)
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = pg_stat_statements, auto_explain")
        for name, value in {
            "pg_stat_statements.track": "all",  # statements inside functions: the fetch query
            "auto_explain.log_min_duration": f"{explain_ms}ms",
            "auto_explain.log_nested_statements": "on",
            "auto_explain.log_analyze": "on",
            "auto_explain.log_buffers": "on",
            "auto_explain.log_timing": "off",
        }.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    server.restart()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    migrate(url)
    return server, url


FIX = ROOT / "db" / "migrations" / "0100_fetch_plan.sql"


def set_fix(conn: psycopg.Connection, on: bool) -> None:
    """With `on`, what migration 0100 sets (its statements are idempotent); without, Procrastinate's
    defaults as they were before it: sorting allowed in the fetch, autovacuum by fraction."""
    if on:
        conn.execute(FIX.read_text())
        return
    conn.execute("ALTER FUNCTION inkwell.fetch_job_v2(character varying[], bigint) RESET enable_sort")
    for table in QUEUE_TABLES:
        conn.execute(f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
                     "autovacuum_analyze_scale_factor, autovacuum_analyze_threshold, "
                     "autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold)")


def defer(conn: psycopg.Connection, which: str, jobs: int, seconds: float, round_number: int) -> None:
    if which == "inkwell":
        from queue_tasks.models import TitlesInput
        from queue_tasks.submit import submit_requests

        submit_requests(conn, "titles", [TitlesInput(topic=f"refill {round_number} {i}") for i in range(jobs)],
                        requested_by="bench")
    else:
        from bench.bare_app import sleep

        with conn.transaction():
            sleep.configure(connection=conn).batch_defer(*({"seconds": seconds} for _ in range(jobs)))


def empty(conn: psycopg.Connection, which: str, queue: str) -> None:
    """Delete the finished jobs (their events go with them), as housekeeping does; Inkwell's
    requests go too, so every table the worker writes empties and refills."""
    if which == "inkwell":
        conn.execute("DELETE FROM inkwell.requests WHERE status IN ('succeeded', 'failed')")
    conn.execute("DELETE FROM procrastinate_jobs WHERE queue_name = %s AND status IN ('succeeded', 'failed')", (queue,))


def fetch_stats(conn: psycopg.Connection) -> tuple[int, float]:
    row = conn.execute(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) FROM pg_stat_statements "
        "WHERE query ILIKE 'WITH candidate AS%%'"
    ).fetchone()
    return int(row[0]), float(row[1])


def jobs_table_line(conn: psycopg.Connection) -> str:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count, "
        "greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables WHERE relid = 'procrastinate_jobs'::regclass"
    ).fetchone()
    return f"jobs table live {row[0]:>6} dead {row[1]:>6}, autovacuums {row[2]}, autoanalyzes {row[3]}"


def run_rounds(conn, url, which: str, *, rounds: int, jobs: int, concurrency: int, seconds: float, label: str):
    queue = INKWELL_QUEUE if which == "inkwell" else BARE_QUEUE
    app = INKWELL_APP if which == "inkwell" else BARE_APP
    env = inkwell_env(url, INKWELL_OFFLINE_MODEL_SECONDS=str(seconds), INKWELL_WORKER_CONCURRENCY=str(concurrency))
    before = registered_workers(conn)
    worker = start_worker(app, env, concurrency=concurrency, queues=queue, name=f"refill-{which}-{label}")
    walls: list[float] = []
    try:
        wait_for_workers(conn, before + 1)
        time.sleep(0.5)
        for round_number in range(1, rounds + 1):
            empty(conn, which, queue)
            calls0, fetch_ms0 = fetch_stats(conn)
            server_pids = postgres_pids(conn)
            cpu0 = cpu_by_process(server_pids)
            load = os.getloadavg()[0]
            defer(conn, which, jobs, seconds, round_number)
            committed = time.perf_counter()
            wait_until_finished(conn, queue, jobs, timeout=900)
            wall = time.perf_counter() - committed
            pg_ms = cpu_since(cpu0, postgres_pids(conn)) * 1000 / jobs
            calls1, fetch_ms1 = fetch_stats(conn)
            calls = max(1, calls1 - calls0)
            walls.append(wall)
            print(f"  {label:6s} {which:7s} round {round_number:2d}: {wall:6.2f} s  PostgreSQL {pg_ms:5.2f} ms/job  "
                  f"fetch {calls:5d} calls, mean {(fetch_ms1 - fetch_ms0) / calls:6.3f} ms  "
                  f"{jobs_table_line(conn)}  load {load:.2f}", flush=True)
    finally:
        worker.stop()
    empty(conn, which, queue)
    median = statistics.median(walls)
    print(f"FIGURE refill_{label}_{which}_max_over_median = {max(walls) / median:.3f} x  [target ≤ 1.3]  "
          f"median {median:.2f} s, max {max(walls):.2f} s (round {walls.index(max(walls)) + 1}), "
          f"min {min(walls):.2f} s, ideal {jobs / concurrency * seconds:.1f} s", flush=True)
    return walls


def slowest_plans(log_path: Path, since: int, count: int = 3) -> None:
    text = log_path.read_text(errors="replace")[since:]
    entries = re.split(r"\n(?=\S.*LOG:  duration: )", text)
    plans = []
    for entry in entries:
        match = re.search(r"LOG:  duration: ([\d.]+) ms  plan:", entry)
        if match and "candidate" in entry:
            plans.append((float(match.group(1)), entry))
    print(f"  auto_explain: {len(plans)} fetch plans over the threshold", flush=True)
    for duration, entry in sorted(plans, reverse=True)[:count]:
        plan = entry.split("plan:", 1)[1]
        plan = "\n".join(line for line in plan.splitlines() if line.startswith("\t") and line.strip())
        print(f"  --- fetch took {duration:.1f} ms ---\n{plan[:3000]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0, help="how long each job's model answer takes")
    parser.add_argument("--which", default="inkwell,bare")
    parser.add_argument("--explain-ms", type=int, default=20, help="auto_explain threshold")
    parser.add_argument("--after-only", action="store_true", help="no 'before' pass with migration 0100 undone")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="inkwell-bench-refill-"))
    server, url = start_server(folder, args.explain_ms)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            print(machine_line(conn))
            print(f"{args.rounds} rounds of {args.jobs:,} jobs, one worker at concurrency {args.concurrency}, "
                  f"{args.seconds:g} s per job; the queue emptied between rounds", flush=True)
            passes = [("after", False)] if args.after_only else [("before", True), ("after", False)]
            for label, reset in passes:
                set_fix(conn, on=not reset)
                for which in args.which.split(","):
                    offset = server.log_path.stat().st_size
                    run_rounds(conn, url, which, rounds=args.rounds, jobs=args.jobs, concurrency=args.concurrency,
                               seconds=args.seconds, label=label)
                    slowest_plans(server.log_path, offset)
    finally:
        server.stop()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
