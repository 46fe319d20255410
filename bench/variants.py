"""PostgreSQL CPU per Inkwell model job under variants of the settings or the schema, side by side.

    python -m bench.variants --variant base --variant pool20=env:INKWELL_WORKER_POOL_SIZE=20 \\
        --variant notify_all=sql:path/to/file.sql [--rounds 3] [--jobs 1000] [--workers 2] [--concurrency 100]

Each round runs every variant once, the order rotating from round to round, each on a fresh
database copied from one migrated template (so no variant inherits another's rows, dead versions or
statistics). A variant is a name, optionally `=` and parts joined by `+`: `env:NAME=VALUE[,…]` (the
workers' environment), `sql:FILE` (statements run on its database after the copy, e.g. to put
back what a migration removed and see what it cost; bench/sql/ has such files) and `code:REV` (its
workers run the code of that git revision, checked out in a temporary worktree: a change to the
worker's code against the commit before it, in the same run; the schema stays this checkout's).
The mix is `bench.peers`'s: titles requests whose model call streams 20 pieces over `--seconds` from
the local OpenAI-compatible server, `--workers` processes at `--concurrency`. Printed per round and
variant: wall time, PostgreSQL CPU per job (all server processes, psutil) and worker CPU per job; at
the end each variant's PostgreSQL CPU per job over the first variant's, round by round (the same
machine load for both).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.common import (
    INKWELL_APP,
    INKWELL_QUEUE,
    ROOT,
    cpu_by_process,
    cpu_since,
    inkwell_env,
    machine_line,
    postgres_pids,
    registered_workers,
    start_worker,
    throwaway_database,
    wait_for_workers,
)
from tests.support import llm_server
from tests.support.llm_server import LLMTestServer, ok

llm_server._HTTPServer.request_queue_size = 1024  # as bench/peers.py: a real endpoint's backlog


@contextlib.contextmanager
def worktrees(variants: list[Variant]):
    """Check out each `code:` variant's revision in a temporary git worktree, removed after."""
    made = []
    try:
        for variant in variants:
            if variant.revision:
                folder = Path(tempfile.mkdtemp(prefix=f"inkwell-variant-{variant.name}-"))
                subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(folder), variant.revision],
                               cwd=ROOT, check=True)
                made.append(folder)
                variant.code_root = folder
        yield
    finally:
        for folder in made:
            subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False)


@dataclass
class Variant:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    sql: str = ""
    revision: str = ""
    code_root: Path = ROOT


def parse_variant(text: str) -> Variant:
    """name, or name=PART[+PART…] where a PART is env:NAME=VALUE[,NAME=VALUE…], sql:FILE or code:REV."""
    name, _, spec = text.partition("=")
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"variant name {name!r}: letters, digits and _ only")
    variant = Variant(name)
    for part in filter(None, spec.split("+")):
        kind, _, value = part.partition(":")
        if kind == "env":
            pairs = [pair.partition("=") for pair in value.split(",") if pair]
            if not pairs or any(not sep for _, sep, _ in pairs):
                raise argparse.ArgumentTypeError(f"variant {name}: env:NAME=VALUE[,NAME=VALUE…], got {value!r}")
            variant.env.update({k: v for k, _, v in pairs})
        elif kind == "sql":
            path = Path(value)
            if not path.is_file():
                raise argparse.ArgumentTypeError(f"variant {name}: no SQL file {value!r}")
            variant.sql += path.read_text() + "\n"
        elif kind == "code":
            found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{value}^{{commit}}"], cwd=ROOT,
                                   capture_output=True, text=True)
            if found.returncode != 0:
                raise argparse.ArgumentTypeError(f"variant {name}: no git revision {value!r}")
            variant.revision = found.stdout.strip()
        else:
            raise argparse.ArgumentTypeError(f"variant {name}: expected env:…, sql:… or code:…, got {part!r}")
    return variant


