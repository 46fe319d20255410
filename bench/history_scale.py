"""History at scale: a million requests, then the console's reads timed one by one and under 20 sessions.

    python -m bench.history_scale [--rows 1000000] [--keep /tmp/inkwell-history-1m] [--sessions 20] [--load-seconds 20]

A generator (one SQL statement per table, `generate_series`) fills the database with requests of a
realistic mix — kinds, statuses, ~200 requesters with a skew, 90 days of timestamps, results of
1–2 KB — plus their Procrastinate jobs and three events per job, and 1,000 queued/running requests
for the Live page. Indexes are dropped for the load and rebuilt from their own definitions.

Then it times, with the functions the pages call (`db.history`, `db.overview`, `db.live`):
every History filter combination's first page (the page runs `history_page`, paints it, then
`count_history_up_to` as far as `count_limit`; both are timed, apart and together), later pages
reached through the keyset (`history_page` only: the page counts once per filter set), the Overview
figures, and the Live query; p50/p95 over repeated runs; EXPLAIN ANALYZE of the slowest; the Overview's
status counts checked against an exact count; then the same under N concurrent console sessions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import re
import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg

from bench.common import figure, machine_line, p50, p95, throwaway_database
from db.history import HistoryFilter, count_history_up_to, count_limit, history_page, page_query_params
from db.live import LiveFilters, list_live_requests
from db.overview import count_requests_by_status, overview_figures, recount_request_counts
from db.queries import QUERIES
from db.requests import list_recent_requests

OVERVIEW_REFRESH_SECONDS = 5  # app.py caches the Overview this long for every viewer
LIVE_ROWS = 1_000
STATEMENT_TIMEOUT_MS = 30_000

GENERATE_SQL = """
SET session_replication_role = replica;  -- a bulk load of consistent data: no per-row triggers
SELECT setseed(0.42);

CREATE TEMP TABLE gen AS
SELECT n,
       CASE WHEN n > %(rows)s - %(live)s THEN (CASE WHEN n %% 2 = 0 THEN 'running' ELSE 'queued' END)
            WHEN r_status < 0.86 THEN 'succeeded' WHEN r_status < 0.95 THEN 'failed' ELSE 'cancelled' END AS status,
       CASE WHEN r_kind < 0.70 THEN 'titles' WHEN r_kind < 0.85 THEN 'blog_post'
            WHEN r_kind < 0.95 THEN 'website_analysis' ELSE 'site_section' END AS kind,
       (ARRAY['Ana','Ben','Chloé','Dev','Eli','Fatima','Gus','Hana','Ivan','Jo','Kemal','Lena','Mo','Nia','Omar',
              'Pia','Quinn','Rui','Sara','Tom'])[1 + floor(power(random(), 2) * 20)::int]
         || ' from ' ||
       department AS requested_by,
       department,
       now() - interval '90 days' * ((%(rows)s - n)::float8 / %(rows)s) + random() * interval '5 seconds' AS created_at,
       random() * 3 AS wait_s,
       1 + random() * 20 AS run_s,
       (ARRAY['compost','balcony','kubernetes','sourdough','cycling','solar','privacy','pricing','onboarding','coffee',
              'remote','hiring','tax','vegan','python','gardening','budget','travel','running','podcast',
              'newsletter','email','security','analytics','retail','wedding','camping','yoga','invoices','crypto'])
         [1 + floor(random() * 30)::int] || ' ' ||
       (ARRAY['tips','for beginners','mistakes','in 2026','checklist','on a budget','for teams','myths',
              'case study','guide','at scale','for small shops','trends','basics','playbook'])[1 + floor(random() * 15)::int]
         || CASE WHEN n %% 20000 = 7 THEN ' in zanzibar' ELSE '' END AS topic
  FROM (SELECT n, random() AS r_status, random() AS r_kind,
               (ARRAY['Marketing','Sales','Support','Docs','Growth','Brand','Product','SEO','Social','Events'])
                 [1 + floor(power(random(), 1.5) * 10)::int] AS department
          FROM generate_series(1, %(rows)s) AS n) AS s;

