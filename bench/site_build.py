"""Fan-out benchmark: a site build of 40 sections against a model that answers in 1 s, one worker
at concurrency 20. Ideal: 40 / 20 rounds of 1 s = 2 s. Side by side, bare Procrastinate
(bench/bare_app.py): 40 jobs that only sleep 1 s, one worker at the same concurrency, same database.

    /tmp/probe/bin/python -m bench.site_build                     # from the repo root
    /tmp/probe/bin/python -m bench.site_build --sections 8 --concurrency 4 --latency 0.2

Everything is throwaway: its own embedded PostgreSQL (durable=False), the local test model server
(tests/support/llm_server.py, `ok(delay=latency)`, answers not streamed), real
`procrastinate worker` subprocesses.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import figure  # noqa: E402


def start_worker(app_path: str, env: dict[str, str], log: Path, *, concurrency: int, queue: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "procrastinate", "--app", app_path, "--log-level", "warning", "worker",
               "--concurrency", str(concurrency), "--queues", queue]
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for_worker(conn, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0]:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def site_definition(sections: int):
    from queue_tasks.site_build import TEMPLATES, site_definition_from

    per_route = 4
    routes = [list(range(start, min(sections, start + per_route))) for start in range(0, sections, per_route)]
    return site_definition_from(
        {
            "site": "Benchmark Bakery",
            "business": {"business_type": "bakery", "target_audience": "families", "brand_voice": "warm"},
            "routes": [
                {"path": f"/page-{r}", "sections": [{"template": TEMPLATES[s % len(TEMPLATES)], "name": f"s{s}"} for s in numbers]}
                for r, numbers in enumerate(routes)
            ],
        }
    )


def run_site_build(database_url: str, model_url: str, tmp: Path, args) -> float:
    import psycopg

    from db import sites
    from queue_tasks.site_build import submit_site_build

    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "INKWELL_LLM_BASE_URL": model_url,
           "INKWELL_LLM_API_KEY": "bench", "INKWELL_LLM_STREAM": "false", "INKWELL_WORKER_CONCURRENCY": str(args.concurrency)}
    with psycopg.connect(database_url, autocommit=True) as conn:
        worker = start_worker("queue_tasks.app", env, tmp / "inkwell-worker.log", concurrency=args.concurrency, queue="default")
        try:
            wait_for_worker(conn)
            started = time.monotonic()
            submitted = submit_site_build(conn, site_definition(args.sections), requested_by="bench")
            while True:
                batch = sites.get_batch(conn, submitted.batch_id)
                if not (batch.queued or batch.running):
                    break
                time.sleep(0.01)
            wall = time.monotonic() - started
            if batch.succeeded != args.sections:
                raise RuntimeError(f"only {batch.succeeded} of {args.sections} sections succeeded; see {tmp / 'inkwell-worker.log'}")
            median_run, last_start = conn.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),"
                "       extract(epoch FROM max(started_at) - min(created_at))"
                "  FROM inkwell.requests WHERE kind = 'site_section'"
            ).fetchone()
            figure("site_build_section_median_run", float(median_run), "s", extra=f"(model latency {args.latency:g} s)")
            figure("site_build_last_section_start", float(last_start), "s", extra="(after submit)")
            return wall
        finally:
            stop(worker)


def run_bare(database_url: str, tmp: Path, args) -> float:
    import psycopg

    # bench/bare_app.py reads DATABASE_URL when imported.
    os.environ["DATABASE_URL"] = database_url
    from bench import bare_app

    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM procrastinate_workers")
        worker = start_worker("bench.bare_app.app", env, tmp / "bare-worker.log", concurrency=args.concurrency, queue=bare_app.QUEUE)
        try:
            wait_for_worker(conn)
            with bare_app.app.open():
                started = time.monotonic()
                ids = bare_app.sleep.batch_defer(*({"seconds": args.latency} for _ in range(args.sections)))
            while conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s) AND status = 'succeeded'", (ids,)
            ).fetchone()[0] < args.sections:
                time.sleep(0.01)
            return time.monotonic() - started
        finally:
            stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds the model takes to answer")
    args = parser.parse_args()
    ideal = -(-args.sections // args.concurrency) * args.latency

    from db.embedded import EmbeddedPostgres
    from db.migrate import migrate
    from tests.support.llm_server import LLMTestServer, ok

    print(f"{args.sections} sections, model latency {args.latency:g} s, 1 worker at concurrency {args.concurrency}: "
          f"ideal {ideal:.2f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="inkwell-bench-") as folder:
        tmp = Path(folder)
        server = EmbeddedPostgres(tmp / "pgdata", durable=False)
        server.start()
        try:
            migrate(server.uri)
            with LLMTestServer(default_behaviour=ok(delay=args.latency)) as model:
                site_wall = run_site_build(server.uri, model.base_url, tmp, args)
            bare_wall = run_bare(server.uri, tmp, args)
        finally:
            server.stop()
    figure("site_build_ideal", ideal, "s")
    figure("site_build_inkwell_wall", site_wall, "s", target=f"a small multiple of {ideal:g} s")
    figure("site_build_inkwell_ratio", site_wall / ideal, "x ideal")
    figure("site_build_bare_wall", bare_wall, "s")
    figure("site_build_bare_ratio", bare_wall / ideal, "x ideal")


if __name__ == "__main__":
    main()
