"""Chaos suite: N mixed jobs through real workers while workers are killed, PostgreSQL restarts,
a worker is stopped gracefully and the model endpoint misbehaves; then SQL proves that nothing
was lost and nothing doubled.

    /tmp/probe/bin/python -m bench.chaos                       # 1,000 jobs, 2 workers
    /tmp/probe/bin/python -m bench.chaos --jobs 60 --fault-rate 0.2 --seed 7

Everything is throwaway: its own embedded PostgreSQL (durable), the local OpenAI-compatible server
(tests/support/llm_server.py) with random fault injection, real `procrastinate worker` subprocesses.
The jobs are submitted as the console submits them (queue_tasks.submit.submit_requests,
queue_tasks.site_build.submit_site_build): titles, blog posts (some with an image, queued by the
post's job) and site-build sections (several builds of the same sites, so entities get versions).

While they run: a random worker is SIGKILLed every few seconds and replaced; PostgreSQL is
restarted once (fast shutdown, started again on the same data folder and port); one worker gets
SIGTERM (graceful shutdown); a few requests are cancelled; the model endpoint goes down for
`outage_seconds` (connection refused) while `outage_jobs` more titles requests are submitted; an
abort notification is forged as the read-only analyst role for every running job; the model server
injects faults, stream cuts included. Any worker that exits on its own (the database went away under
it) is replaced too. Then the verification (`verify`) reads the database and the model server's own
per-request log (each call's X-Inkwell-Request-Id and outcome), and the table is printed. Pass:
nothing lost, nothing duplicated, every failure has an error code, no request used more than the
attempt budget (one more for a job handed back by the SIGTERMed worker), every succeeded request's
effect (post, entity version, image) is stored, no request's model was called after its result was
stored, no request failed with a result, each failed request's code matches the model server's
record of its last call, no request failed because of the outage, and the forged notification
cancelled nothing. The exit code is 0 on pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from db.embedded import EmbeddedPostgres  # noqa: E402
from db.migrate import migrate  # noqa: E402
from tests.support.llm_server import FaultInjection, LLMTestServer  # noqa: E402
from tests.support.worker_process import WorkerProcess  # noqa: E402

TERMINAL = ("succeeded", "failed", "cancelled")
SITES = ["Harbour Bakery", "Northside Dental", "Copper Kettle Cafe", "Trailhead Bikes"]
TOPICS = ["rainwater harvesting", "sourdough starters", "winter cycling", "dental anxiety", "cold brew",
          "small-business bookkeeping", "balcony gardens", "bike commuting", "school lunches", "home offices"]


@dataclasses.dataclass
class ChaosConfig:
    jobs: int = 1_000
    workers: int = 2
    concurrency: int = 10
    fault_rate: float = 0.1
    kill_every: tuple[float, float] = (3.0, 7.0)  # seconds between SIGKILLs, drawn evenly
    restart_db_at: float = 0.25  # share of requests finished when PostgreSQL restarts
    sigterm_at: float = 0.5  # ... and when one worker gets SIGTERM
    calm_at: float = 0.9  # no more kills once this share has finished: the rest must finish alone
    cancel_share: float = 0.01
    llm_timeout: float = 2.0
    stalled_worker_seconds: float = 10.0
    stalled_check_seconds: int = 3
    max_attempts: int = 3
    time_limits: str = "titles=30,site_section=30,post_image=30,blog_post=90"
    margin_seconds: float = 60.0  # after the stall time-out: a request not finished by then is lost
    max_seconds: float = 1_800.0
    min_worker_age: float = 3.0  # a worker is killed or stopped only once up this long and running jobs
    outage_at: float = 0.6  # share of requests finished when the model endpoint goes down
    outage_seconds: float = 60.0
    outage_jobs: int = 200  # titles requests submitted while it is down
    forge_abort_at: float = 0.15  # ... and when an abort notification is forged as the analyst role
    seed: int | None = None
    keep: str | None = None
    quiet: bool = False


@dataclasses.dataclass
class ModelLogChecks:
    """What the model server's own per-request log says, joined with the requests."""

    called_after_result: list[str] = dataclasses.field(default_factory=list)
    failed_with_result: list[str] = dataclasses.field(default_factory=list)
    code_mismatch: list[str] = dataclasses.field(default_factory=list)
    codes_checked: int = 0
    outage_failures: list[str] = dataclasses.field(default_factory=list)
    outage_batch: dict[str, int] = dataclasses.field(default_factory=dict)
    cancelled_not_by_us: list[str] = dataclasses.field(default_factory=list)
    calls_without_request_id: int = 0

    @property
    def passed(self) -> bool:
        return not (self.called_after_result or self.failed_with_result or self.code_mismatch
                    or self.outage_failures or self.cancelled_not_by_us or self.calls_without_request_id)