INSERT INTO procrastinate_jobs (id, queue_name, task_name, args, status, attempts)
SELECT n, CASE WHEN n %% 10 = 0 THEN 'bulk' ELSE 'default' END, 'inkwell.generate_' || kind,
       jsonb_build_object('request_id', md5('request' || n)::uuid),
       (CASE status WHEN 'running' THEN 'doing' WHEN 'queued' THEN 'todo' ELSE status END)::procrastinate_job_status,
       CASE WHEN status = 'failed' THEN 3 WHEN status IN ('queued', 'cancelled') THEN 0 ELSE 1 END
  FROM gen;
SELECT setval('procrastinate_jobs_id_seq', %(rows)s);

INSERT INTO inkwell.requests (id, kind, input, status, progress, current_step, result, model_name, offline_model,
                              error_code, error_message, attempts, requested_by, queue_name, created_at,
                              started_at, finished_at, updated_at, job_id, organization_id, user_id)
SELECT md5('request' || n)::uuid, kind,
       jsonb_build_object('topic', topic, 'count', 10, 'audience', 'small business owners', 'tone', 'friendly'),
       status,
       CASE status WHEN 'succeeded' THEN 100 WHEN 'running' THEN 40 ELSE 0 END,
       CASE status WHEN 'succeeded' THEN 'Done' WHEN 'failed' THEN 'Failed' WHEN 'cancelled' THEN 'Cancelled'
                   WHEN 'running' THEN 'Generating titles…' ELSE 'Queued' END,
       CASE WHEN status <> 'succeeded' THEN NULL
            WHEN kind = 'titles' THEN jsonb_build_object(
                'titles', (SELECT jsonb_agg(initcap(topic) || ': ' || (ARRAY['what nobody tells you about','a practical look at',
                           'seven lessons from','the honest guide to','how we got better at','numbers behind',
                           'a week of','questions to ask before','the quiet cost of','small wins with'])[k]
                           || ' ' || topic || ' for teams that ship every week and still sleep well')
                             FROM generate_series(1, 10) AS k),
                'model', 'gpt-4o-mini', 'offline_model', false, 'tokens_used', 640 + n %% 200)
            ELSE jsonb_build_object(
                'title', initcap(topic), 'model', 'gpt-4o-mini', 'offline_model', false, 'tokens_used', 900 + n %% 300,
                'body', repeat('A plain paragraph about ' || topic || ' that reads like a draft. ', 20 + (n %% 10)))
       END,
       CASE WHEN status = 'succeeded' THEN 'gpt-4o-mini' END,
       CASE WHEN status = 'succeeded' THEN false END,
       CASE WHEN status = 'failed' THEN (ARRAY['rate_limited','model_timeout','invalid_model_output','model_server_error'])[1 + n %% 4] END,
       CASE WHEN status = 'failed' THEN 'The model endpoint failed after 3 attempts.' END,
       CASE WHEN status = 'failed' THEN 3 WHEN status IN ('queued', 'cancelled') THEN 0 ELSE 1 END,
       requested_by, CASE WHEN n %% 10 = 0 THEN 'bulk' ELSE 'default' END,
       created_at,
       CASE WHEN status IN ('succeeded', 'failed', 'running') THEN created_at + wait_s * interval '1 second' END,
       CASE WHEN status IN ('succeeded', 'failed') THEN created_at + (wait_s + run_s) * interval '1 second'
            WHEN status = 'cancelled' THEN created_at + wait_s * interval '1 second' END,
       created_at + (wait_s + run_s) * interval '1 second',
       n, editor.organization_id, editor.id
  FROM gen
  JOIN (SELECT username, id, organization_id FROM inkwell.users) AS editor
    ON editor.username = 'editor-' || lower(gen.department);

