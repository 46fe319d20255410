"""The Procrastinate App shared by the worker and the console."""

from __future__ import annotations

import logging
import select

import psycopg
import psycopg_pool
from procrastinate import App, PsycopgConnector
from procrastinate.connector import BaseConnector

from inkwell_settings import InkwellSettings, get_settings
from queue_tasks.database_outage import OutageTolerantJobManager
from queue_tasks.redaction import install_log_redaction

# Every module that defines tasks: the worker imports them at start.
TASK_MODULES = [
    "queue_tasks.titles",
    "queue_tasks.blog_posts",
    "queue_tasks.images",
    "queue_tasks.website_analysis",
    "queue_tasks.site_build",
    "queue_tasks.site_promotion",
    "queue_tasks.maintenance",
    "queue_tasks.housekeeping",
    "queue_tasks.request_counts",
    "queue_tasks.webhooks",
]


def _worker_defaults() -> dict:
    settings = get_settings()
    # A dead worker is noticed after stalled_worker_seconds; live ones must beat well inside that.
    heartbeat = max(0.5, min(10.0, settings.stalled_worker_seconds / 3))
    return {
        "update_heartbeat_interval": heartbeat,
        "stalled_worker_timeout": settings.stalled_worker_seconds,
        "concurrency": settings.worker_concurrency,
        # Retries wake no NOTIFY (it fires on insert only): poll often enough to pick them up.
        "fetch_job_polling_interval": 1.0,
        "abort_job_polling_interval": 1.0,
        # On SIGTERM, running jobs get this long to finish; the rest are handed back to the queue
        # (runner.py turns the shutdown cancellation into a `worker_shutdown` retry). A stopping
        # worker beats no more, so this stays under the stalled-worker time-out by two heartbeats:
        # its jobs are never re-queued (and run elsewhere) while it still runs them.
        "shutdown_graceful_timeout": min(
            settings.shutdown_graceful_seconds, max(0.0, settings.stalled_worker_seconds - 2 * heartbeat)
        ),
    }


def worker_pool_size(settings: InkwellSettings) -> int:
    """INKWELL_WORKER_POOL_SIZE, or by default concurrency + 2 between 4 and 8. Eight, not twenty: on
    the model-bound benchmark twenty connections per worker cost PostgreSQL 10–20 % more CPU per job
    (more backends contending for the same rows and pages) and finished no sooner."""
    return settings.worker_pool_size or max(4, min(8, settings.worker_concurrency + 2))


def autocommit(conn: psycopg.Connection | psycopg.AsyncConnection):
    """The pool's `configure`: its connections run each statement as its own transaction.

    Every statement a worker sends on its own (Procrastinate's fetch and finish, reading a request,
    a progress write) is atomic by itself; without autocommit psycopg wrapped each in BEGIN … COMMIT,
    two more round trips per statement: a model job's 16 round trips are 10 with it. Several
    statements that must hold together still say so: `async with conn.transaction()` (the ending of
    a job, runner._end).

    Not `kwargs={"autocommit": True}`: Procrastinate opens its LISTEN connection with the pool's
    kwargs plus its own autocommit=True, and the name may be given once. The sync pool (an app used
    before it is opened) calls this without awaiting, so both kinds of connection are handled."""
    if isinstance(conn, psycopg.AsyncConnection):
        return conn.set_autocommit(True)
    conn.autocommit = True
    return None


async def check_connection(conn: psycopg.AsyncConnection) -> None:
    """The pool's check of a connection it is about to hand out, without a round trip when it can.

    Procrastinate's default (psycopg_pool's `check_connection`) sends an empty query at every
    checkout: a model job checks out four times, a round trip each, 6.5 % of a worker's CPU on no-op
    jobs (py-spy; bench/RESULTS.md, round four). An idle pooled connection has nothing to read: no LISTEN runs on it, so
    the server writes to it only to end it (a restart, pg_terminate_backend, a time-out), and the
    closing socket then reads as ready. So: a connection psycopg already knows to be closed is
    refused; one whose socket has something to read gets the full check (which raises if the server
    ended it: the pool drops it and hands out another); any other is handed out as it is. A server
    that vanished without closing its sockets (a network cut) is not seen by either check until the
    first statement, which fails as it would have after the empty query's time-out."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        await psycopg_pool.AsyncConnectionPool.check_connection(conn)


def _pool(**kwargs) -> psycopg_pool.AsyncConnectionPool:
    """Procrastinate's pool with our `check_connection` instead of the empty query per checkout."""
    return psycopg_pool.AsyncConnectionPool(**{**kwargs, "check": check_connection})


def _connector() -> PsycopgConnector:
    settings = get_settings()
    # The pool opens only when the worker (or the console) opens the app, so importing this
    # module needs no database.
    return PsycopgConnector(
        conninfo=settings.database_url or "",
        min_size=1,
        max_size=worker_pool_size(settings),
        kwargs={"application_name": "inkwell-worker"},
        configure=autocommit,
        pool_factory=_pool,
    )


class QuietPeriodicTasks(logging.Filter):
    """Drops Procrastinate's routine lines (deferred, starting, succeeded) about the app's periodic
    tasks: the stalled-job check runs every 15 s, and three INFO lines a run buried everything else
    in a worker's log. The tasks log themselves when they find something; their warnings and errors,
    every line about other jobs, and everything at --log-level debug stay."""

    def __init__(self, app: App):
        super().__init__()
        self.app = app
        self._periodic_names: frozenset[str] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return True  # a worker started with --log-level debug asked for every line
        job = getattr(record, "job", None)  # Procrastinate's `extra`: the job's log context
        task_name = job.get("task_name") if isinstance(job, dict) else None
        if task_name is None:
            return True
        if self._periodic_names is None:  # the tasks are all registered before a worker logs a job
            self._periodic_names = frozenset(name for name, _ in self.app.periodic_registry.periodic_tasks)
        return task_name not in self._periodic_names


class InkwellApp(App):
    """Procrastinate's App whose workers never fetch from a paused queue and wait out a database
    outage instead of stopping (database_outage.py), copies included, and keep quiet about
    routine runs of the periodic tasks."""

    def __init__(self, **options):
        super().__init__(**options)
        self.job_manager = OutageTolerantJobManager(connector=self.connector)
        self.quiet_periodic_tasks = QuietPeriodicTasks(self)
        for name in ("procrastinate.periodic", "procrastinate.worker"):
            logging.getLogger(name).addFilter(self.quiet_periodic_tasks)

    def with_connector(self, connector: BaseConnector) -> App:
        # App.with_connector builds a plain App, with a plain JobManager.
        copy = super().with_connector(connector)
        copy.job_manager = OutageTolerantJobManager(connector=connector)
        return copy

    def _worker(self, **kwargs):
        worker = super()._worker(**kwargs)
        # A named worker also logs through its own child logger ("procrastinate.worker.<name>"),
        # which a filter on the parent does not see: the filter goes on that logger too.
        worker.logger.addFilter(self.quiet_periodic_tasks)
        # The worker registers through the job manager, which records its concurrency (0130).
        self.job_manager.worker_concurrency = worker.concurrency
        return worker


# Whatever logs in a worker (the SDK, Procrastinate, Inkwell), the model API key is redacted from it.
install_log_redaction()
app = InkwellApp(connector=_connector(), import_paths=TASK_MODULES, worker_defaults=_worker_defaults())
