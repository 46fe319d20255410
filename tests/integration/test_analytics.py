"""The analysts' interface: the `analytics` views, the read-only `inkwell_analyst` role, and the ten
example questions of docs/ANALYTICS.md, each answered as that role on generated history and checked
against the same answer computed in Python from the raw rows."""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from db.migrate import ANALYST_ROLE, allow_analyst_login, migrate
from db.requests import get_request
from queue_tasks.housekeeping import clean_up_queue
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "ANALYTICS.md"
ANALYST_PASSWORD = "analyst-test-password"
VIEWS = ["requests", "events", "daily_requests", "hourly_requests", "organizations", "users"]
UTC = dt.timezone.utc

pytestmark = pytest.mark.timeout(120)


def doc_queries() -> dict[str, str]:
    blocks = re.findall(r"```sql\n-- name: (\w+)\n(.*?)```", DOC.read_text(), flags=re.S)
    return {name: sql for name, sql in blocks}


@pytest.fixture
def analyst(database_url) -> psycopg.Connection:
    """A connection logged in as the analyst role, its login given by the migration setting."""
    with psycopg.connect(database_url) as owner:
        allow_analyst_login(owner, ANALYST_PASSWORD)
    with psycopg.connect(database_url, user=ANALYST_ROLE, password=ANALYST_PASSWORD, autocommit=True) as conn:
        yield conn


# --- generated history -------------------------------------------------------------------------

KINDS = ["titles"] * 6 + ["blog_post"] * 2 + ["website_analysis", "site_section"]
ERROR_CODES = ["rate_limited", "timeout", "invalid_output", "worker_lost", "model_unavailable"]