INSERT INTO procrastinate_events (job_id, type, at)
SELECT n, 'deferred'::procrastinate_job_event_type, created_at FROM gen
UNION ALL
SELECT n, 'started'::procrastinate_job_event_type, created_at + wait_s * interval '1 second' FROM gen WHERE status IN ('succeeded', 'failed', 'running')
UNION ALL
SELECT n, (CASE status WHEN 'cancelled' THEN 'cancelled' ELSE status END)::procrastinate_job_event_type,
       created_at + (wait_s + CASE WHEN status = 'cancelled' THEN 0 ELSE run_s END) * interval '1 second'
  FROM gen WHERE status IN ('succeeded', 'failed', 'cancelled');
DROP TABLE gen;
"""


# --- filling the database ---------------------------------------------------------------------------------


def generate(conn: psycopg.Connection, rows: int) -> None:
    indexes = conn.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid)
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indrelid IN ('inkwell.requests'::regclass, 'procrastinate_events'::regclass)
           AND NOT x.indisprimary AND NOT x.indisunique
        """
    ).fetchall()
    started = time.monotonic()
    # One organization per department, with one editor each, and one operator: History is read as them.
    conn.execute(
        """
        WITH departments(name) AS (
            SELECT unnest(ARRAY['Marketing','Sales','Support','Docs','Growth','Brand','Product','SEO','Social','Events'])),
        organizations AS (INSERT INTO inkwell.organizations (name) SELECT name FROM departments RETURNING id, name)
        INSERT INTO inkwell.users (organization_id, username, display_name, role)
        SELECT id, 'editor-' || lower(name), 'Editor of ' || name, 'editor' FROM organizations
        UNION ALL
        SELECT id, 'operator', 'Operator', 'operator' FROM organizations WHERE name = 'Sales'
        """
    )
    for name, _ in indexes:
        schema = "inkwell." if name.startswith("requests_") else ""
        conn.execute(f"DROP INDEX {schema}{name}")
    conn.execute("SET maintenance_work_mem = '512MB'")
    # The statement text holds only integers we format ourselves; %(name)s placeholders are bound.
    for statement in _statements(GENERATE_SQL):
        conn.execute(statement, {"rows": rows, "live": LIVE_ROWS})
    loaded = time.monotonic()
    print(f"  loaded {rows:,} requests, jobs and events in {loaded - started:.1f} s; rebuilding {len(indexes)} indexes", flush=True)
    for name, definition in indexes:
        t = time.monotonic()
        conn.execute(definition)
        print(f"    {name}: {time.monotonic() - t:.1f} s", flush=True)
    conn.execute("SET session_replication_role = DEFAULT")
    t = time.monotonic()
    days = recount_request_counts(conn)  # the load ran without triggers: count the rollup's days afresh
    print(f"    request counts rolled up: {days} days in {time.monotonic() - t:.1f} s", flush=True)
    conn.execute("VACUUM ANALYZE inkwell.requests")
    conn.execute("VACUUM ANALYZE procrastinate_jobs")
    conn.execute("VACUUM ANALYZE procrastinate_events")
    size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('inkwell.requests'))").fetchone()[0]
    print(f"  generated in {time.monotonic() - started:.1f} s; inkwell.requests with indexes: {size}", flush=True)


def _statements(script: str) -> list[str]:
    # Split on semicolons at line ends (none occur inside the statements above).
    parts = re.split(r";\s*(?:--[^\n]*)?\n", script)
    return [p.strip() for p in parts if p.strip()]


# --- what the pages read ----------------------------------------------------------------------------------


