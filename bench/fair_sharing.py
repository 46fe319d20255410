"""Fair sharing: Ana queues a bulk batch of 5,000 titles; once it is under way Ben submits one request.
How long does Ben wait, beside how long the batch takes to drain?

Two rounds on the same database and workers:
  fair  Inkwell as it is: each submission's jobs get priority -(submitter's backlog + size) - seconds
        since 2026-01-01 (migration 0045), so Ben's single request is the next job a worker takes.
  fifo  The same, but Ben's job is given the batch's priority in his submit transaction: Procrastinate's
        first-come-first-served order, which is what one shared queue without priorities does.

    /tmp/probe/bin/python -m bench.fair_sharing                    # from the repo root
    /tmp/probe/bin/python -m bench.fair_sharing --jobs 500 --concurrency 10 --model-seconds 0.2

Everything is throwaway: its own durable PostgreSQL, the built-in offline model taking
`--model-seconds` per answer, real `procrastinate worker` subprocesses, signed-in users in two
organizations with credits.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    INKWELL_APP,
    INKWELL_QUEUE,
    figure,
    inkwell_env,
    machine_line,
    start_worker,
    throwaway_database,
    wait_for_workers,
)


@dataclass
class Round:
    submit_seconds: float  # Ana's bulk submission, one transaction
    single_wait: float  # Ben: submitted → started
    batch_started_before_single: int  # of Ana's jobs
    batch_drain: float  # Ana's batch: first start → last finish
    batch_wait_last: float  # Ana's last job: submitted → started


def make_people(conn: psycopg.Connection, credits: int):
    from db import credits as credit_accounts
    from db.people import acting_as, create_organization, create_user, ensure_first_admin

    admin, _ = ensure_first_admin(conn, username="admin", password="correct horse battery staple")
    with acting_as(conn, admin):
        people = []
        for organization, username in (("Acme", "ana"), ("Globex", "ben")):
            organization_id = create_organization(conn, organization)
            credit_accounts.top_up(conn, organization_id, credits, note="benchmark")
            people.append(create_user(
                conn, username=username, display_name=username.title(), role="editor", organization_id=organization_id,
                password=None, oidc_issuer="https://idp.example", oidc_subject=username,
            ))
    return people


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)
    return value


def count_started(conn: psycopg.Connection, request_ids: list[uuid.UUID]) -> int:
    return conn.execute(
        "SELECT count(*) FROM inkwell.requests WHERE id = ANY(%s) AND started_at IS NOT NULL", (request_ids,)
    ).fetchone()[0]


def run_round(conn: psycopg.Connection, ana, ben, args, *, fifo: bool, label: str) -> Round:
    from db.people import acting_as
    from queue_tasks.models import TitlesInput
    from queue_tasks.submit import submit_requests

    topics = [TitlesInput(topic=f"{label} bulk topic {i}") for i in range(args.jobs)]
    started = time.perf_counter()
    with acting_as(conn, ana):
        batch = submit_requests(conn, "titles", topics, requested_by=ana.display_name)
    submit_seconds = time.perf_counter() - started
    # The batch is under way: every worker slot is busy with it and the rest waits.
    wait_until(lambda: count_started(conn, batch) >= 2 * args.concurrency, 120, "the batch starting")

    batch_priority = conn.execute(
        "SELECT j.priority FROM procrastinate_jobs j JOIN inkwell.requests r ON r.job_id = j.id WHERE r.id = %s", (batch[0],)
    ).fetchone()[0]
    with acting_as(conn, ben):
        (single,) = submit_requests(conn, "titles", [TitlesInput(topic=f"{label} single topic")], requested_by=ben.display_name)
        if fifo:  # before it commits: no worker sees it at its own priority
            conn.execute("RESET ROLE")  # as the owner: the console role may not change a priority (0072)
            conn.execute(
                "UPDATE procrastinate_jobs SET priority = %s WHERE id = (SELECT job_id FROM inkwell.requests WHERE id = %s)",
                (batch_priority, single),
            )
    wait_until(lambda: count_started(conn, [single]), args.timeout, "Ben's request starting")
    wait_until(
        lambda: conn.execute(
            "SELECT count(*) = 0 FROM inkwell.requests WHERE id = ANY(%s) AND finished_at IS NULL", (batch + [single],)
        ).fetchone()[0],
        args.timeout, "the batch draining", interval=0.2,
    )
    failed = conn.execute(
        "SELECT count(*) FROM inkwell.requests WHERE id = ANY(%s) AND status <> 'succeeded'", (batch + [single],)
    ).fetchone()[0]
    if failed:
        raise RuntimeError(f"{failed} requests did not succeed")
    single_wait, single_started = conn.execute(
        "SELECT extract(epoch FROM started_at - created_at), started_at FROM inkwell.requests WHERE id = %s", (single,)
    ).fetchone()
    before, drain, last_wait = conn.execute(
        "SELECT count(*) FILTER (WHERE started_at < %s), extract(epoch FROM max(finished_at) - min(started_at)),"
        "       extract(epoch FROM max(started_at) - min(created_at))"
        "  FROM inkwell.requests WHERE id = ANY(%s)",
        (single_started, batch),
    ).fetchone()
    return Round(submit_seconds, float(single_wait), before, float(drain), float(last_wait))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5_000, help="Ana's bulk batch")
    parser.add_argument("--concurrency", type=int, default=20, help="one worker's concurrency")
    parser.add_argument("--model-seconds", type=float, default=0.2, help="seconds the offline model takes per answer")
    parser.add_argument("--timeout", type=float, default=1_200, help="seconds to wait for a round to drain")
    args = parser.parse_args()

    with throwaway_database() as url, psycopg.connect(url, autocommit=True) as conn:
        env = inkwell_env(url, INKWELL_OFFLINE_MODEL_SECONDS=str(args.model_seconds))
        print(machine_line(conn), flush=True)
        print(f"Ana: {args.jobs:,} titles at once; Ben: 1 title once {2 * args.concurrency} of Ana's have started. "
              f"1 worker at concurrency {args.concurrency}, offline model {args.model_seconds:g} s per answer.", flush=True)
        ana, ben = make_people(conn, credits=10 * args.jobs)
        worker = start_worker(INKWELL_APP, env, concurrency=args.concurrency, queues=INKWELL_QUEUE, name="fair-sharing")
        try:
            wait_for_workers(conn, 1)
            rounds = {}
            for label in ("fair", "fifo"):
                rounds[label] = run_round(conn, ana, ben, args, fifo=label == "fifo", label=label)
                r = rounds[label]
                print(f"{label}: Ben waited {r.single_wait:.2f} s; {r.batch_started_before_single:,} of Ana's "
                      f"{args.jobs:,} started before him; the batch drained in {r.batch_drain:.1f} s "
                      f"(submitted in {r.submit_seconds:.2f} s)", flush=True)
        finally:
            worker.stop()
    fair, fifo = rounds["fair"], rounds["fifo"]
    figure("fair_sharing_single_wait", fair.single_wait, "s", target="a few seconds",
           extra=f"(bulk batch of {args.jobs:,} queued ahead)")
    figure("fair_sharing_batch_drain", fair.batch_drain, "s")
    figure("fair_sharing_batch_jobs_started_before_single", fair.batch_started_before_single, "jobs")
    figure("fair_sharing_batch_last_start_after_submit", fair.batch_wait_last, "s")
    figure("fair_sharing_bulk_submit", fair.submit_seconds, "s", extra=f"({args.jobs:,} requests by a signed-in editor)")
    figure("fifo_single_wait", fifo.single_wait, "s", extra="(same, Ben's job at the batch's priority)")
    figure("fifo_batch_drain", fifo.batch_drain, "s")
    figure("fifo_batch_jobs_started_before_single", fifo.batch_started_before_single, "jobs")


if __name__ == "__main__":
    main()