def generate_history(db: psycopg.Connection, *, count: int = 400, seed: int = 7) -> None:
    """Two organizations, three people, `count` requests over 90 days with their queue events.

    Written as history (triggers off), as housekeeping leaves it: request rows plus archived events.
    Creation times keep at least an hour from every "last N days" boundary the questions use.
    """
    rng = random.Random(seed)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        orgs = {
            name: db.execute(
                "INSERT INTO inkwell.organizations (name, credit_balance) VALUES (%s, 1000) RETURNING id", (name,)
            ).fetchone()[0]
            for name in ("Acme", "Globex")
        }
        people = []
        for username, org in (("ana", "Acme"), ("ben", "Acme"), ("cara", "Globex")):
            user_id = db.execute(
                "INSERT INTO inkwell.users (organization_id, username, display_name, role, password_hash) "
                "VALUES (%s, %s, %s, 'editor', 'not-a-real-hash') RETURNING id",
                (orgs[org], username, username.title()),
            ).fetchone()[0]
            people.append((user_id, orgs[org], username.title()))
        next_job = 1_000_000
        next_event = 5_000_000
        for index in range(count):
            kind = rng.choice(KINDS)
            system = kind == "titles" and rng.random() < 0.05
            user_id, org_id, name = (None, None, "system") if system else rng.choice(people[:2] * 3 + people[2:])
            created = now - dt.timedelta(days=rng.randrange(90), hours=rng.uniform(1, 23))
            created = created.replace(microsecond=rng.randrange(1000) * 1000)
            outcome = rng.choices(["succeeded", "failed", "cancelled", "queued", "running"], [80, 10, 6, 2, 2])[0]
            attempts = 0 if outcome == "queued" else rng.choices([1, 2, 3], [80, 15, 5])[0]
            if outcome == "cancelled" and rng.random() < 0.5:
                attempts = 0  # cancelled before it started
            wait = rng.uniform(0.005, 30) if attempts else None
            run = rng.uniform(0.5, 90) if attempts and outcome not in ("running",) else None
            started = created + dt.timedelta(seconds=wait) if wait is not None else None
            finished = (
                (started + dt.timedelta(seconds=run)) if run is not None
                else created + dt.timedelta(seconds=rng.uniform(1, 60)) if outcome == "cancelled"
                else None
            )
            credits = 0 if system else {"titles": 1, "blog_post": 5, "website_analysis": 3, "site_section": 2}[kind]
            refunded = finished if outcome in ("failed", "cancelled") and credits else None
            jobs = [next_job] if rng.random() < 0.9 else [next_job, next_job + 1]  # some were retried after a cancel
            next_job += len(jobs)
            db.execute(
                """
                INSERT INTO inkwell.requests (id, kind, input, status, requested_by, created_at, started_at, finished_at,
                    attempts, error_code, error_message, model_name, offline_model, tokens_used, credits,
                    credits_refunded_at, user_id, organization_id, job_id, previous_job_ids)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'test-model', false, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    uuid.UUID(int=rng.getrandbits(128), version=4), kind, Jsonb({"topic": f"topic {index}"}),
                    outcome, name, created, started, finished, attempts,
                    rng.choice(ERROR_CODES) if outcome == "failed" else None,
                    "it failed" if outcome == "failed" else None,
                    rng.randrange(200, 4000) if outcome == "succeeded" else None,
                    credits, refunded, user_id, org_id, jobs[-1], jobs[:-1],
                ),
            )
            events = [(jobs[0], "deferred", created)]
            if started is not None:
                events.append((jobs[-1], "started", started))
                end = finished or started + dt.timedelta(seconds=1)
                for retry in range(attempts - 1):
                    events.append((jobs[-1], "deferred_for_retry", started + (end - started) * (retry + 1) / attempts))
            if finished is not None:
                events.append((jobs[-1], outcome, finished))
            for job_id, event_type, at in events:
                db.execute(
                    "INSERT INTO inkwell.job_events_archive (id, job_id, type, at) VALUES (%s, %s, %s, %s)",
                    (next_event, job_id, event_type, at),
                )
                next_event += 1


def raw_requests(db: psycopg.Connection) -> list[dict]:
    """The oracle's input: the table rows themselves, read as the owner."""
    cur = db.execute(
        """
        SELECT r.*, u.username, o.name AS organization
          FROM inkwell.requests r
          LEFT JOIN inkwell.users u ON u.id = r.user_id
          LEFT JOIN inkwell.organizations o ON o.id = r.organization_id
        """
    )
    names = [c.name for c in cur.description]
    rows = [dict(zip(names, row)) for row in cur.fetchall()]
    for row in rows:
        row["outcome"] = row["status"] if row["status"] in ("succeeded", "failed", "cancelled") else None
        row["wait"] = (row["started_at"] - row["created_at"]).total_seconds() if row["started_at"] else None
        row["run"] = (
            (row["finished_at"] - row["started_at"]).total_seconds() if row["started_at"] and row["finished_at"] else None
        )
        row["spent"] = 0 if row["credits_refunded_at"] else row["credits"]
    return rows


def percentile_cont(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def pct(part: int, whole: int, places: str = "0.01") -> Decimal:
    return (Decimal(100) * part / Decimal(whole)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(UTC).date()


def ask(conn: psycopg.Connection, sql: str) -> tuple[dt.datetime, list[tuple]]:
    """Run a question as one transaction; returns its now() (what "last 7 days" meant) and the rows."""
    with conn.transaction():
        now = conn.execute("SELECT now()").fetchone()[0]
        return now, conn.execute(sql).fetchall()


# --- the role ----------------------------------------------------------------------------------


def test_analyst_reads_every_analytics_view(db, analyst):
    generate_history(db, count=20)
    for view in VIEWS:
        rows = analyst.execute(f"SELECT count(*) FROM analytics.{view}").fetchone()[0]
        assert rows > 0, f"analytics.{view} is empty for the analyst"
    assert analyst.execute("SELECT current_user").fetchone()[0] == ANALYST_ROLE


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM inkwell.requests",
        "SELECT password_hash FROM inkwell.users",
        "SELECT * FROM inkwell.users",
        "SELECT * FROM inkwell.organizations",
        "SELECT * FROM inkwell.audit_log",
        "SELECT * FROM inkwell.credit_ledger",
        "SELECT * FROM inkwell.schema_migrations",
        "SELECT * FROM procrastinate_jobs",
        "SELECT * FROM procrastinate_events",
        "SELECT * FROM procrastinate_workers",
    ],
)
def test_analyst_cannot_read_tables_behind_the_views(db, analyst, statement):
    generate_history(db, count=5)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute(statement)


def test_analyst_views_carry_no_credentials_or_results(analyst):
    columns = {
        row[0]
        for row in analyst.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics'"
        )
    }
    assert columns, "the analyst sees the analytics columns"
    assert not {"password_hash", "oidc_subject", "oidc_issuer", "result", "partial_text"} & columns


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM analytics.users",
        "UPDATE analytics.organizations SET credit_balance = 1000000",
        "CREATE TABLE analytics.mine (id int)",
        "CREATE TABLE public.mine (id int)",
    ],
)
def test_analyst_cannot_change_anything(db, analyst, statement):
    generate_history(db, count=5)
    with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
        analyst.execute(statement)
    assert db.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0] == 5
    assert db.execute("SELECT min(credit_balance) FROM inkwell.organizations").fetchone()[0] == 1000