def history_filters(now: dt.datetime) -> list[tuple[str, HistoryFilter]]:
    statuses = {"finished": ("succeeded", "failed", "cancelled"), "failed": ("failed",), "running": ("queued", "running")}
    kinds = {"any": None, "titles": "titles", "site_section": "site_section"}
    requesters = {"anyone": None, "Nia": "Nia from Docs"}
    dates = {
        "any time": (None, None),
        "last 7 days": (now - dt.timedelta(days=7), None),
        "a week 60 days ago": (now - dt.timedelta(days=60), now - dt.timedelta(days=53)),
    }
    texts = {"no text": None, "common 'kubernetes'": "kubernetes", "rare 'zanzibar'": "zanzibar"}
    combos = []
    for (s, st), (k, kv), (r, rv), (d, (d0, d1)), (t, tv) in itertools.product(
        statuses.items(), kinds.items(), requesters.items(), dates.items(), texts.items()
    ):
        combos.append((
            f"{s}/{k}/{r}/{d}/{t}",
            HistoryFilter(statuses=st, kind=kv, requester=rv, submitted_from=d0, submitted_before=d1, text=tv),
        ))
    return combos


def count_matches(conn: psycopg.Connection, filters: HistoryFilter) -> int:
    """What pages/3_History.py counts once per filter set, after painting the page."""
    return count_history_up_to(conn, filters, count_limit(filters) + 1)


def load_history_page(conn: psycopg.Connection, filters: HistoryFilter, after=None):
    """What pages/3_History.py runs for a first page: the rows, then the capped count."""
    page = history_page(conn, filters, after=after)
    count_matches(conn, filters)
    return page


def timed_first_page(conn: psycopg.Connection, filters: HistoryFilter) -> tuple[float, float]:
    """Milliseconds of the first paint (the rows) and of the capped count that follows it."""
    t = time.perf_counter()
    history_page(conn, filters)
    painted = time.perf_counter()
    count_matches(conn, filters)
    return (painted - t) * 1000, (time.perf_counter() - painted) * 1000


def timed(function, *args, **kwargs) -> float:
    t = time.perf_counter()
    function(*args, **kwargs)
    return (time.perf_counter() - t) * 1000


def overview(conn: psycopg.Connection):
    return overview_figures(conn, stale_after_seconds=30, always_listed_queues=["default"])


def explain(conn: psycopg.Connection, query: str, params: dict) -> str:
    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params, prepare=False).fetchall()
    return "\n".join("    " + r[0] for r in rows)


