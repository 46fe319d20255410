"""Inkwell beside its peers: bare Procrastinate and Celery 5 + Redis, the same model-bound mix and the same kill -9.

    python -m bench.peers [--jobs 1000] [--workers 1] [--concurrency 100] [--seconds 1.0] [--rounds 3]
                          [--kill-jobs 200] [--kill-wait 90] [--systems inkwell,bare,celery] [--scale 1,2,4,8]

The mix: `--jobs` jobs, each one streamed chat completion through the openai SDK against the local
OpenAI-compatible server (tests/support/llm_server.py in this process, on 127.0.0.1) that streams
every answer in 20 pieces over `--seconds`. Inkwell runs titles requests (its real path: request row,
progress, result); bare Procrastinate (bench/bare_app.py, `bare.model_call`) and Celery
(bench/celery_app.py, threads pool) make the same streamed call and read it to the end. Each system
gets `--workers` processes at `--concurrency` jobs each; ideal wall time jobs / (workers ×
concurrency) × seconds. Per system and round: wall time (submit → all done), CPU per job of the
workers and of the store (PostgreSQL's processes, or redis-server), the workers' peak RSS (summed),
and submit → start latency p50 / p95 (Procrastinate's `deferred` → `started` events; Celery: the
task's own clock against the submit time it was sent with), which in the mix includes the wait for a
free slot; `--latency-jobs` single jobs, one at a time, to an idle worker give the queue's own delay. Systems run in turn, order rotating
each round, so all see the same machine.

The kill: `--kill-jobs` jobs to one worker of each system; once a quarter of them have started, the
worker gets SIGKILL and a fresh one starts. After `--kill-wait` seconds: how many were done, lost
(not done by then), started more than once and done more than once; for Procrastinate the jobs
left `doing` (no one re-queues them), for Celery the messages parked in Redis's `unacked` until the
visibility timeout. Each system runs with its defaults.

Celery and the Redis client are not Inkwell's dependencies: they are pinned in
bench/requirements-peers.txt and installed on first use into ~/.cache/inkwell/bench-peers-<hash>, a
venv that also sees this venv's packages (same openai SDK); the script re-runs itself there.
Without redis-server (Debian's, /usr/bin/redis-server) or without a way to install Celery, the
Celery columns are skipped with a message saying why.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import psycopg

from bench.common import (
    BARE_APP,
    BARE_QUEUE,
    INKWELL_APP,
    INKWELL_QUEUE,
    ROOT,
    cpu_by_process,
    cpu_since,
    inkwell_env,
    machine_line,
    p50,
    p95,
    postgres_pids,
    registered_workers,
    start_worker,
    throwaway_database,
    wait_for_workers,
)
from tests.support import llm_server
from tests.support.llm_server import LLMTestServer, ok

llm_server._HTTPServer.request_queue_size = 1024  # as bench/model_bound.py: a real endpoint's backlog
PEERS_REQUIREMENTS = ROOT / "bench" / "requirements-peers.txt"
REEXEC_MARK = "INKWELL_BENCH_PEERS_VENV"


# -- Celery's venv and Redis ------------------------------------------------------------------------


def celery_python() -> tuple[str | None, str]:
    """(python that has Celery, "") or (None, why not). Installs bench/requirements-peers.txt into a
    venv of its own, once per version of that file."""
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401

        return sys.executable, ""
    except ImportError:
        pass
    digest = hashlib.sha256(PEERS_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = Path.home() / ".cache" / "inkwell" / f"bench-peers-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        print(f"Installing Celery and the Redis client into {venv} (once) …", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
            # The bench venv sees this venv's packages (openai, psycopg, procrastinate …) through a .pth file.
            target = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                    check=True, capture_output=True, text=True).stdout.strip()
            Path(target, "inkwell-product-venv.pth").write_text(site.getsitepackages()[0] + "\n")
            subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(PEERS_REQUIREMENTS)],
                           check=True, capture_output=True, text=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            return None, f"could not install {PEERS_REQUIREMENTS.name}: {str(detail).strip()[-300:]}"
        (venv / ".complete").write_text("ok\n")
    # Pointed at the product venv running now on every start: the one it was built from may be gone
    # (another checkout, or a venv replaced when requirements.txt changed).
    target = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    Path(target, "inkwell-product-venv.pth").write_text(site.getsitepackages()[0] + "\n")
    return str(python), ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self):
        self.binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.folder = tempfile.mkdtemp(prefix="inkwell-bench-redis-")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder, "--logfile", str(Path(self.folder) / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
            shutil.rmtree(self.folder, ignore_errors=True)


# -- the three systems ------------------------------------------------------------------------------


class System:
    name = ""

    def start_workers(self, count: int, concurrency: int, label: str) -> list:
        raise NotImplementedError

    def worker_pids(self, workers) -> list[int]:
        pids = []
        for w in workers:
            process = w.process if hasattr(w, "process") else w
            pids.append(process.pid)
            try:
                pids += [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return pids


class ProcrastinateSystem(System):
    def __init__(self, name: str, conn: psycopg.Connection, url: str, model_url: str):
        self.name, self.conn, self.url, self.model_url = name, conn, url, model_url
        self.app, self.queue = (INKWELL_APP, INKWELL_QUEUE) if name == "inkwell" else (BARE_APP, BARE_QUEUE)
        # Only the mix's own jobs count (Inkwell's periodic checks share its queue).
        self.task = "inkwell.generate_titles" if name == "inkwell" else "bare.model_call"

    def env(self, concurrency: int) -> dict[str, str]:
        return inkwell_env(self.url, INKWELL_LLM_BASE_URL=self.model_url, INKWELL_LLM_API_KEY="bench-key",
                           INKWELL_LLM_MODEL="inkwell-test-model", INKWELL_WORKER_CONCURRENCY=str(concurrency),
                           PEERS_LLM_BASE_URL=self.model_url)

    def start_workers(self, count, concurrency, label):
        env = self.env(concurrency)
        before = registered_workers(self.conn)
        workers = [start_worker(self.app, env, concurrency=concurrency, queues=self.queue, name=f"peers-{self.name}-{label}-{i}")
                   for i in range(count)]
        wait_for_workers(self.conn, before + count)
        time.sleep(0.5)
        return workers

    def store_pids(self) -> list[int]:
        return postgres_pids(self.conn)

    def mark(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs").fetchone()[0]

    def submit(self, jobs: int, tag: str) -> None:
        if self.name == "inkwell":
            from queue_tasks.models import TitlesInput
            from queue_tasks.submit import submit_requests

            submit_requests(self.conn, "titles", [TitlesInput(topic=f"{tag} {i}") for i in range(jobs)], requested_by="bench")
        else:
            from bench.bare_app import model_call

            with self.conn.transaction():
                model_call.configure(connection=self.conn).batch_defer(*({"topic": f"{tag} {i}"} for i in range(jobs)))

    def done_count(self, mark: int) -> int:
        return self.conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND id > %s AND status = 'succeeded'",
                                 (self.task, mark)).fetchone()[0]

    def latencies(self, mark: int) -> list[float]:
        rows = self.conn.execute(
            """SELECT extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'started') - min(e.at) FILTER (WHERE e.type = 'deferred'))
                 FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id
                WHERE j.task_name = %s AND j.id > %s GROUP BY j.id""", (self.task, mark)).fetchall()
        return [float(r[0]) for r in rows if r[0] is not None]

    def kill_outcome(self, mark: int, jobs: int) -> dict[str, int]:
        done, started_twice, in_doing = self.conn.execute(
            """SELECT count(*) FILTER (WHERE j.status = 'succeeded'),
                      count(*) FILTER (WHERE (SELECT count(*) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'started') > 1),
                      count(*) FILTER (WHERE j.status = 'doing')
                 FROM procrastinate_jobs j WHERE j.task_name = %s AND j.id > %s""", (self.task, mark)).fetchone()
        return {"done": done, "lost": jobs - done, "started twice": started_twice, "done twice": 0,
                "stuck running": in_doing}

    def stop(self, workers) -> None:
        for w in workers:
            w.stop()


class CelerySystem(System):
    name = "celery"

    def __init__(self, python: str, redis_server: RedisServer, model_url: str):
        self.python, self.redis, self.model_url = python, redis_server, model_url
        from bench.celery_app import app

        app.conf.broker_url = redis_server.url
        self.app = app
        import redis

        self.store = redis.Redis.from_url(redis_server.url)
        self.ids: list[str] = []

    def start_workers(self, count, concurrency, label):
        env = {**os.environ, "PEERS_REDIS_URL": self.redis.url, "PEERS_LLM_BASE_URL": self.model_url, "PYTHONPATH": str(ROOT)}
        workers = []
        for i in range(count):
            log = Path(tempfile.gettempdir()) / f"inkwell-bench-{os.getpid()}-celery-{label}-{i}.log"
            with open(log, "w") as out:
                workers.append(subprocess.Popen(
                    [self.python, "-m", "celery", "-A", "bench.celery_app", "worker", "-P", "threads", "-c", str(concurrency),
                     "--loglevel", "warning", "-n", f"peers-{label}-{i}@%h"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while len(self.app.control.ping(timeout=0.5) or []) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} Celery workers did not answer a ping in 60 s (logs in {tempfile.gettempdir()})")
        time.sleep(0.5)
        return workers

    def store_pids(self) -> list[int]:
        return [self.redis.process.pid]

    def mark(self) -> int:
        self.store.delete("peers:started", "peers:done")
        self.ids = []
        return 0

    def submit(self, jobs: int, tag: str) -> None:
        from bench.celery_app import model_call

        for i in range(jobs):
            job_id = str(uuid.uuid4())
            self.ids.append(job_id)
            model_call.apply_async((job_id, time.time(), f"{tag} {i}"), task_id=job_id)

    def done_count(self, mark: int) -> int:
        return len(set(self._list("peers:done")))

    def _list(self, key: str) -> list:
        return [item.decode() for item in self.store.lrange(key, 0, -1)]

    def latencies(self, mark: int) -> list[float]:
        first: dict[str, float] = {}
        for item in self._list("peers:started"):
            job_id, seconds = json.loads(item)
            first.setdefault(job_id, seconds)
        return list(first.values())

    def kill_outcome(self, mark: int, jobs: int) -> dict[str, int]:
        done = collections.Counter(self._list("peers:done"))
        started = collections.Counter(json.loads(item)[0] for item in self._list("peers:started"))
        # Delivered to the killed worker but not acknowledged: Redis gives them back after the visibility timeout (1 h).
        parked = self.store.hlen("unacked")
        return {"done": len(done), "lost": jobs - len(done), "started twice": sum(1 for n in started.values() if n > 1),
                "done twice": sum(1 for n in done.values() if n > 1), "stuck running": 0,
                "parked until the visibility timeout": parked}

    def stop(self, workers) -> None:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()


# -- one round, one kill ----------------------------------------------------------------------------


def mix_round(system: System, *, workers: int, concurrency: int, jobs: int, label: str, timeout: float = 600) -> dict:
    started = system.start_workers(workers, concurrency, label)
    try:
        worker_pids = system.worker_pids(started)
        mark = system.mark()
        store_pids = system.store_pids()
        cpu_w, cpu_s = cpu_by_process(worker_pids), cpu_by_process(store_pids)
        cpu_me = cpu_by_process([os.getpid()])
        peak = 0
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        system.submit(jobs, f"peers {label}")
        store_pids = system.store_pids()  # with the backends the workers opened since
        deadline = time.monotonic() + timeout
        while system.done_count(mark) < jobs:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name}: {jobs} jobs not done in {timeout:.0f} s")
            peak = max(peak, sum(_rss(pid) for pid in worker_pids))
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        worker_ms = cpu_since(cpu_w, worker_pids) * 1000 / jobs
        store_ms = cpu_since(cpu_s, system.store_pids()) * 1000 / jobs
        server_ms = cpu_since(cpu_me, [os.getpid()]) * 1000 / jobs  # the model server's threads (and the driver)
    finally:
        system.stop(started)
    latency = system.latencies(mark)
    busy = (worker_ms + store_ms + server_ms) * jobs / 1000 / wall
    return {"wall": wall, "jobs": jobs, "worker_ms": worker_ms, "store_ms": store_ms, "server_ms": server_ms, "busy_cores": busy,
            "rss_mb": peak / 2**20,
            "lat_p50": p50(latency) * 1000, "lat_p95": p95(latency) * 1000, "load": load}


def latency_probe(system: System, *, count: int, concurrency: int) -> tuple[float, float]:
    """Submit → start of single jobs to an idle worker, one after the other: the queue's own delay,
    without waiting for a free slot (the mix's figures include that wait). Returns p50, p95 in ms."""
    started = system.start_workers(1, concurrency, "latency")
    seconds: list[float] = []
    try:
        for i in range(count):
            mark = system.mark()
            system.submit(1, f"latency {i}")
            deadline = time.monotonic() + 30
            while system.done_count(mark) < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            seconds += system.latencies(mark)
            time.sleep(0.2)
    finally:
        system.stop(started)
    return p50(seconds) * 1000, p95(seconds) * 1000


def _rss(pid: int) -> int:
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def kill_test(system: System, *, jobs: int, concurrency: int, wait: float) -> dict:
    first = system.start_workers(1, concurrency, "kill-a")
    mark = system.mark()
    system.submit(jobs, "kill")
    deadline = time.monotonic() + 60
    while len(system.latencies(mark)) < jobs // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    process = first[0].process if hasattr(first[0], "process") else first[0]
    for pid in system.worker_pids(first)[1:]:
        with _quiet():
            os.kill(pid, signal.SIGKILL)
    process.kill()
    process.wait(timeout=10)
    killed_at = time.monotonic()
    second = system.start_workers(1, concurrency, "kill-b")
    all_done_after = None
    try:
        while time.monotonic() - killed_at < wait:
            if system.done_count(mark) >= jobs:
                all_done_after = time.monotonic() - killed_at
                break
            time.sleep(0.2)
        time.sleep(1.0)  # a late duplicate would show now
        outcome = system.kill_outcome(mark, jobs)
    finally:
        system.stop(second)
    outcome["all done after"] = all_done_after
    return outcome


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return isinstance(exc[1], ProcessLookupError)


def scale_table(systems: dict, wanted: list[str], counts: list[int], args) -> None:
    """One round per system and worker count: what each added process buys, and what bounds it
    (busy cores = CPU seconds of workers + store + model server over the wall time; 2 cores here)."""
    print(f"\nScale-out: {args.jobs:,} jobs, concurrency {args.concurrency} per process", flush=True)
    print(f"  {'procs':>5} | {'system':8s} | {'wall s':>7} | {'ideal s':>7} | {'× ideal':>7} | {'jobs/s':>7} | "
          f"{'worker ms':>9} | {'store ms':>8} | {'model srv ms':>12} | {'busy cores':>10} | load", flush=True)
    for count in counts:
        ideal = args.jobs / (count * args.concurrency) * args.seconds
        for name in wanted:
            r = mix_round(systems[name], workers=count, concurrency=args.concurrency, jobs=args.jobs, label=f"scale{count}")
            print(f"  {count:>5} | {name:8s} | {r['wall']:7.2f} | {ideal:7.2f} | {r['wall'] / ideal:7.2f} | "
                  f"{args.jobs / r['wall']:7.0f} | {r['worker_ms']:9.2f} | {r['store_ms']:8.2f} | {r['server_ms']:12.2f} | "
                  f"{r['busy_cores']:10.2f} | {r['load']:.2f}", flush=True)
    print(flush=True)


def side_by_side(results: dict, wanted: list[str], ideal: float) -> None:
    print("\nSide by side (median of rounds):")
    cores = os.cpu_count() or 1
    floors: dict[str, float] = {}
    print(f"  {'':8s} | {'wall s':>7} | {'× ideal':>7} | {'worker ms/job':>13} | {'store ms/job':>12} | {'model+driver ms/job':>19} "
          f"| {'CPU floor s':>11} | {'RSS MB':>6} | {'p50 ms':>7} | {'p95 ms':>7}")
    for name in wanted:
        rs = results[name]
        med = {k: p50([r[k] for r in rs]) for k in rs[0]}
        # The wall time the measured CPU alone needs on this machine's cores (worker + store + this process: the
        # local model server and the driver's submit and polling, all on the same cores): no system can finish
        # sooner here, whatever the ideal.
        floor = (med['worker_ms'] + med['store_ms'] + med['server_ms']) * p50([r['jobs'] for r in rs]) / 1000 / cores
        print(f"  {name:8s} | {med['wall']:7.2f} | {med['wall'] / ideal:7.2f} | {med['worker_ms']:13.2f} | "
              f"{med['store_ms']:12.2f} | {med['server_ms']:19.2f} | {floor:11.2f} | {med['rss_mb']:6.0f} | "
              f"{med['lat_p50']:7.1f} | {med['lat_p95']:7.1f}")
        floors[name] = floor
    for name in wanted:
        print(f"FIGURE peers_{name}_wall_median = {p50([r['wall'] for r in results[name]]):.3f} s", flush=True)
        print(f"FIGURE peers_{name}_cpu_floor_over_ideal = {floors[name] / ideal:.3f} x  (the measured CPU on {cores} cores)",
              flush=True)
    if "inkwell" in results and "bare" in results:
        ratios = [i["store_ms"] / b["store_ms"] for i, b in zip(results["inkwell"], results["bare"]) if b["store_ms"] > 0]
        print(f"FIGURE peers_postgres_cpu_inkwell_over_bare_median = {p50(ratios):.3f} x  [target ≤ 2]", flush=True)
    if "inkwell" in results and "celery" in results:
        worst = max(i["wall"] / c["wall"] for i, c in zip(results["inkwell"], results["celery"]))
        print(f"FIGURE peers_inkwell_over_celery_worst_round = {worst:.3f} x  [target ≤ 1.00]")



# -- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per system")
    parser.add_argument("--concurrency", type=int, default=100, help="jobs at once per worker process")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long the model takes per answer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kill-jobs", type=int, default=200, help="0: no kill test")
    parser.add_argument("--kill-wait", type=float, default=90.0)
    parser.add_argument("--latency-jobs", type=int, default=20, help="single jobs for the submit → start probe (0: none)")
    parser.add_argument("--systems", default="inkwell,bare,celery")
    parser.add_argument("--scale", default="", help="e.g. 1,2,4,8: first a scale-out table over these worker counts")
    args = parser.parse_args()
    wanted = args.systems.split(",")

    celery_skip = ""
    python = None
    if "celery" in wanted:
        if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
            celery_skip = "redis-server is not installed (Debian: apt-get install redis-server)"
        else:
            python, celery_skip = celery_python()
            if python and python != sys.executable and not os.environ.get(REEXEC_MARK):
                os.environ[REEXEC_MARK] = "1"
                os.execv(python, [python, "-m", "bench.peers", *sys.argv[1:]])
    if celery_skip:
        print(f"Celery skipped: {celery_skip}", flush=True)
        wanted = [w for w in wanted if w != "celery"]

    ideal = args.jobs / (args.workers * args.concurrency) * args.seconds
    behaviour = ok(delay_per_chunk=args.seconds / 20, chunks=20)
    redis_server = RedisServer() if "celery" in wanted else None
    with LLMTestServer(default_behaviour=behaviour) as server, throwaway_database() as url, \
            psycopg.connect(url, autocommit=True) as conn:
        if redis_server is not None:
            redis_server.start()
        try:
            print(machine_line(conn))
            print(f"{args.jobs:,} jobs, each a streamed chat completion of {args.seconds:g} s through the openai SDK; "
                  f"{args.workers} worker process(es) × concurrency {args.concurrency} per system; ideal {ideal:.2f} s", flush=True)
            systems: dict[str, System] = {}
            for name in wanted:
                if name == "celery":
                    systems[name] = CelerySystem(python, redis_server, server.base_url)
                else:
                    systems[name] = ProcrastinateSystem(name, conn, url, server.base_url)
            if args.scale:
                scale_table(systems, wanted, [int(n) for n in args.scale.split(",")], args)
            results: dict[str, list[dict]] = collections.defaultdict(list)
            for round_number in range(args.rounds):
                order = wanted[round_number % len(wanted):] + wanted[:round_number % len(wanted)]
                for name in order:
                    r = mix_round(systems[name], workers=args.workers, concurrency=args.concurrency, jobs=args.jobs,
                                  label=f"r{round_number}")
                    results[name].append(r)
                    print(f"  round {round_number + 1} {name:8s} wall {r['wall']:6.2f} s ({r['wall'] / ideal:.2f} × ideal)  "
                          f"CPU/job worker {r['worker_ms']:5.2f} ms, store {r['store_ms']:5.2f} ms, model server + driver {r['server_ms']:4.2f} ms  "
                          f"busy cores {r['busy_cores']:.2f}  RSS {r['rss_mb']:5.0f} MB  "
                          f"submit→start p50 {r['lat_p50']:6.1f} ms p95 {r['lat_p95']:7.1f} ms  load {r['load']:.2f}", flush=True)
                if "inkwell" in results and "celery" in results:
                    ratio = results["inkwell"][-1]["wall"] / results["celery"][-1]["wall"]
                    print(f"  round {round_number + 1}: Inkwell ÷ Celery wall {ratio:.2f}  [target ≤ 1.00]", flush=True)
                if "inkwell" in results and "bare" in results:
                    b = results["bare"][-1]
                    i = results["inkwell"][-1]
                    print(f"  round {round_number + 1}: Inkwell ÷ bare wall {i['wall'] / b['wall']:.2f}, "
                          f"PostgreSQL CPU per job Inkwell ÷ bare {i['store_ms'] / b['store_ms']:.2f}  [target ≤ 2]", flush=True)

            if args.rounds:
                side_by_side(results, wanted, ideal)

            if args.latency_jobs:
                print(f"\nsubmit → start of {args.latency_jobs} single jobs, one at a time, to an idle worker:")
                for name in wanted:
                    lat50, lat95 = latency_probe(systems[name], count=args.latency_jobs, concurrency=args.concurrency)
                    print(f"  {name:8s} p50 {lat50:6.1f} ms  p95 {lat95:6.1f} ms  load {os.getloadavg()[0]:.2f}", flush=True)

            if args.kill_jobs:
                print(f"\nkill -9: {args.kill_jobs} jobs to one worker, SIGKILL once a quarter have started, a fresh "
                      f"worker at once, {args.kill_wait:g} s to finish:")
                for name in wanted:
                    outcome = kill_test(systems[name], jobs=args.kill_jobs, concurrency=args.concurrency, wait=args.kill_wait)
                    after = outcome.pop("all done after")
                    summary = ", ".join(f"{k} {v}" for k, v in outcome.items())
                    print(f"FIGURE peers_kill_{name}_lost = {outcome['lost']:.3f} jobs", flush=True)
                    print(f"  {name:8s} {summary}; " + (f"all done {after:.1f} s after the kill" if after is not None
                                                        else f"not all done {args.kill_wait:g} s after the kill"), flush=True)
        finally:
            if redis_server is not None:
                redis_server.stop()


if __name__ == "__main__":
    main()