def test_analyst_cannot_write_even_after_turning_read_only_off(db, analyst):
    generate_history(db, count=5)
    analyst.execute("SET default_transaction_read_only = off")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute("UPDATE analytics.users SET role = 'admin'")
    assert db.execute("SELECT count(*) FROM inkwell.users WHERE role = 'admin'").fetchone()[0] == 0


def test_the_password_setting_gives_the_role_a_login_hashed_on_the_client(database_url, db):
    can_login = db.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,)).fetchone()
    assert can_login is not None, "migration 0050 creates the analyst role"
    migrate(database_url, analyst_password=ANALYST_PASSWORD)
    assert db.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,)).fetchone()[0] is True
    stored = db.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (ANALYST_ROLE,)).fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$") and ANALYST_PASSWORD not in stored


# --- the views ---------------------------------------------------------------------------------


def test_request_view_timings_and_cost_match_the_rows(db, analyst):
    generate_history(db, count=60)
    expected = {row["id"]: row for row in raw_requests(db)}
    seen = analyst.execute(
        "SELECT request_id, outcome, wait_seconds, run_seconds, total_seconds, credits_spent, organization, username "
        "FROM analytics.requests"
    ).fetchall()
    assert len(seen) == len(expected)
    for request_id, outcome, wait, run, total, spent, organization, username in seen:
        row = expected[request_id]
        assert outcome == row["outcome"]
        assert wait == pytest.approx(row["wait"]) if row["wait"] is not None else wait is None
        assert run == pytest.approx(row["run"]) if row["run"] is not None else run is None
        if row["finished_at"]:
            assert total == pytest.approx((row["finished_at"] - row["created_at"]).total_seconds())
        assert spent == row["spent"]
        assert (organization, username) == (row["organization"], row["username"])