def measure_alone(conn: psycopg.Connection, repeats: int) -> dict[str, list[float]]:
    now = dt.datetime.now(dt.timezone.utc)
    combos = history_filters(now)
    timings: dict[str, list[float]] = defaultdict(list)
    per_combo: dict[str, list[float]] = defaultdict(list)
    per_combo_paint: dict[str, list[float]] = defaultdict(list)
    per_combo_count: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for name, filters in combos:
            paint_ms, count_ms = timed_first_page(conn, filters)
            per_combo[name].append(paint_ms + count_ms)
            per_combo_paint[name].append(paint_ms)
            per_combo_count[name].append(count_ms)
            timings["history first page (page + capped count)"].append(paint_ms + count_ms)
            timings["history first paint (page rows)"].append(paint_ms)
            timings["history capped count (after the paint)"].append(count_ms)
    worst = sorted(per_combo.items(), key=lambda kv: p50(kv[1]), reverse=True)
    print(f"\nHistory, first page of {len(combos)} filter combinations × {repeats} runs "
          f"(ms, page + count p50 / max = rows p50 + count p50), slowest 12:")
    for name, values in worst[:12]:
        print(f"  {p50(values):9.1f} / {max(values):9.1f} = {p50(per_combo_paint[name]):7.1f} + {p50(per_combo_count[name]):7.1f}  {name}")
    met = sum(1 for _, v in per_combo.items() if p95(v) <= 50)
    met_paint = sum(1 for _, v in per_combo_paint.items() if p95(v) <= 50)
    print(f"  combinations with p95 ≤ 50 ms: page + count {met} of {len(per_combo)}; rows alone {met_paint} of {len(per_combo)}")
    for label, values in (("page + count", per_combo), ("rows alone", per_combo_paint)):
        over = [name for name, v in values.items() if p95(v) > 50]
        common = sum(1 for name in over if name.endswith("common 'kubernetes'"))
        print(f"  over 50 ms ({label}): {common} with the common word, {len(over) - common} without"
              + "".join(f"\n    {name}: p95 {p95(values[name]):.1f}" for name in over if not name.endswith("common 'kubernetes'")))

    # Later pages: walk the keyset the way Older does (the rows only: the count is kept), timing every page.
    for name, filters in [combos[0], *(c for c in combos if c[0] in (
        "finished/titles/Nia/any time/no text", "failed/any/anyone/any time/no text",
        "finished/any/anyone/any time/common 'kubernetes'", "failed/titles/anyone/any time/common 'kubernetes'",
        "finished/site_section/anyone/any time/no text",
    ))]:
        after = None
        page_times = []
        for page_number in range(1, 21):
            t = time.perf_counter()
            page = history_page(conn, filters, after=after)
            page_times.append((time.perf_counter() - t) * 1000)
            if not page.has_older:
                break
            after = page.rows[-1].page_key
        timings["history later pages (2–20)"].extend(page_times[1:])
        print(f"  pages 1–{len(page_times)} of {name}: p50 {p50(page_times):.1f} ms, max {max(page_times):.1f} ms")

    # Overview, in parts and whole (the console computes it once per refresh and caches it).
    from db import overview as ov
    from db.queues import list_workers, queue_summaries

    parts = {
        "count_requests_by_status": lambda: ov.count_requests_by_status(conn),
        "queue_summaries": lambda: queue_summaries(conn, ["default"]),
        "finished_per_interval minute/1h": lambda: ov.finished_per_interval(conn, "minute", ov.LAST_HOUR),
        "finished_per_interval hour/24h": lambda: ov.finished_per_interval(conn, "hour", ov.LAST_DAY),
        "wait_and_run_times": lambda: ov.wait_and_run_times(conn),
        "failures_by_error_code": lambda: ov.failures_by_error_code(conn),
        "list_workers": lambda: list_workers(conn, 30),
    }
    print("\nOverview parts (ms, p50 / p95):")
    for part, call in parts.items():
        values = [timed(call) for _ in range(repeats * 3)]
        print(f"  {p50(values):9.1f} / {p95(values):9.1f}  {part}")
    for _ in range(repeats * 3):
        timings["overview (all figures)"].append(timed(overview, conn))
    exact = dict(conn.execute("SELECT status, count(*) FROM inkwell.requests GROUP BY status").fetchall())
    shown = count_requests_by_status(conn)
    print(f"  requests by status, rollup + live {'=' if shown == exact else '≠'} exact count: {shown}"
          + ("" if shown == exact else f" vs {exact}"))
    days_live = conn.execute(
        "SELECT counted_before, (SELECT count(*) FROM inkwell.requests WHERE created_at >= inkwell.utc_day_start(counted_before))"
        "  FROM inkwell.request_counts_rollup"
    ).fetchone()
    print(f"  rolled up before {days_live[0]}; counted live: {days_live[1]:,} requests")
    # The daily roll-up of one day, as the periodic task runs it after midnight: writers wait this long.
    conn.execute("UPDATE inkwell.request_counts_rollup SET counted_before = counted_before - 1")
    with conn.transaction():
        t = time.perf_counter()
        conn.execute(QUERIES["roll_up_request_counts"])
        print(f"  roll-up of one day (inkwell.requests locked against writes meanwhile): {(time.perf_counter() - t) * 1000:.1f} ms")

    # Live: the page's default view and a narrowed one, plus the home page's latest requests.
    for _ in range(repeats * 10):
        timings["live (all waiting/running)"].append(timed(list_live_requests, conn, LiveFilters()))
        timings["live (running, one requester)"].append(
            timed(list_live_requests, conn, LiveFilters(statuses=("running",), requested_by="Ana from Marketing"))
        )
        timings["home: latest 20 requests"].append(timed(list_recent_requests, conn, 20))

    slowest_name, slowest_values = worst[0]
    slowest = dict(combos)[slowest_name]
    print(f"\nEXPLAIN ANALYZE of the slowest History combination ({slowest_name}):")
    print("  history_page:")
    print(explain(conn, QUERIES["history_page"], page_query_params(slowest, None, 51)))
    print("  count_history_up_to:")
    print(explain(conn, QUERIES["count_history_up_to"], {**slowest.sql_params(), "limit": count_limit(slowest) + 1}))
    print("\nEXPLAIN ANALYZE count_requests_by_status (Overview):")
    print(explain(conn, QUERIES["count_requests_by_status"], {}))
    return timings


