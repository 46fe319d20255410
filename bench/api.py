"""The HTTP API: create rate, status latency at a million requests, 1,000 polling frontends, 1,000 event streams.

    python -m bench.api [--creates 1000] [--rows 1000000] [--pollers 1000] [--poll-seconds 30] [--poll-client raw|httpx]
                        [--streams 1000] [--stream-jobs 100] [--writes 300]

One API process (`python -m api`, as ./run starts it) on a throwaway durable PostgreSQL; the
clients are this process (httpx2). Figures are printed side by side with the direct calls they
wrap, from the same run:

1. Create: POST /api/v1/jobs/titles one at a time (and from 8 clients at once) vs `submit_requests`
   called directly, acting as the same user (`db.people.acting_as`, what the console does) and as
   the owner (no acting user). Rate ratio and p95 per create.
2. Status: GET /api/v1/jobs/{id}/status for random ids among `--rows` stored requests (an operator's
   token: every row is readable) vs `get_request` on an acting connection; p95, and the API
   process's CPU per call.
3. Polling: `--pollers` simulated frontends, each GETting its job's status every 2 s for
   `--poll-seconds`; p95 latency, requests/s, and the CPU of the API process, PostgreSQL and this
   client over the window (CPU seconds per wall second = cores busy), and per call. Each frontend
   polls on its own keep-alive connection with a minimal HTTP client (`--poll-client httpx`: httpx,
   which costs this process ~2 ms of CPU per call on the API's cores).
4. Streams: `--streams` open event streams over `--stream-jobs` running jobs; the benchmark writes
   progress (`db.requests.record_progress`, as a worker does) and each stream notes when the
   change arrives: delivery latency p50/p95 after the write's commit, and how many LISTEN
   connections the API holds (one).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx2
import psycopg

from bench.common import ROOT, cpu_by_process, cpu_since, figure, inkwell_env, machine_line, p50, p95, postgres_pids, throwaway_database

CONNECT_LIMITS = httpx2.Limits(max_connections=2000, max_keepalive_connections=2000)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_api(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"inkwell-bench-api-{os.getpid()}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx2.get(f"{base}/api/openapi.json", timeout=2, trust_env=False).status_code == 200:
                return process, base
        except httpx2.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start (see {log.name})")
        time.sleep(0.1)


def make_users(conn: psycopg.Connection) -> tuple[object, object]:
    """An editor (creates) and an operator (reads any of the million rows), in an organization with
    plenty of credits, both without the per-minute submission cap (it would stop the create round)."""
    from db.people import acting_as, create_organization, create_user, ensure_first_admin, get_user

    kept = conn.execute("SELECT id FROM inkwell.users WHERE username IN ('bench-editor', 'bench-operator') ORDER BY username").fetchall()
    if len(kept) == 2:  # a database kept by --keep: its users, from the first run
        return get_user(conn, kept[0][0]), get_user(conn, kept[1][0])
    admin, _ = ensure_first_admin(conn, password="correct horse battery staple")
    with acting_as(conn, admin):
        organization = create_organization(conn, "Bench")
        editor = create_user(conn, username="bench-editor", display_name="Bench editor", role="editor",
                             organization_id=organization, password=None, oidc_issuer="bench", oidc_subject="e")
        operator = create_user(conn, username="bench-operator", display_name="Bench operator", role="operator",
                               organization_id=organization, password=None, oidc_issuer="bench", oidc_subject="o")
    conn.execute("UPDATE inkwell.organizations SET credit_balance = 100000000")
    conn.execute("INSERT INTO inkwell.user_limits (user_id, max_jobs_in_flight, max_submissions_per_minute) "
                 "VALUES (%s, 10000000, 10000000), (%s, 10000000, 10000000)", (editor.id, operator.id))
    return editor, operator


def timed_each(function, count: int) -> tuple[float, list[float]]:
    """(items per second, seconds per call) of `count` sequential calls."""
    each = []
    start = time.perf_counter()
    for i in range(count):
        t = time.perf_counter()
        function(i)
        each.append(time.perf_counter() - t)
    return count / (time.perf_counter() - start), each


def concurrent_rate(function, count: int, threads: int) -> float:
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(function, range(count)))
    return count / (time.perf_counter() - start)


# --- 1. create ---------------------------------------------------------------------------------------


def bench_create(url: str, base: str, token: str, editor, count: int, api_pid: int, client_kind: str = "raw") -> None:
    from db.people import acting_as
    from queue_tasks.models import TitlesInput
    from queue_tasks.submit import submit_requests

    print(f"\n1. Create: {count:,} titles jobs one at a time, then {count:,} from 8 clients at once"
          f" ({'keep-alive sockets' if client_kind == 'raw' else 'httpx'})", flush=True)
    local = threading.local()

    def post(path: str, body: dict) -> None:
        """A POST on this thread's own keep-alive connection; 202 expected."""
        if client_kind == "httpx":
            if not hasattr(local, "http"):
                local.http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=30)
            response = local.http.post(path, json=body)
            assert response.status_code == 202, response.text
            return
        if not hasattr(local, "http"):
            local.http = KeepAlivePost(base, token)
        status, text = local.http.post(path, body)
        assert status == 202, text

    def api_create(i: int) -> None:
        post("/api/v1/jobs/titles", {"topic": f"api bench topic {i}", "count": 5})

    def connection() -> psycopg.Connection:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(url, autocommit=True)
        return local.conn

    def direct_acting(i: int) -> None:
        conn = connection()
        with acting_as(conn, token):
            submit_requests(conn, "titles", [TitlesInput(topic=f"direct bench topic {i}")], requested_by="bench-editor")

    def direct_owner(i: int) -> None:
        submit_requests(connection(), "titles", [TitlesInput(topic=f"owner bench topic {i}")], requested_by="bench-editor")

    rounds = {}
    api_cpu = client_cpu = 0.0
    # Alternate, so each sees the same load.
    for name, function in (("api", api_create), ("direct_acting", direct_acting), ("direct_owner", direct_owner),
                           ("api", api_create), ("direct_acting", direct_acting), ("direct_owner", direct_owner)):
        before = cpu_by_process([api_pid, os.getpid()])
        rate, each = timed_each(function, count // 2)
        if name == "api":
            api_cpu += cpu_since(before, [api_pid])
            client_cpu += cpu_since(before, [os.getpid()])
        rounds.setdefault(name, []).append((rate, each))
    summary = {}
    for name, results in rounds.items():
        rate = sum(r for r, _ in results) / len(results)
        each = [t for _, times in results for t in times]
        summary[name] = rate
        figure(f"create_one_at_a_time_{name}", rate, "jobs/s", extra=f"p50 {p50(each) * 1000:.1f} ms  p95 {p95(each) * 1000:.1f} ms")
        if name == "api":
            figure("create_api_p95", p95(each) * 1000, "ms", target="<= 15 ms")
    figure("create_rate_ratio_api_vs_direct_acting", summary["api"] / summary["direct_acting"], "x", target=">= 0.7")
    figure("create_rate_ratio_api_vs_direct_owner", summary["api"] / summary["direct_owner"], "x")
    api_calls = 2 * (count // 2)
    figure("create_api_cpu_per_call", api_cpu / api_calls * 1000, "ms",
           extra=f"CPU of the API process per create; the benchmark's own client {client_cpu / api_calls * 1000:.2f} ms")

    def api_create_parallel(i: int) -> None:
        post("/api/v1/jobs/titles", {"topic": f"api parallel topic {i}"})

    api_rate = concurrent_rate(api_create_parallel, count, 8)
    direct_rate = concurrent_rate(direct_acting, count, 8)
    figure("create_8_clients_api", api_rate, "jobs/s")
    figure("create_8_clients_direct_acting", direct_rate, "jobs/s")
    figure("create_8_clients_ratio", api_rate / direct_rate, "x", target=">= 0.7")


# --- 2. status at a million rows ----------------------------------------------------------------------------


def bench_status(url: str, base: str, token: str, samples: int, api_pid: int) -> list[str]:
    from db.people import acting_as
    from db.requests import get_request

    with psycopg.connect(url, autocommit=True) as conn:
        total = conn.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0]
        # Random rows from all over the table (not the newest, which are hot in the cache).
        percent = min(100.0, 100.0 * 4 * samples / max(1, total))
        ids = [str(row[0]) for row in conn.execute(
            "SELECT id FROM inkwell.requests TABLESAMPLE BERNOULLI (%s) LIMIT %s", (percent, samples * 2)).fetchall()]
    random.shuffle(ids)
    print(f"\n2. Status of random jobs among {total:,} stored requests ({len(ids):,} ids)", flush=True)
    client = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=30)

    def api_status(i: int) -> None:
        response = client.get(f"/api/v1/jobs/{ids[i % len(ids)]}/status")
        assert response.status_code == 200, response.text

    conn = psycopg.connect(url, autocommit=True)

    def direct_status(i: int) -> None:
        with acting_as(conn, token):
            assert get_request(conn, ids[i % len(ids)]) is not None

    results = {"api": [], "direct": []}
    api_cpu = 0.0
    for name, function in (("api", api_status), ("direct", direct_status)) * 2:
        before = cpu_by_process([api_pid])
        _, each = timed_each(function, samples // 2)
        if name == "api":
            api_cpu += cpu_since(before, [api_pid])
        results[name].extend(each)
    figure("status_api_p95_at_rows", p95(results["api"]) * 1000, "ms", target="<= 10 ms",
           extra=f"p50 {p50(results['api']) * 1000:.2f} ms; {total:,} requests stored")
    figure("status_direct_acting_p95", p95(results["direct"]) * 1000, "ms", extra=f"p50 {p50(results['direct']) * 1000:.2f} ms")
    figure("status_p95_ratio_api_vs_direct", p95(results["api"]) / p95(results["direct"]), "x")
    figure("status_api_cpu_per_call", api_cpu / len(results["api"]) * 1000, "ms", extra="CPU of the API process per status call, one at a time")
    client.close()
    conn.close()
    return ids


# --- 3. polling frontends -------------------------------------------------------------------------------------


class KeepAlivePost:
    """A creating frontend's HTTP/1.1 keep-alive connection (the standard library's, blocking): much
    less client CPU per call than httpx, which on these shared cores would be counted against the API."""

    def __init__(self, base: str, token: str):
        host, _, port = base.removeprefix("http://").partition(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict) -> tuple[int, str]:
        self.connection.request("POST", path, body=json.dumps(body), headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read().decode()


class KeepAliveGet:
    """One simulated frontend's HTTP/1.1 keep-alive connection that only sends GETs and reads the answer
    (by Content-Length): a few times less client CPU per call than httpx. The clients share the API's
    2 cores here, while real frontends are elsewhere, so the lighter the client the truer the figure."""

    def __init__(self, base: str, token: str):
        self.host, _, port = base.removeprefix("http://").partition(":")
        self.port = int(port)
        self.head = f"HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        """The answer's status code; OSError (or asyncio.IncompleteReadError) when the connection failed.
        A kept-alive connection the server closed while idle (uvicorn's keep-alive timeout) is opened
        again and the GET sent once more, as browsers and httpx do."""
        reused = self.writer is not None
        try:
            return await self._get(path)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            if not reused or (isinstance(error, asyncio.IncompleteReadError) and error.partial):
                raise
            return await self._get(path)

    async def _get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(f"GET {path} {self.head}".encode())
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(head)
            await self.reader.readexactly(int(length.group(1)) if length else 0)
            return int(head[9:12])
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def bench_polling(url: str, base: str, token: str, ids: list[str], api_pid: int, pollers: int, seconds: float,
                  client_kind: str = "raw") -> None:
    print(f"\n3. {pollers:,} simulated frontends polling their job's status every 2 s for {seconds:.0f} s"
          f" ({'keep-alive sockets' if client_kind == 'raw' else 'httpx'})", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        pg = postgres_pids(conn)
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()

    async def frontend(get, job_id: str, stop_at: float) -> None:
        await asyncio.sleep(random.random() * 2)  # frontends do not start in step
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                if (status := await get(f"/api/v1/jobs/{job_id}/status")) != 200:
                    errors[str(status)] += 1
            except (httpx2.TransportError, OSError, asyncio.IncompleteReadError) as error:
                errors[type(error).__name__] += 1
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - started)))

    async def run() -> float:
        async with httpx2.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, trust_env=False,
                                      timeout=30, limits=CONNECT_LIMITS) as client:
            async def httpx_get(path: str) -> int:
                return (await client.get(path)).status_code

            frontends = [KeepAliveGet(base, token) for _ in range(pollers)] if client_kind == "raw" else []
            gets = [f.get for f in frontends] if frontends else [httpx_get] * pollers
            # Warm the connections, then measure.
            warm_stop = time.monotonic() + 4
            await asyncio.gather(*(frontend(gets[i], ids[i % len(ids)], warm_stop) for i in range(pollers)))
            latencies.clear()
            errors.clear()
            before = cpu_by_process([api_pid, *pg, os.getpid()])
            started = time.monotonic()
            stop_at = started + seconds
            await asyncio.gather(*(frontend(gets[i], ids[i % len(ids)], stop_at) for i in range(pollers)))
            wall = time.monotonic() - started
            for label, pids in (("api_process", [api_pid]), ("postgresql", pg), ("clients", [os.getpid()])):
                used[label] = cpu_since(before, pids)
                figure(f"polling_cpu_{label}", used[label] / wall, "cores")
            for f in frontends:
                f.close()
            return wall

    used: dict[str, float] = {}
    wall = asyncio.run(run())
    figure("polling_requests_per_second", len(latencies) / wall, "req/s",
           extra=f"{sum(errors.values())} errors" + (f" ({', '.join(f'{n} {kind}' for kind, n in errors.most_common())})" if errors else ""))
    figure("polling_errors", sum(errors.values()), "answers other than 200")
    figure("polling_api_cpu_per_call", used["api_process"] / max(1, len(latencies)) * 1000, "ms",
           extra=f"PostgreSQL {used['postgresql'] / max(1, len(latencies)) * 1000:.2f} ms, "
                 f"clients {used['clients'] / max(1, len(latencies)) * 1000:.2f} ms per call")
    figure("polling_p95", p95(latencies) * 1000, "ms", target="<= 50 ms", extra=f"p50 {p50(latencies) * 1000:.1f} ms")


# --- 4. event streams ---------------------------------------------------------------------------------------------


def bench_streams(url: str, base: str, token: str, streams: int, jobs: int, writes: int) -> None:
    from db.people import acting_as
    from db.requests import record_progress
    from queue_tasks.models import TitlesInput
    from queue_tasks.submit import submit_requests

    print(f"\n4. {streams:,} open event streams over {jobs} running jobs; {writes} progress writes", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        with acting_as(conn, token):
            job_ids = submit_requests(conn, "titles", [TitlesInput(topic=f"streamed {i}") for i in range(jobs)],
                                      requested_by="bench-operator")
        # Running, as a worker would have them (no worker runs here: the benchmark writes their progress
        # as the job's own, worker-less run; the job-status trigger marks the requests running).
        queue_jobs = dict(conn.execute(
            "UPDATE procrastinate_jobs AS j SET status = 'doing' FROM inkwell.requests AS r"
            " WHERE r.id = ANY(%s) AND j.id = r.job_id RETURNING r.id, j.id", (job_ids,)
        ).fetchall())
    write_times: dict[str, float] = {}
    arrivals: list[float] = []
    opened = 0

    async def stream(client: httpx2.AsyncClient, job_id: uuid.UUID, ready: asyncio.Event) -> None:
        nonlocal opened
        async with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
            assert response.status_code == 200
            opened += 1
            if opened == streams:
                ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"currentStep":"w' in line:
                    step = line.split('"currentStep":"', 1)[1].split('"', 1)[0]
                    if step in write_times:
                        arrivals.append(time.time() - write_times[step])

    async def writer(ready: asyncio.Event) -> None:
        await ready.wait()
        await asyncio.sleep(1)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for n in range(writes):
                job_id = job_ids[n % jobs]
                step = f"w{n}"
                await record_progress(conn, job_id, job_id=queue_jobs[job_id], worker_id=None,
                                      progress=n % 100, step=step, eta_seconds=5, partial_text=None)
                write_times[step] = time.time()  # after the commit: what a subscriber can see
                await asyncio.sleep(0.02)
        await asyncio.sleep(2)

    async def run() -> int:
        ready = asyncio.Event()
        async with httpx2.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, trust_env=False,
                                      timeout=httpx2.Timeout(120), limits=CONNECT_LIMITS) as client:
            readers = [asyncio.create_task(stream(client, job_ids[i % jobs], ready)) for i in range(streams)]
            await writer(ready)
            with psycopg.connect(url, autocommit=True) as conn:
                listeners = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'inkwell-api-listen'").fetchone()[0]
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        return listeners

    listeners = asyncio.run(run())
    expected = writes * streams // jobs
    figure("streams_open", opened, "streams")
    figure("streams_listen_connections", listeners, "connections", target="1")
    figure("streams_delivered", len(arrivals), "events", extra=f"of {expected:,} expected")
    figure("streams_delivery_p95", p95(arrivals) * 1000, "ms", target="<= 250 ms", extra=f"p50 {p50(arrivals) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--status-samples", type=int, default=2_000)
    parser.add_argument("--pollers", type=int, default=1_000)
    parser.add_argument("--poll-seconds", type=float, default=30)
    parser.add_argument("--poll-client", choices=("raw", "httpx"), default="raw",
                        help="the pollers' HTTP client: keep-alive sockets (light, the default) or httpx (as before)")
    parser.add_argument("--streams", type=int, default=1_000)
    parser.add_argument("--stream-jobs", type=int, default=100)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--keep", help="keep the database in this folder (a later run reuses it)")
    parser.add_argument("--create-client", choices=("raw", "httpx"), default="raw",
                        help="the creating clients: keep-alive sockets of the standard library (light, the default) or httpx")
    parser.add_argument("--parts", default="create,status,polling,streams", help="which parts to run, comma-separated")
    args = parser.parse_args()

    from bench.history_scale import generate
    from db.people import start_session

    with throwaway_database(args.keep) as url:
        env = inkwell_env(url, INKWELL_API_HEARTBEAT_SECONDS="15")
        with psycopg.connect(url, autocommit=True) as conn:
            print(machine_line(conn), flush=True)
            editor, operator = make_users(conn)
            editor_token = start_session(conn, editor.id, kind="api", name="bench")
            operator_token = start_session(conn, operator.id, kind="api", name="bench")
            # The stored history first (its generator numbers the jobs from 1); creates come after it.
            if args.rows and conn.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0] == 0:
                print(f"\n  filling the database with {args.rows:,} requests …", flush=True)
                generate(conn, args.rows)
                conn.execute("VACUUM ANALYZE inkwell.requests")
        api, base = start_api(env)
        try:
            parts = set(args.parts.split(","))
            if "create" in parts:
                bench_create(url, base, editor_token, editor, args.creates, api.pid, args.create_client)
            ids = bench_status(url, base, operator_token, args.status_samples, api.pid)  # also the ids the pollers read
            if "polling" in parts:
                bench_polling(url, base, operator_token, ids, api.pid, args.pollers, args.poll_seconds, args.poll_client)
            if "streams" in parts:
                bench_streams(url, base, operator_token, args.streams, args.stream_jobs, args.writes)
        finally:
            api.terminate()
            api.wait(timeout=15)


if __name__ == "__main__":
    main()