def one_round(admin: psycopg.Connection, url: str, variant: Variant, number: int, args, model_url: str) -> dict:
    database = f"variant_{number}"
    admin.execute(f"CREATE DATABASE {database} TEMPLATE variants_template")
    try:
        database_url = psycopg.conninfo.make_conninfo(url, dbname=database)
        with psycopg.connect(database_url, autocommit=True) as conn:
            if variant.sql:
                conn.execute(variant.sql)
            env = inkwell_env(database_url, INKWELL_LLM_BASE_URL=model_url, INKWELL_LLM_API_KEY="bench-key",
                              INKWELL_LLM_MODEL="inkwell-test-model", INKWELL_WORKER_CONCURRENCY=str(args.concurrency),
                              **variant.env)
            env["PYTHONPATH"] = str(variant.code_root)
            before = registered_workers(conn)
            workers = [start_worker(INKWELL_APP, env, concurrency=args.concurrency, queues=INKWELL_QUEUE,
                                    name=f"variant-{variant.name}-{number}-{i}", cwd=variant.code_root)
                       for i in range(args.workers)]
            try:
                wait_for_workers(conn, before + args.workers)
                time.sleep(0.5)
                from queue_tasks.models import TitlesInput
                from queue_tasks.submit import submit_requests

                server_pids = postgres_pids(conn)
                worker_pids = [w.process.pid for w in workers]
                cpu_server, cpu_workers = cpu_by_process(server_pids), cpu_by_process(worker_pids)
                load = os.getloadavg()[0]
                started = time.perf_counter()
                submit_requests(conn, "titles", [TitlesInput(topic=f"variant {variant.name} topic {i}")
                                                 for i in range(args.jobs)], requested_by="bench")
                while conn.execute("SELECT count(*) FROM inkwell.requests WHERE status = 'succeeded'").fetchone()[0] < args.jobs:
                    time.sleep(0.1)
                wall = time.perf_counter() - started
                postgres_ms = cpu_since(cpu_server, postgres_pids(conn)) * 1000 / args.jobs
                worker_ms = cpu_since(cpu_workers, worker_pids) * 1000 / args.jobs
            finally:
                for worker in workers:
                    worker.stop()
    finally:
        admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
    return {"wall": wall, "postgres_ms": postgres_ms, "worker_ms": worker_ms, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", dest="variants", type=parse_variant, action="append", required=True,
                        help="name[=env:NAME=VALUE,…+sql:FILE+code:REV]; the first is the one the others are compared with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=100, help="jobs at once per worker process")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long the model takes per answer")
    args = parser.parse_args()
    names = [v.name for v in args.variants]
    if len(set(names)) != len(names):
        parser.error(f"variant names must differ: {names}")

    results: dict[str, list[dict]] = {name: [] for name in names}
    behaviour = ok(delay_per_chunk=args.seconds / 20, chunks=20)
    with worktrees(args.variants), throwaway_database() as url, LLMTestServer(default_behaviour=behaviour) as model, \
            psycopg.connect(url, autocommit=True) as admin:
        print(machine_line(admin))
        for variant in args.variants:
            if variant.revision:
                print(f"variant {variant.name}: workers run revision {variant.revision[:12]}", flush=True)
        print(f"{args.jobs:,} model jobs ({args.seconds:g} s, 20 streamed pieces) per round and variant; "
              f"{args.workers} worker process(es) × concurrency {args.concurrency}; a fresh database each", flush=True)
        admin.execute(f"CREATE DATABASE variants_template TEMPLATE {admin.info.dbname}")
        number = 0
        for round_number in range(args.rounds):
            shift = round_number % len(args.variants)
            for variant in args.variants[shift:] + args.variants[:shift]:
                number += 1
                r = one_round(admin, url, variant, number, args, model.base_url)
                results[variant.name].append(r)
                print(f"  round {round_number + 1} {variant.name:12s} wall {r['wall']:6.2f} s  PostgreSQL "
                      f"{r['postgres_ms']:5.2f} ms/job  worker {r['worker_ms']:5.2f} ms/job  load {r['load']:.2f}",
                      flush=True)
    first = names[0]
    print(f"\nPostgreSQL CPU per job, median of rounds, and ÷ {first} round by round:")
    for name in names:
        ms = [r["postgres_ms"] for r in results[name]]
        ratios = [r["postgres_ms"] / b["postgres_ms"] for r, b in zip(results[name], results[first])]
        walls = [r["wall"] for r in results[name]]
        print(f"  {name:12s} {statistics.median(ms):5.2f} ms/job  ÷ {first}: {', '.join(f'{x:.2f}' for x in ratios)}"
              f"  wall median {statistics.median(walls):.2f} s", flush=True)
        print(f"FIGURE variants_{name}_postgres_ms_per_job = {statistics.median(ms):.3f} ms", flush=True)

if __name__ == "__main__":
    main()