def measure_roles(conn: psycopg.Connection, repeats: int) -> None:
    """History's first page read through a console session (row-level security on): an operator
    (every request), the editor of the largest organization with the organization passed as an
    explicit filter (what pages/3_History.py does), and the same editor without it (row-level
    security alone). Same data, same run, every filter combination."""
    from db.people import acting_as, start_session

    row = conn.execute(
        """SELECT u.id, o.id, o.name, count(*) FROM inkwell.users AS u JOIN inkwell.organizations AS o ON o.id = u.organization_id
             JOIN inkwell.requests AS r ON r.organization_id = o.id
            WHERE u.role = 'editor' GROUP BY u.id, o.id ORDER BY count(*) DESC LIMIT 1"""
    ).fetchone()
    operator = conn.execute("SELECT id FROM inkwell.users WHERE role = 'operator'").fetchone()
    if row is None or operator is None:
        print("\nEditor vs operator: no organizations in this database (generated before they were): regenerate it.")
        return
    editor_id, organization_id, organization, rows = row
    tokens = {"operator": start_session(conn, operator[0]), "editor": start_session(conn, editor_id)}
    combos = history_filters(dt.datetime.now(dt.timezone.utc))
    readers = {
        "operator": ("operator", None),
        "editor, organization filter": ("editor", organization_id),
        "editor, row-level security alone": ("editor", None),
    }
    first_page: dict[str, list[float]] = defaultdict(list)
    paint: dict[str, list[float]] = defaultdict(list)
    count: dict[str, list[float]] = defaultdict(list)
    per_combo: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _ in range(repeats):
        for reader, (who, explicit) in readers.items():
            for name, filters in combos:
                with acting_as(conn, tokens[who]):
                    conn.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                    paint_ms, count_ms = timed_first_page(conn, filters.model_copy(update={"organization_id": explicit}))
                first_page[reader].append(paint_ms + count_ms)
                paint[reader].append(paint_ms)
                count[reader].append(count_ms)
                per_combo[reader, name].append(paint_ms + count_ms)
    print(f"\nEditor vs operator, History first page through a console session (row-level security on), "
          f"{len(combos)} combinations × {repeats}; the editor's organization {organization} has {rows:,} requests (ms, p50 / p95):")
    base = first_page["operator"]
    for reader in readers:
        print(f"  {reader:34s} page + count {p50(first_page[reader]):8.1f} / {p95(first_page[reader]):8.1f}"
              f"   rows {p50(paint[reader]):7.1f} / {p95(paint[reader]):7.1f}"
              f"   count {p50(count[reader]):7.1f} / {p95(count[reader]):7.1f}"
              f"   × operator (p50, p95): {p50(first_page[reader]) / p50(base):.2f}, {p95(first_page[reader]) / p95(base):.2f}")
        slug = re.sub(r"[^a-z0-9]+", "_", reader).strip("_")
        figure(f"history_first_page_{slug}_p50", p50(first_page[reader]), "ms")
        figure(f"history_first_page_{slug}_p95", p95(first_page[reader]), "ms")
    for reader in readers:
        slowest = sorted(((p50(v), name) for (r, name), v in per_combo.items() if r == reader), reverse=True)[:6]
        over = sum(1 for (r, _), v in per_combo.items() if r == reader and p50(v) > 50)
        print(f"  {reader}: {over} of {len(combos)} combinations over 50 ms (p50); slowest: "
              + "; ".join(f"{name} {ms:.0f}" for ms, name in slowest))
    worst_name = max(((p50(v), name) for (r, name), v in per_combo.items() if r == "editor, organization filter"))[1]
    worst = dict(combos)[worst_name].model_copy(update={"organization_id": organization_id})
    with acting_as(conn, tokens["editor"]):
        print(f"  EXPLAIN ANALYZE, editor with the organization filter, {worst_name}:")
        print(explain(conn, QUERIES["history_page"], page_query_params(worst, None, 51)))


