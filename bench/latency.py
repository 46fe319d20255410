"""Latency: submit → task start with an idle listening worker, Inkwell vs bare; submit → visible on Live.

    python -m bench.latency [--samples 200] [--gap 0.05]

One Inkwell worker (queue `default`) and one bare worker (queue `bare`), both idle and listening,
run at once; submits alternate between them, one at a time, `--gap` seconds apart (plus jitter), so
each job finds its worker idle. Start latency is Procrastinate's `started` event time minus the job's
`deferred` event time, for both (the same clock and the same meaning: from the submitting
transaction's start to the fetching transaction's start, so the submit's own commit is included).
Visibility: a request submitted to a queue no worker serves, then `db.live.list_live_requests` polled
from another connection until it shows; the time is from just before the submit to the poll that
saw it (the page itself refreshes every second on top of this).
"""

from __future__ import annotations

import argparse
import os
import random
import time

import psycopg

from bench.common import (
    BARE_APP,
    BARE_QUEUE,
    INKWELL_APP,
    INKWELL_QUEUE,
    figure,
    inkwell_env,
    machine_line,
    p50,
    p95,
    registered_workers,
    start_worker,
    throwaway_database,
    wait_for_workers,
)

START_LATENCY_SQL = """
SELECT extract(epoch FROM s.at - d.at) * 1000
  FROM procrastinate_jobs AS j
  JOIN procrastinate_events AS d ON d.job_id = j.id AND d.type = 'deferred'
  JOIN procrastinate_events AS s ON s.job_id = j.id AND s.type = 'started'
 WHERE j.queue_name = %s AND j.task_name IN ('inkwell.generate_titles', 'bare.noop')
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="submits of each kind")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between submits")
    args = parser.parse_args()

    from bench.bare_app import noop
    from db.live import LiveFilters, list_live_requests
    from queue_tasks.models import TitlesInput
    from queue_tasks.submit import submit_requests, submit_titles_request

    with throwaway_database() as url, psycopg.connect(url, autocommit=True) as conn:
        print(machine_line(conn))
        env = inkwell_env(url)
        before = registered_workers(conn)
        workers = [
            start_worker(INKWELL_APP, env, concurrency=10, queues=INKWELL_QUEUE, name="latency-inkwell"),
            start_worker(BARE_APP, env, concurrency=10, queues=BARE_QUEUE, name="latency-bare"),
        ]
        try:
            wait_for_workers(conn, before + 2)
            time.sleep(1.0)
            bare_task = noop.configure(connection=conn)
            rng = random.Random(7)
            for i in range(args.samples):
                for which in (("inkwell", "bare") if i % 2 == 0 else ("bare", "inkwell")):
                    if which == "inkwell":
                        submit_titles_request(conn, TitlesInput(topic=f"latency topic {i}"), requested_by="bench")
                    else:
                        bare_task.defer()
                    time.sleep(args.gap * (0.5 + rng.random()))
            deadline = time.monotonic() + 60
            while conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE queue_name IN (%s, %s) AND status NOT IN ('succeeded', 'failed')",
                (INKWELL_QUEUE, BARE_QUEUE),
            ).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            for worker in workers:
                worker.stop()

        inkwell = [row[0] for row in conn.execute(START_LATENCY_SQL, (INKWELL_QUEUE,)).fetchall()]
        bare = [row[0] for row in conn.execute(START_LATENCY_SQL, (BARE_QUEUE,)).fetchall()]
        inkwell = [float(v) for v in inkwell]
        bare = [float(v) for v in bare]
        print(f"{len(inkwell)} Inkwell and {len(bare)} bare jobs, submitted alternately {args.gap * 1000:.0f} ms apart (±50 %)")
        figure("latency_start_inkwell_p50", p50(inkwell), "ms")
        figure("latency_start_inkwell_p95", p95(inkwell), "ms", target="≤ 25 ms", extra=f"max {max(inkwell):.1f}")
        figure("latency_start_bare_p50", p50(bare), "ms")
        figure("latency_start_bare_p95", p95(bare), "ms", extra=f"max {max(bare):.1f}")
        figure("latency_start_p95_ratio", p95(inkwell) / p95(bare), "x bare")

        # Visibility on the Live page: nobody serves this queue, so the request stays queued.
        visible = []
        with psycopg.connect(url, autocommit=True) as console:
            for i in range(max(5, args.samples // 10)):
                t = time.perf_counter()
                request_id = submit_requests(conn, "titles", [TitlesInput(topic=f"visible {i}")], requested_by="bench",
                                             queue="nobody-serves-this")[0]
                while request_id not in {r.id for r in list_live_requests(console, LiveFilters()).requests}:
                    if time.perf_counter() - t > 10:
                        raise RuntimeError("a submitted request did not show on the Live query in 10 s")
                visible.append((time.perf_counter() - t) * 1000)
        figure("latency_visible_on_live_p50", p50(visible), "ms")
        figure("latency_visible_on_live_p95", p95(visible), "ms", target="≤ 1000 ms (plus the page's 1 s refresh)")
        print(f"load average at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