@dataclasses.dataclass
class ChaosReport:
    submitted: dict[str, int]
    follow_ups: dict[str, int]
    succeeded: int
    failed_by_code: dict[str, int]
    cancelled: int
    still_running: int
    lost_no_row: list[str]
    lost_not_finished: list[str]
    duplicated: dict[str, list[str]]
    missing_effects: dict[str, list[str]]
    failed_without_code: list[str]
    over_attempt_budget: list[str]
    retries_used: int
    attempts_histogram: dict[int, int]
    faults_injected: dict[str, int]
    events: dict[str, object]
    seconds: float
    model_log: ModelLogChecks = dataclasses.field(default_factory=ModelLogChecks)

    @property
    def lost(self) -> int:
        return len(self.lost_no_row) + len(self.lost_not_finished)

    @property
    def duplicates(self) -> int:
        return sum(len(v) for v in self.duplicated.values())

    @property
    def passed(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates == 0
            and not self.failed_without_code
            and not self.over_attempt_budget
            and not any(self.missing_effects.values())
            and self.model_log.passed
        )

    def table(self) -> str:
        total = sum(self.submitted.values()) + sum(self.follow_ups.values())
        rows: list[tuple[str, str]] = [
            ("submitted", f"{sum(self.submitted.values()):,} ({_kinds(self.submitted)})"),
            ("queued by jobs (follow-ups)", f"{sum(self.follow_ups.values()):,} ({_kinds(self.follow_ups)})"),
            ("requests verified", f"{total:,}"),
            ("succeeded", f"{self.succeeded:,}"),
            ("failed", f"{sum(self.failed_by_code.values()):,}"),
            *[(f"  failed: {code}", f"{n:,}") for code, n in sorted(self.failed_by_code.items(), key=lambda kv: -kv[1])],
            ("cancelled", f"{self.cancelled:,}"),
            ("still running / queued", f"{self.still_running:,}"),
            ("lost", f"{self.lost:,} (no request row: {len(self.lost_no_row)}, not finished: {len(self.lost_not_finished)})"),
            ("duplicated", f"{self.duplicates:,} ({_counts(self.duplicated)})"),
            ("succeeded without its effect", f"{sum(len(v) for v in self.missing_effects.values()):,} ({_counts(self.missing_effects)})"),
            ("failed without an error code", f"{len(self.failed_without_code):,}"),
            ("over the attempt budget", f"{len(self.over_attempt_budget):,}"),
            ("retries used", f"{self.retries_used:,} (requests by attempts: "
             + ", ".join(f"{a}: {n:,}" for a, n in sorted(self.attempts_histogram.items())) + ")"),
            ("model requests", f"{sum(self.faults_injected.values()):,} ({_kinds(self.faults_injected)})"),
            ("model calls after the result was stored", f"{len(self.model_log.called_after_result):,}"),
            ("failed with a result", f"{len(self.model_log.failed_with_result):,}"),
            ("failure code ≠ model server's last call", f"{len(self.model_log.code_mismatch):,} "
             f"(of {self.model_log.codes_checked:,} failures checked)"),
            ("outage batch (submitted while down)", _kinds(self.model_log.outage_batch)),
            ("failed because of the outage", f"{len(self.model_log.outage_failures):,}"),
            ("cancelled by the forged abort notification", f"{len(self.model_log.cancelled_not_by_us):,}"),
            ("model calls without X-Inkwell-Request-Id", f"{self.model_log.calls_without_request_id:,}"),
            *[(k, str(v)) for k, v in self.events.items()],
            ("wall time", f"{self.seconds:,.0f} s"),
            ("result", "PASS" if self.passed else "FAIL"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _counts(groups: dict[str, list[str]]) -> str:
    return ", ".join(f"{k} {len(v)}" for k, v in groups.items()) or "none"


# --- Workers --------------------------------------------------------------------------------------


class Fleet:
    """Keeps `size` worker processes alive; kills, stops and replaces them on request."""

    def __init__(self, env: dict[str, str], *, size: int, concurrency: int, log_dir: Path, rng: random.Random,
                 min_age: float):
        self.env = env
        # Only workers up this long are killed or stopped: one still importing runs no job yet.
        self.min_age = min_age
        self.started_at: dict[int, float] = {}
        self.size = size
        self.concurrency = concurrency
        self.log_dir = log_dir
        self.rng = rng
        self.live: list[WorkerProcess] = []
        self.all: list[WorkerProcess] = []
        self.stopping: WorkerProcess | None = None
        self.stopping_since = 0.0
        self.stopped: list[tuple[WorkerProcess, float]] = []  # SIGTERMed workers: process, seconds to exit
        self.killed = 0
        self.exited_on_their_own: list[int] = []  # exit codes
        self._next_start = 0.0

    def start_one(self) -> WorkerProcess:
        name = f"chaos-w{len(self.all)}"
        log_path = self.log_dir / f"{name}.log"
        # INFO: runner.py's "picked up" lines tell which workers are running jobs (and the logs tell the story).
        command = [sys.executable, "-m", "procrastinate", "--app=queue_tasks.app", "--log-level=info", "worker",
                   "--name", name, "--concurrency", str(self.concurrency)]
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        worker = WorkerProcess(process, log_path)
        self.started_at[process.pid] = time.monotonic()
        self.live.append(worker)
        self.all.append(worker)
        return worker

    def keep_up(self) -> None:
        """Replace workers that exited by themselves; at most one start per second (the database may be down)."""
        for worker in list(self.live):
            if worker.process.poll() is not None:
                self.live.remove(worker)
                self.exited_on_their_own.append(worker.process.returncode)
        if self.stopping is not None and self.stopping.process.poll() is not None:
            self.stopped.append((self.stopping, time.monotonic() - self.stopping_since))
            self.stopping = None
        if len(self.live) < self.size and time.monotonic() >= self._next_start:
            self.start_one()
            self._next_start = time.monotonic() + 1.0

    def _working(self) -> list[WorkerProcess]:
        """Workers that have started jobs: killing one still importing (seconds, on a busy machine) proves nothing."""
        now = time.monotonic()
        return [w for w in self.live if now - self.started_at[w.process.pid] >= self.min_age and ": picked up" in w.log]

    def kill_random(self) -> bool:
        """SIGKILL a random worker and start a replacement; only while every live worker is running jobs
        (False otherwise): on a busy machine a worker takes seconds to start, and killing replacements
        before they work would leave no worker working at all."""
        working = self._working()
        if not working or len(working) < len(self.live):
            return False
        victim = self.rng.choice(working)
        self.live.remove(victim)
        victim.kill()
        self.killed += 1
        self.start_one()
        return True

    def sigterm_oldest(self) -> WorkerProcess | None:
        working = self._working()
        if not working:
            return None
        victim = min(working, key=lambda w: self.started_at[w.process.pid])
        self.live.remove(victim)
        victim.process.terminate()
        self.stopping, self.stopping_since = victim, time.monotonic()
        self.start_one()
        return victim

    def stop_all(self) -> None:
        for worker in self.live + ([self.stopping] if self.stopping else []):
            worker.stop(timeout=20)

    def log_count(self, pattern: str) -> int:
        return sum(len(re.findall(pattern, w.log)) for w in self.all)


# --- Submitting -----------------------------------------------------------------------------------


def submit_mixed_jobs(database_url: str, jobs: int, rng: random.Random) -> dict[str, list[uuid.UUID]]:
    """About 55 % titles, 15 % blog posts (a third with an image), 30 % site-build sections (builds of 5)."""
    from queue_tasks.blog_posts import BlogPostInput
    from queue_tasks.models import TitlesInput
    from queue_tasks.site_build import site_definition_from, submit_site_build
    from queue_tasks.submit import submit_requests

    builds = max(1, round(jobs * 0.30 / 5)) if jobs >= 10 else 0
    posts = max(1, round(jobs * 0.15)) if jobs >= 5 else 0
    titles = jobs - builds * 5 - posts
    submitted: dict[str, list[uuid.UUID]] = collections.defaultdict(list)
    rounds = max(1, min(20, jobs // 50))
    with psycopg.connect(database_url, autocommit=True) as conn:
        for r in range(rounds):
            share = lambda n: n * (r + 1) // rounds - n * r // rounds  # noqa: E731
            title_inputs = [
                TitlesInput(topic=f"{rng.choice(TOPICS)} #{r}-{i}", audience="busy readers", count=rng.randint(3, 8))
                for i in range(share(titles))
            ]
            if title_inputs:
                submitted["titles"] += submit_requests(conn, "titles", title_inputs, requested_by="chaos")
            post_inputs = [
                BlogPostInput(topic=f"{rng.choice(TOPICS)} guide #{r}-{i}", include_visuals=(i % 3 == 0),
                              business={"business_type": "local shop", "target_audience": "neighbours"})
                for i in range(share(posts))
            ]
            if post_inputs:
                submitted["blog_post"] += submit_requests(conn, "blog_post", post_inputs, requested_by="chaos")
            for b in range(share(builds)):
                definition = site_definition_from({
                    "site": SITES[(r + b) % len(SITES)],
                    "business": {"business_type": "neighbourhood business", "target_audience": "locals"},
                    "routes": [
                        {"path": "/", "sections": [{"template": "hero"}, {"template": "features"}, {"template": "cta"}]},
                        {"path": "/about", "sections": [{"template": "about"}, {"template": "contact"}]},
                    ],
                })
                submitted["site_section"] += submit_site_build(conn, definition, requested_by="chaos").request_ids
    return dict(submitted)


# --- Verifying ------------------------------------------------------------------------------------


def verify(
    conn: psycopg.Connection,
    submitted: dict[str, list[uuid.UUID]],
    *,
    max_attempts: int,
    handed_back_job_ids: set[int],
) -> ChaosReport:
    """What the database says happened to every request; nothing here trusts the workers' word."""
    rows = conn.execute(
        "SELECT id, kind, status, error_code, attempts, result IS NOT NULL, input, job_id FROM inkwell.requests"
    ).fetchall()
    by_id = {row[0]: row for row in rows}
    submitted_ids = {rid for ids in submitted.values() for rid in ids}
    follow_ups = collections.Counter(row[1] for row in rows if row[0] not in submitted_ids)

    lost_no_row = [str(rid) for rid in submitted_ids if rid not in by_id]
    not_finished = [str(row[0]) for row in rows if row[2] not in TERMINAL]
    failed = [row for row in rows if row[2] == "failed"]
    failed_by_code = collections.Counter(row[3] or "(none)" for row in failed)
    over_budget = [
        f"{row[0]} ({row[1]}, {row[4]} attempts)" for row in rows
        if row[4] > max_attempts + (1 if row[7] in handed_back_job_ids else 0)
    ]

    duplicated = {
        "posts per request": _groups(conn, "SELECT request_id FROM inkwell.posts GROUP BY 1 HAVING count(*) > 1"),
        "entity versions per request": _groups(
            conn, "SELECT request_id FROM inkwell.content_entity_versions WHERE request_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1"
        ),
        "images per post": _groups(conn, "SELECT post_id FROM inkwell.post_images GROUP BY 1 HAVING count(*) > 1"),
        "images per image request": _groups(conn, "SELECT request_id FROM inkwell.post_images GROUP BY 1 HAVING count(*) > 1"),
        "image requests per post": _groups(
            conn, "SELECT input->>'post_id' FROM inkwell.requests WHERE kind = 'post_image' GROUP BY 1 HAVING count(*) > 1"
        ),
        "queue jobs per request": _groups(
            conn, "SELECT args->>'request_id' FROM procrastinate_jobs WHERE args ? 'request_id' GROUP BY 1 HAVING count(*) > 1"
        ),
    }
    missing_effects = {
        "no result": [str(r[0]) for r in rows if r[2] == "succeeded" and not r[5]],
        "blog post without its post": _groups(conn, """
            SELECT r.id FROM inkwell.requests r LEFT JOIN inkwell.posts p ON p.request_id = r.id
             WHERE r.kind = 'blog_post' AND r.status = 'succeeded' AND (r.input->>'auto_save')::boolean AND p.id IS NULL"""),
        "post without its image request": _groups(conn, """
            SELECT r.id FROM inkwell.requests r JOIN inkwell.posts p ON p.request_id = r.id
             WHERE r.status = 'succeeded' AND (r.input->>'include_visuals')::boolean AND p.image_request_id IS NULL"""),
        "section without its version": _groups(conn, """
            SELECT r.id FROM inkwell.requests r LEFT JOIN inkwell.content_entity_versions v ON v.request_id = r.id
             WHERE r.kind = 'site_section' AND r.status = 'succeeded' AND NOT coalesce((r.result->>'skipped')::boolean, false)
               AND v.id IS NULL"""),
        "image request without its image": _groups(conn, """
            SELECT r.id FROM inkwell.requests r LEFT JOIN inkwell.post_images i ON i.request_id = r.id
             WHERE r.kind = 'post_image' AND r.status = 'succeeded' AND i.post_id IS NULL"""),
    }
    attempts = collections.Counter(row[4] for row in rows)
    return ChaosReport(
        submitted={kind: len(ids) for kind, ids in submitted.items()},
        follow_ups=dict(follow_ups),
        succeeded=sum(1 for row in rows if row[2] == "succeeded"),
        failed_by_code=dict(failed_by_code),
        cancelled=sum(1 for row in rows if row[2] == "cancelled"),
        still_running=len(not_finished),
        lost_no_row=lost_no_row,
        lost_not_finished=not_finished,
        duplicated=duplicated,
        missing_effects=missing_effects,
        failed_without_code=[str(row[0]) for row in failed if not row[3]],
        over_attempt_budget=over_budget,
        retries_used=sum(max(0, row[4] - 1) for row in rows),
        attempts_histogram=dict(attempts),
        faults_injected={},
        events={},
        seconds=0.0,
    )


# What a request's code should be, given the model server's record of its last call.
_CODES_FOR_LAST_CALL = {
    "rate_limited": {"rate_limited"},
    "server_error_500": {"model_server_error"},
    "server_error_503": {"model_server_error"},
    "stall": {"model_timeout"},
    "drop_mid_stream": {"model_connection_dropped"},
    "cut_stream": {"model_connection_dropped"},
    "malformed_json": {"invalid_model_output"},
    "schema_violation": {"invalid_model_output"},
    "ok": set(),
}
_MODEL_CODES = set().union(*_CODES_FOR_LAST_CALL.values()) | {"model_unreachable"}
# Codes that need no particular last call: the worker died or the attempt ran out of time after it.
_CODES_AFTER_ANY_CALL = {"worker_lost", "time_limit_exceeded", "database_unavailable"}
# The images API answers these faults with an image (only errors and stalls apply to it).
_IMAGE_CALL_OK = {"drop_mid_stream", "cut_stream", "malformed_json", "schema_violation"}


def check_model_log(
    conn: psycopg.Connection,
    calls: list,
    *,
    outage_ids: set[uuid.UUID],
    outage_window: tuple[float, float] | None,
    cancelled_by_us: set[uuid.UUID],
) -> ModelLogChecks:
    """Join the model server's own log (each call's X-Inkwell-Request-Id, outcome, time) with the requests."""
    checks = ModelLogChecks()
    by_request: dict[str, list] = collections.defaultdict(list)
    for call in calls:
        if call.request_id is None:
            checks.calls_without_request_id += 1
        else:
            by_request[call.request_id].append(call)
    rows = conn.execute(
        "SELECT id, kind, status, error_code, result IS NOT NULL, extract(epoch FROM finished_at) FROM inkwell.requests"
    ).fetchall()
    for request_id, kind, status, code, has_result, finished_at in rows:
        mine = by_request.get(str(request_id), [])
        if status == "succeeded" and finished_at is not None:
            late = [c for c in mine if c.at > float(finished_at)]
            if late:
                checks.called_after_result.append(f"{request_id} ({len(late)} calls after its result)")
        if status == "failed" and has_result:
            checks.failed_with_result.append(str(request_id))
        if status == "cancelled" and request_id not in cancelled_by_us:
            checks.cancelled_not_by_us.append(str(request_id))
        if request_id in outage_ids:
            checks.outage_batch[status] = checks.outage_batch.get(status, 0) + 1
        if status != "failed" or code in _CODES_AFTER_ANY_CALL:
            continue
        if not mine and code not in _MODEL_CODES:
            continue  # a failure before any model call (invalid input, a refused URL): nothing to match
        checks.codes_checked += 1
        last = mine[-1].outcome if mine else None
        if kind == "post_image" and last in _IMAGE_CALL_OK:
            last = "ok"
        if last is not None and code in _CODES_FOR_LAST_CALL.get(last, set()):
            continue  # the fault the model server injected on its last call: the request's own
        # Not what the model server answered: the outage (a refused connection, a stream cut by the
        # endpoint going down) when it failed then, a wrong code otherwise.
        in_outage = outage_window is not None and finished_at is not None and (
            outage_window[0] - 1.0 <= float(finished_at) <= outage_window[1] + 1.0)
        if code == "model_unreachable" or in_outage:
            checks.outage_failures.append(f"{request_id} ({code}; the model server's last call: {last})")
        else:
            checks.code_mismatch.append(f"{request_id}: {code}, the model server's last call: {last}")
    return checks


def _groups(conn: psycopg.Connection, query: str) -> list[str]:
    return [str(row[0]) for row in conn.execute(query)]


# --- The run --------------------------------------------------------------------------------------


def _count_finished(database_url: str) -> tuple[int, int, bool] | None:
    """(finished, total) requests and whether model jobs are held now (the endpoint is marked down and
    its next probe is still to come), or None while the database is unreachable."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=2) as conn:
            return conn.execute(
                """SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'cancelled')), count(*),
                          (SELECT down_since IS NOT NULL AND next_probe_at > now() FROM inkwell.model_endpoint)
                     FROM inkwell.requests"""
            ).fetchone()
    except psycopg.OperationalError:
        return None


def _cancel_some(database_url: str, request_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    from db.connection import open_pool
    from queue_tasks.actions import ActionRefused, cancel_request, job_manager_for

    done: list[uuid.UUID] = []
    pool = open_pool(database_url, max_size=2)
    try:
        manager = job_manager_for(pool)
        with pool.connection() as conn:
            for request_id in request_ids:
                try:
                    cancel_request(conn, manager, request_id)
                    done.append(request_id)
                except ActionRefused:
                    pass  # it finished first
    finally:
        pool.close()
    return done


ANALYST_PASSWORD = "chaos-analyst"


def _forge_abort_notifications(database_url: str) -> int:
    """As the read-only analyst role, send Procrastinate's abort notification for every running job."""
    from db.migrate import ANALYST_ROLE

    with psycopg.connect(database_url, autocommit=True) as owner:
        running = [row[0] for row in owner.execute("SELECT id FROM procrastinate_jobs WHERE status = 'doing'")]
    with psycopg.connect(database_url, user=ANALYST_ROLE, password=ANALYST_PASSWORD, autocommit=True) as analyst:
        for job_id in running:
            payload = f'{{"type": "abort_job_requested", "job_id": {job_id}}}'
            analyst.execute("SELECT pg_notify('procrastinate_any_queue_v1', %s), pg_notify('procrastinate_queue_v1#default', %s)",
                            (payload, payload))
    return len(running)


def _submit_outage_batch(database_url: str, jobs: int, rng: random.Random) -> list[uuid.UUID]:
    from queue_tasks.models import TitlesInput
    from queue_tasks.submit import submit_requests

    with psycopg.connect(database_url, autocommit=True) as conn:
        inputs = [TitlesInput(topic=f"{rng.choice(TOPICS)} (outage) #{i}", count=rng.randint(3, 8)) for i in range(jobs)]
        return submit_requests(conn, "titles", inputs, requested_by="chaos-outage") if inputs else []


def run_chaos(config: ChaosConfig) -> ChaosReport:
    rng = random.Random(config.seed)
    say = (lambda *a: None) if config.quiet else (lambda *a: print(*a, flush=True))
    folder = Path(config.keep) if config.keep else Path(tempfile.mkdtemp(prefix="inkwell-chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(folder / "pgdata", durable=True)
    database_url = server.start()
    faults = FaultInjection(rate=config.fault_rate, stall_seconds=config.llm_timeout * 2, retry_after=1.0,
                            max_latency=0.3, seed=rng.randrange(2**32))
    model = LLMTestServer(faults=faults).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKWELL_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "INKWELL_LLM_BASE_URL": model.base_url,
        "INKWELL_LLM_API_KEY": "chaos-key",
        "INKWELL_LLM_MODEL": "chaos-model",
        "INKWELL_LLM_TIMEOUT_SECONDS": str(config.llm_timeout),
        "INKWELL_MAX_ATTEMPTS": str(config.max_attempts),
        "INKWELL_RETRY_BASE_SECONDS": "0.5",
        "INKWELL_RETRY_MAX_SECONDS": "4",
        "INKWELL_STALLED_WORKER_SECONDS": str(config.stalled_worker_seconds),
        "INKWELL_STALLED_CHECK_SECONDS": str(config.stalled_check_seconds),
        "INKWELL_TASK_TIME_LIMITS": config.time_limits,
        "INKWELL_WORKER_CONCURRENCY": str(config.concurrency),
    })
    # This process submits as the console does: same settings as the workers.
    saved_environ = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("INKWELL_") or k == "DATABASE_URL"})
    from inkwell_settings import get_settings

    get_settings.cache_clear()
    fleet = Fleet(env, size=config.workers, concurrency=config.concurrency, log_dir=folder, rng=rng,
                  min_age=config.min_worker_age)
    events: dict[str, object] = {}
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    passed = False
    try:
        migrate(database_url)
        from db.migrate import allow_analyst_login

        with psycopg.connect(database_url, autocommit=True) as owner:
            allow_analyst_login(owner, ANALYST_PASSWORD)
        say(f"chaos: {config.jobs:,} jobs, {config.workers} workers x {config.concurrency}, fault rate "
            f"{config.fault_rate:.0%}, load average {os.getloadavg()[0]:.2f}, folder {folder}")
        for _ in range(config.workers):
            fleet.start_one()
        submitted = submit_mixed_jobs(database_url, config.jobs, rng)
        say(f"chaos: submitted {_kinds({k: len(v) for k, v in submitted.items()})} in {time.monotonic() - started:.1f} s")
        all_submitted = [rid for ids in submitted.values() for rid in ids]
        to_cancel = rng.sample(all_submitted, k=min(len(all_submitted), max(1, round(len(all_submitted) * config.cancel_share))))
        cancel_at = {0.05: to_cancel[: len(to_cancel) // 2], 0.4: to_cancel[len(to_cancel) // 2 :]}
        cancelled_by_us: list[uuid.UUID] = []
        outage_ids: list[uuid.UUID] = []
        outage_window: tuple[float, float] | None = None
        outage_started: float | None = None
        forged = False

        next_kill = time.monotonic() + rng.uniform(*config.kill_every)
        db_restarted = sigtermed = False
        sigterm_victim: WorkerProcess | None = None
        last_progress, last_finished = time.monotonic(), -1
        while True:
            fleet.keep_up()
            counts = _count_finished(database_url)
            now = time.monotonic()
            if counts is not None:
                finished, total, held = counts
                if finished != last_finished or held:
                    # Nothing can finish while the model jobs are held by design: the endpoint was marked down
                    # and waits for its next probe (back-off up to 30 s; a probe lost with a killed worker
                    # doubles it). The stall clock starts when the held jobs may run again.
                    last_progress, last_finished = now, finished
                share = finished / max(1, total)
                outage_done = outage_window is not None or config.outage_seconds <= 0
                if finished >= total and fleet.stopping is None and sigtermed and db_restarted and outage_done and forged:
                    break
                for at in sorted(cancel_at):
                    if share >= at:
                        cancelled_by_us += _cancel_some(database_url, cancel_at.pop(at))
                if not forged and share >= config.forge_abort_at:
                    events["abort notifications forged as the analyst role"] = f"{_forge_abort_notifications(database_url):,} running jobs"
                    forged = True
                if outage_started is None and config.outage_seconds > 0 and share >= config.outage_at:
                    model.stop()
                    outage_started = time.time()
                    outage_ids = _submit_outage_batch(database_url, config.outage_jobs, rng)
                    say(f"chaos: model endpoint down at {share:.0%} finished; {len(outage_ids)} more requests submitted")
                if not db_restarted and share >= config.restart_db_at:
                    down = time.monotonic()
                    server.stop("fast")
                    time.sleep(1.0)
                    server.start()
                    db_restarted = True
                    events["PostgreSQL restarts (fast shutdown)"] = (
                        f"1, at {share:.0%} finished, down {time.monotonic() - down:.1f} s"
                    )
                    say(f"chaos: PostgreSQL restarted at {share:.0%} finished ({finished:,}/{total:,})")
                elif not sigtermed and share >= config.sigterm_at:
                    sigterm_victim = fleet.sigterm_oldest()
                    if sigterm_victim is not None:
                        sigtermed = True
                        say(f"chaos: SIGTERM to a worker at {share:.0%} finished")
                if share < config.calm_at and now >= next_kill and fleet.kill_random():
                    next_kill = now + rng.uniform(*config.kill_every)
            if outage_started is not None and outage_window is None:
                last_progress = now  # nothing is to finish while the endpoint is down
                if time.time() >= outage_started + config.outage_seconds:
                    model.start()
                    outage_window = (outage_started, time.time())
                    events["model endpoint outage"] = (
                        f"{outage_window[1] - outage_started:.0f} s (connection refused), {len(outage_ids)} requests submitted meanwhile"
                    )
                    say("chaos: model endpoint back")
            stall_deadline = config.stalled_worker_seconds + config.stalled_check_seconds + config.margin_seconds
            if now - last_progress > stall_deadline or now - started > config.max_seconds:
                say(f"chaos: no request finished for {now - last_progress:.0f} s; verifying what is there")
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started

        handed_back = _shutdown_jobs(sigterm_victim.log) if sigterm_victim is not None else set()
        with psycopg.connect(database_url, autocommit=True) as conn:
            report = verify(conn, {**submitted, "titles": submitted.get("titles", []) + outage_ids},
                            max_attempts=config.max_attempts, handed_back_job_ids=handed_back)
            report.model_log = check_model_log(conn, list(model.calls), outage_ids=set(outage_ids),
                                               outage_window=outage_window, cancelled_by_us=set(cancelled_by_us))
        fleet.stop_all()
        report.faults_injected = dict(model.fault_counts)
        events["workers SIGKILLed (and replaced)"] = fleet.killed
        events["workers that exited on their own (replaced)"] = (
            f"{len(fleet.exited_on_their_own)} (exit codes {sorted(collections.Counter(fleet.exited_on_their_own).items())})"
        )
        if fleet.stopped:
            worker, seconds = fleet.stopped[0]
            events["SIGTERMed worker"] = (
                f"exit code {worker.process.returncode} after {seconds:.1f} s; jobs handed back: {len(handed_back)}"
            )
        elif sigtermed:
            events["SIGTERMed worker"] = "did not exit before the end"
        events["requests cancelled by the script"] = len(cancelled_by_us)
        events["jobs re-queued by the stalled-job check"] = fleet.log_count(r"its worker stopped responding, re-queued")
        events["late writes of a silent worker refused"] = fleet.log_count(
            r"result not stored: the job no longer runs|no longer runs under worker|job_not_owned"
        )
        events["load average (1 min) at start / end"] = f"{load_at_start:.2f} / {os.getloadavg()[0]:.2f}"
        events["unexpected errors in worker logs"] = fleet.log_count(r"unexpected error")
        report.events = events
        report.seconds = elapsed
        passed = report.passed
        return report
    finally:
        fleet.stop_all()
        model.stop()
        server.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
        get_settings.cache_clear()
        if not config.keep and passed:
            shutil.rmtree(folder, ignore_errors=True)
        elif not passed:
            say(f"chaos: logs and database kept in {folder}")


def _shutdown_jobs(log: str) -> set[int]:
    """Jobs the SIGTERMed worker handed back to the queue (runner.py logs each with its code)."""
    return {int(job) for job in re.findall(r"job (\d+): attempt \d+ failed with worker_shutdown", log)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of model requests answered with a fault")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(3.0, 7.0), metavar=("MIN", "MAX"),
                        help="seconds between SIGKILLs, drawn evenly")
    parser.add_argument("--outage-seconds", type=float, default=60.0, help="how long the model endpoint is down")
    parser.add_argument("--outage-jobs", type=int, default=200, help="titles requests submitted while it is down")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", default=None, help="keep the database and worker logs in this folder")
    args = parser.parse_args()
    config = ChaosConfig(jobs=args.jobs, workers=args.workers, concurrency=args.concurrency, fault_rate=args.fault_rate,
                         kill_every=tuple(args.kill_every), outage_seconds=args.outage_seconds,
                         outage_jobs=args.outage_jobs, seed=args.seed, keep=args.keep)
    report = run_chaos(config)
    print()
    print(report.table())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