def test_history_in_analytics_outlives_the_queue_retention(db, analyst, start_worker):
    """A finished job removed from Procrastinate's tables by housekeeping keeps its request and its
    events in the analytics views."""
    request_id = submit_titles_request(db, TitlesInput(topic="kept for analysts"), requested_by="ana")
    start_worker()
    wait_for(lambda: get_request(db, request_id).status == "succeeded", timeout=30, message="the job to succeed")
    job_id = get_request(db, request_id).job_id
    events_before = analyst.execute(
        "SELECT type FROM analytics.events WHERE request_id = %s ORDER BY at, event_id", (request_id,)
    ).fetchall()
    assert [t for (t,) in events_before][:2] == ["deferred", "started"] and events_before[-1] == ("succeeded",)
    db.execute("UPDATE procrastinate_events SET at = at - interval '8 days' WHERE job_id = %s", (job_id,))
    housekeeping_job = clean_up_queue.configure(connection=db).defer(timestamp=int(time.time()))
    wait_for(
        lambda: db.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (housekeeping_job,)).fetchone()[0]
        == "succeeded",
        timeout=30, message="housekeeping to run",
    )
    assert db.execute("SELECT count(*) FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()[0] == 0
    row = analyst.execute(
        "SELECT outcome, run_seconds > 0 FROM analytics.requests WHERE request_id = %s", (request_id,)
    ).fetchone()
    assert row == ("succeeded", True)
    events_after = analyst.execute(
        "SELECT type FROM analytics.events WHERE request_id = %s ORDER BY at, event_id", (request_id,)
    ).fetchall()
    assert events_after == events_before


def test_events_follow_a_request_across_the_jobs_it_had(db, analyst):
    generate_history(db, count=80)
    retried = db.execute(
        "SELECT id, previous_job_ids[1], job_id FROM inkwell.requests WHERE cardinality(previous_job_ids) > 0 LIMIT 1"
    ).fetchone()
    assert retried, "the generator makes requests that were retried after a cancel"
    request_id, first_job, last_job = retried
    jobs = {job for (job,) in analyst.execute("SELECT job_id FROM analytics.events WHERE request_id = %s", (request_id,))}
    assert jobs == {first_job, last_job}


def test_rollups_add_up_to_the_requests(db, analyst):
    generate_history(db, count=200)
    rows = raw_requests(db)
    daily = analyst.execute(
        "SELECT sum(submitted), sum(succeeded), sum(failed), sum(cancelled), sum(unfinished), sum(credits_spent) "
        "FROM analytics.daily_requests"
    ).fetchone()
    hourly = analyst.execute(
        "SELECT sum(submitted), sum(succeeded), sum(failed), sum(cancelled), sum(unfinished), sum(credits_spent) "
        "FROM analytics.hourly_requests"
    ).fetchone()
    outcomes = Counter(row["outcome"] for row in rows)
    expected = (
        len(rows), outcomes["succeeded"], outcomes["failed"], outcomes["cancelled"], outcomes[None],
        sum(row["spent"] for row in rows),
    )
    assert tuple(int(v) for v in daily) == expected
    assert tuple(int(v) for v in hourly) == expected
    busiest_day = max(Counter((utc_day(r["created_at"]), r["kind"], r["organization_id"]) for r in rows).items(), key=lambda kv: kv[1])
    (day, kind, org), submitted = busiest_day
    got = analyst.execute(
        "SELECT submitted FROM analytics.daily_requests WHERE day = %s AND kind = %s "
        "AND organization_id IS NOT DISTINCT FROM %s",
        (day, kind, org),
    ).fetchone()
    assert got == (submitted,)


# --- the ten questions -------------------------------------------------------------------------


def test_the_documentation_has_ten_questions():
    assert len(doc_queries()) == 10


@pytest.fixture
def history(db, analyst):
    generate_history(db)
    return raw_requests(db)


def test_q1_throughput_per_day_per_kind(analyst, history):
    now, got = ask(analyst, doc_queries()["throughput_per_day_per_kind"])
    since = utc_day(now) - dt.timedelta(days=30)
    submitted, succeeded = Counter(), Counter()
    for row in history:
        key = (utc_day(row["created_at"]), row["kind"])
        if key[0] >= since:
            submitted[key] += 1
            succeeded[key] += row["outcome"] == "succeeded"
    expected = [(day, kind, submitted[(day, kind)], succeeded[(day, kind)]) for day, kind in sorted(submitted)]
    assert len(expected) > 10
    assert [(d, k, int(s), int(ok)) for d, k, s, ok in got] == expected


def test_q2_failure_rate_by_error_code(analyst, history):
    now, got = ask(analyst, doc_queries()["failure_rate_by_error_code"])
    recent = [row for row in history if row["created_at"] >= now - dt.timedelta(days=7)]
    finished = sum(1 for row in recent if row["outcome"])
    failures = Counter(row["error_code"] for row in recent if row["outcome"] == "failed")
    expected = sorted(((code, n, pct(n, finished)) for code, n in failures.items()), key=lambda t: (-t[1], t[0]))
    assert expected, "the generated week has failures"
    assert got == expected


def test_q3_wait_and_run_percentiles_per_kind(analyst, history):
    now, got = ask(analyst, doc_queries()["wait_and_run_percentiles_per_kind"])
    by_kind = defaultdict(list)
    for row in history:
        if row["started_at"] and row["finished_at"] and row["created_at"] >= now - dt.timedelta(days=7):
            by_kind[row["kind"]].append(row)
    assert by_kind
    assert [row[0] for row in got] == sorted(by_kind)
    for kind, finished, p50w, p95w, p50r, p95r in got:
        rows = by_kind[kind]
        waits, runs = [r["wait"] for r in rows], [r["run"] for r in rows]
        assert finished == len(rows)
        assert (p50w, p95w) == (pytest.approx(percentile_cont(waits, 0.5)), pytest.approx(percentile_cont(waits, 0.95)))
        assert (p50r, p95r) == (pytest.approx(percentile_cont(runs, 0.5)), pytest.approx(percentile_cont(runs, 0.95)))


def test_q4_cost_per_organization_per_month(analyst, history):
    _, got = ask(analyst, doc_queries()["cost_per_organization_per_month"])
    totals = defaultdict(lambda: [0, 0, 0])
    for row in history:
        if row["organization_id"] is None:
            continue
        month = utc_day(row["created_at"]).replace(day=1)
        entry = totals[(month, row["organization"])]
        entry[0] += 1
        entry[1] += row["spent"]
        entry[2] += row["tokens_used"] or 0
    expected = [(month, org, *values) for (month, org), values in sorted(totals.items())]
    assert [(m, o, int(n), int(c), int(t)) for m, o, n, c, t in got] == expected
    assert sum(row[3] for row in expected) > 0


def test_q5_top_requesters(analyst, history):
    now, got = ask(analyst, doc_queries()["top_requesters"])
    counts, succeeded = Counter(), Counter()
    for row in history:
        if row["created_at"] >= now - dt.timedelta(days=30):
            key = (row["username"] or row["requested_by"], row["organization"])
            counts[key] += 1
            succeeded[key] += row["outcome"] == "succeeded"
    expected = sorted(
        ((who, org, n, pct(succeeded[(who, org)], n, "0.1")) for (who, org), n in counts.items()),
        key=lambda t: (-t[2], t[0]),
    )[:10]
    assert got == expected
    assert got[0][0] in ("ana", "ben"), "the generator gives the two Acme people the most requests"


def test_q6_busiest_hours(analyst, history):
    now, got = ask(analyst, doc_queries()["busiest_hours"])
    since = now.astimezone(UTC).replace(tzinfo=None) - dt.timedelta(days=30)
    per_hour = Counter()
    for row in history:
        hour = row["created_at"].astimezone(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        if hour >= since:
            per_hour[hour.hour] += 1
    expected = sorted(
        ((hour, (Decimal(n) / Decimal(30)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) for hour, n in per_hour.items()),
        key=lambda t: (-t[1], t[0]),
    )[:5]
    assert got == expected


def test_q7_retried_successes_per_kind(analyst, history):
    _, got = ask(analyst, doc_queries()["retried_successes_per_kind"])
    by_kind = defaultdict(list)
    for row in history:
        if row["outcome"] == "succeeded":
            by_kind[row["kind"]].append(row["attempts"])
    expected = [
        (kind, len(a), sum(1 for x in a if x > 1), pct(sum(1 for x in a if x > 1), len(a), "0.1"), max(a))
        for kind, a in sorted(by_kind.items())
    ]
    assert got == expected
    assert any(row[2] for row in expected), "some successes needed a retry"


def test_q8_cancellation_rate_per_organization(analyst, history):
    _, got = ask(analyst, doc_queries()["cancellation_rate_per_organization"])
    finished, cancelled = Counter(), Counter()
    for row in history:
        if row["organization_id"] is not None:
            finished[row["organization"]] += row["outcome"] is not None
            cancelled[row["organization"]] += row["outcome"] == "cancelled"
    expected = sorted(
        ((org, finished[org], cancelled[org], pct(cancelled[org], finished[org], "0.1")) for org in finished),
        key=lambda t: (-t[3], t[0]),
    )
    assert got == expected


def test_q9_daily_p95_wait(analyst, history):
    now, got = ask(analyst, doc_queries()["daily_p95_wait"])
    since = utc_day(now) - dt.timedelta(days=14)
    waits = defaultdict(list)
    for row in history:
        if row["started_at"] and utc_day(row["created_at"]) >= since:
            waits[utc_day(row["created_at"])].append(row["wait"])
    assert [(day, n) for day, n, _ in got] == [(day, len(w)) for day, w in sorted(waits.items())]
    for day, _, p95 in got:
        assert p95 == pytest.approx(percentile_cont(waits[day], 0.95))


def test_q10_most_retried_requests(db, analyst, history):
    _, got = ask(analyst, doc_queries()["most_retried_requests"])
    events = defaultdict(list)
    job_to_request = {}
    for row in history:
        for job in [*row["previous_job_ids"], row["job_id"]]:
            job_to_request[job] = row
    for job_id, event_type, at in db.execute("SELECT job_id, type, at FROM inkwell.job_events_archive"):
        events[job_to_request[job_id]["id"]].append((event_type, at))
    expected = []
    for request_id, items in events.items():
        retries = sum(1 for t, _ in items if t == "deferred_for_retry")
        if retries:
            first_start = min(at for t, at in items if t == "started")
            last = max(at for _, at in items)
            kind = next(r["kind"] for r in history if r["id"] == request_id)
            expected.append((request_id, kind, retries, first_start, last, (last - first_start).total_seconds()))
    expected.sort(key=lambda t: (-t[2], t[0]))
    expected = expected[:10]
    assert expected, "the generator retries some requests"
    assert [row[:5] for row in got] == [row[:5] for row in expected]
    assert [row[5] for row in got] == pytest.approx([row[5] for row in expected])
