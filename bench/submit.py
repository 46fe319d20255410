"""Submit: Inkwell's request-plus-job transaction vs bare Procrastinate defer, one at a time and in bulk.

    python -m bench.submit [--single 1000] [--bulk 10000] [--rounds 3]

One at a time: `submit_titles_request` on an autocommit connection (as the console does: one
transaction holding the request row and its job) vs bare `defer_async` through the bare App's own
connector, and bare `defer` on the same kind of connection (`configure(connection=conn)`).
Bulk: `submit_requests` with 10,000 topics (the CSV upload path, one transaction) vs bare
`batch_defer` of 10,000 jobs in one transaction. No worker runs: only the submit side is timed.
Rounds alternate the order, so both see the same machine load.

Fair sharing (migration 0045) counts the submitter's unfinished requests at every submission, so
a submit costs more the longer that submitter's backlog. Each one-at-a-time round is a new
requester (its backlog grows from 0 to `--single` within the round, as for a person submitting one
by one), the bulk rounds another; `submit_single_behind_bulk_backlog` then times single submits by
the bulk requester, behind everything the bulk rounds queued.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import time

import psycopg

from bench.common import figure, inkwell_env, machine_line, p50, throwaway_database


BULK_REQUESTER = "bench bulk"


def inkwell_single(conn: psycopg.Connection, count: int, requested_by: str) -> float:
    from queue_tasks.models import TitlesInput
    from queue_tasks.submit import submit_titles_request

    inputs = [TitlesInput(topic=f"single topic {i}", audience="gardeners", tone="warm") for i in range(count)]
    t = time.perf_counter()
    for data in inputs:
        submit_titles_request(conn, data, requested_by=requested_by)
    return count / (time.perf_counter() - t)


def bare_single_same_connection(conn: psycopg.Connection, count: int) -> float:
    from bench.bare_app import noop

    task = noop.configure(connection=conn)
    t = time.perf_counter()
    for _ in range(count):
        task.defer()
    return count / (time.perf_counter() - t)


def bare_single_async(url: str, count: int) -> float:
    from bench.bare_app import app, noop

    async def run() -> float:
        async with app.open_async():
            await noop.defer_async()  # the pool's first connection is not part of the figure
            t = time.perf_counter()
            for _ in range(count):
                await noop.defer_async()
            return count / (time.perf_counter() - t)

    return asyncio.run(run())


def inkwell_bulk(conn: psycopg.Connection, count: int) -> float:
    """Seconds for `count` topics through submit_requests, validation of the inputs included
    (the CSV path builds the TitlesInput models first)."""
    from queue_tasks.models import TitlesInput
    from queue_tasks.submit import submit_requests

    t = time.perf_counter()
    inputs = [TitlesInput(topic=f"bulk topic {i}", audience="gardeners", tone="warm") for i in range(count)]
    submit_requests(conn, "titles", inputs, requested_by=BULK_REQUESTER)
    return time.perf_counter() - t


def bare_bulk(conn: psycopg.Connection, count: int) -> float:
    from bench.bare_app import noop

    t = time.perf_counter()
    with conn.transaction():
        noop.configure(connection=conn).batch_defer(*({} for _ in range(count)))
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=1_000, help="requests per one-at-a-time round")
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with throwaway_database() as url, psycopg.connect(url, autocommit=True) as conn:
        print(machine_line(conn))
        inkwell_env(url)
        inkwell_single(conn, 5, "bench warm-up")  # imports and first-use costs out of the figures
        bare_single_same_connection(conn, 5)
        results: dict[str, list[float]] = collections.defaultdict(list)
        for round_number in range(args.rounds):
            steps = [
                ("inkwell single", lambda: inkwell_single(conn, args.single, f"bench single {round_number + 1}")),
                ("bare single defer_async", lambda: bare_single_async(url, args.single)),
                ("bare single same connection", lambda: bare_single_same_connection(conn, args.single)),
                ("inkwell bulk", lambda: inkwell_bulk(conn, args.bulk)),
                ("bare bulk", lambda: bare_bulk(conn, args.bulk)),
            ]
            if round_number % 2:
                steps.reverse()
            for name, step in steps:
                value = step()
                results[name].append(value)
                unit = "s" if "bulk" in name else "requests/s"
                print(f"  round {round_number + 1}: {name:28s} {value:10.3f} {unit}", flush=True)

        single = p50(results["inkwell single"])
        bare_async = p50(results["bare single defer_async"])
        bare_conn = p50(results["bare single same connection"])
        bulk_s = p50(results["inkwell bulk"])
        bare_bulk_s = p50(results["bare bulk"])
        print(f"\nMedians of {args.rounds} rounds:")
        figure("submit_single_inkwell", single, "requests/s")
        figure("submit_single_bare_defer_async", bare_async, "jobs/s")
        figure("submit_single_bare_defer_same_connection", bare_conn, "jobs/s")
        figure("submit_single_ratio_vs_defer_async", single / bare_async, "x bare", target="≥ 0.7")
        figure("submit_single_ratio_vs_same_connection", single / bare_conn, "x bare")
        figure("submit_bulk_inkwell_seconds", bulk_s, "s", target="≤ 1.5 s", extra=f"{args.bulk:,} topics, {args.bulk / bulk_s:,.0f}/s")
        figure("submit_bulk_bare_seconds", bare_bulk_s, "s", extra=f"{args.bulk / bare_bulk_s:,.0f}/s")
        figure("submit_bulk_ratio", bare_bulk_s / bulk_s, "x bare", target="≥ 0.5")
        backlog = conn.execute(
            "SELECT count(*) FROM inkwell.requests WHERE requested_by = %s AND status = 'queued'", (BULK_REQUESTER,)
        ).fetchone()[0]
        behind = inkwell_single(conn, max(5, args.single // 20), BULK_REQUESTER)
        figure("submit_single_behind_bulk_backlog", behind, "requests/s", extra=f"the submitter has {backlog:,} requests queued")
        print(f"load average at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