def measure_under_load(url: str, sessions: int, seconds: float) -> dict[str, list[float]]:
    """`sessions` console sessions, each refreshing every second: its Live list and its History page
    (a filter combination of its own); one Overview refresh per OVERVIEW_REFRESH_SECONDS, as the console's cache does."""
    now = dt.datetime.now(dt.timezone.utc)
    combos = history_filters(now)
    timings: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    errors: list[BaseException] = []

    def session(number: int) -> None:
        rng = random.Random(number)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
                time.sleep(rng.random())
                while time.monotonic() < stop:
                    tick = time.monotonic()
                    name, filters = combos[rng.randrange(len(combos))]
                    paint_ms, count_ms = timed_first_page(conn, filters)
                    results = [
                        ("history first page (page + capped count)", paint_ms + count_ms),
                        ("history first paint (page rows)", paint_ms),
                        ("live (all waiting/running)", timed(list_live_requests, conn, LiveFilters())),
                        ("home: latest 20 requests", timed(list_recent_requests, conn, 20)),
                    ]
                    if number == 0 and int(tick) % OVERVIEW_REFRESH_SECONDS == 0:
                        results.append(("overview (all figures)", timed(overview, conn)))
                    with lock:
                        for key, ms in results:
                            timings[key].append(ms)
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        except BaseException as error:  # reported after the run
            errors.append(error)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return timings


TARGETS = {
    "history first page (page + capped count)": 50,
    "history first paint (page rows)": 50,
    "history later pages (2–20)": 50,
    "overview (all figures)": 200,
    "live (all waiting/running)": 20,
    "live (running, one requester)": 20,
}


def report(label: str, timings: dict[str, list[float]]) -> None:
    print(f"\n{label} (ms):")
    for key, values in timings.items():
        target = TARGETS.get(key)
        slug = re.sub(r"[^a-z0-9]+", "_", f"{label} {key}".lower()).strip("_")
        figure(f"{slug}_p50", p50(values), "ms")
        figure(f"{slug}_p95", p95(values), "ms", target=f"p95 ≤ {target} ms" if target else "",
               extra=f"n={len(values)} max={max(values):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--load-seconds", type=float, default=20)
    parser.add_argument("--keep", help="data folder to keep (and reuse on the next run: generation is skipped)")
    args = parser.parse_args()
    reuse = bool(args.keep) and (Path(args.keep) / "pgdata" / "PG_VERSION").exists()
    with throwaway_database(args.keep) as url, psycopg.connect(url, autocommit=True) as conn:
        print(machine_line(conn))
        existing = conn.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0]
        if reuse and existing:
            print(f"reusing {existing:,} requests in {args.keep}")
        else:
            print(f"generating {args.rows:,} requests …", flush=True)
            generate(conn, args.rows)
        counts = dict(conn.execute("SELECT status, count(*) FROM inkwell.requests GROUP BY 1").fetchall())
        print("requests by status:", counts)
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        # Warm the cache once, as a console that has been running would be.
        for _, filters in history_filters(dt.datetime.now(dt.timezone.utc)):
            load_history_page(conn, filters)
        overview(conn)
        report("alone", measure_alone(conn, args.repeats))
        measure_roles(conn, args.repeats)
        print(f"\n{args.sessions} concurrent console sessions for {args.load_seconds:.0f} s …", flush=True)
        report(f"{args.sessions} sessions", measure_under_load(url, args.sessions, args.load_seconds))
        # The machine is shared: the load says how much of the 2 cores these figures had.
        print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
