"""The one settings object, read from the environment by the console and the worker alike."""

from __future__ import annotations

import functools

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class InkwellSettings(BaseSettings):
    # An empty variable counts as unset (INKWELL_LLM_BASE_URL= selects the offline model).
    model_config = SettingsConfigDict(env_prefix="INKWELL_", extra="ignore", env_ignore_empty=True)

    # The database is the queue: Procrastinate and Inkwell's tables live in it.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")

    # Any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp server) by base URL.
    # With neither a base URL nor an API key, the built-in offline model answers.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_stream: bool = True
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    # Seconds the offline model takes to stream an answer, so progress is visible; 0 answers at once.
    offline_model_seconds: float = Field(default=1.5, ge=0)

    # Transient faults (429, 5xx, time-outs, dropped connections) are retried by the queue,
    # never by the SDK, so attempts are counted once and shown in the history.
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=120.0, ge=0)
    # Hard time limit for one attempt of a task; a hung call is cancelled and retried.
    task_time_limit_seconds: float = Field(default=300.0, gt=0)
    # Per kind of job, overriding the one above: "blog_post=900,titles=120" (kinds as in submit.JOB_KINDS).
    # A blog post makes up to eight model calls, so by default it gets longer (TASK_TIME_LIMIT_DEFAULTS).
    task_time_limits: str | None = None
    # On SIGTERM a worker lets running jobs finish for this long, then hands them back to the queue.
    # Kept below the stalled-worker time-out (minus a heartbeat), else a stopping worker's jobs
    # could be re-queued, and run elsewhere, while it still runs them.
    shutdown_graceful_seconds: float = Field(default=10.0, ge=0)

    # Progress rows are written at most this often per job, step changes included (queue_tasks/progress.py).
    # Once a second: the console's lists redraw once a second, so a faster rate showed nothing more,
    # and each write costs PostgreSQL CPU (bench/RESULTS.md, "Performance, round two").
    progress_write_interval_seconds: float = Field(default=1.0, ge=0)

    worker_concurrency: int = Field(default=10, ge=1)
    # Connections in a worker's pool (fetch, finish, heartbeat, the request's reads and writes);
    # 0: concurrency + 2, at least 4 and at most 8. Each job holds one only for a statement or a
    # short transaction, and more connections made every job cost PostgreSQL more CPU, not less
    # (bench/RESULTS.md, "Performance, round two").
    worker_pool_size: int = Field(default=0, ge=0, le=100)
    # A worker silent for this long is presumed dead and its jobs are re-queued.
    stalled_worker_seconds: float = Field(default=30.0, gt=0)
    # How often a worker looks for such jobs (seconds, 1–59).
    stalled_check_seconds: int = Field(default=15, ge=1, le=59)

    # Site builds: one job per route x section; a definition with more sections is refused.
    max_site_sections: int = Field(default=200, ge=1, le=5000)

    # Website analysis: addresses in private, loopback, link-local and other non-public ranges are
    # refused unless this is true (for a site on your own network, or the test suite's local site).
    allow_private_urls: bool = False
    # Networks allowed even so, comma-separated (e.g. "10.1.2.0/24" for an intranet site).
    url_allowed_networks: str | None = None
    url_max_bytes: int = Field(default=2_000_000, ge=1_000)
    url_timeout_seconds: float = Field(default=15.0, gt=0)

    # Images for blog posts ("include visuals"), via the images API of the configured endpoint.
    image_model: str = "gpt-image-1"
    image_size: str = "1024x1024"

    # Housekeeping: finished rows of Procrastinate's queue tables (jobs, events) older than this are
    # removed; their events are first copied to inkwell.job_events_archive. Inkwell's own history
    # (requests, results, posts, archived events) is kept for history_retention_days (unset: forever).
    queue_retention_days: float = Field(default=7.0, gt=0)
    history_retention_days: float | None = Field(default=None, gt=0)

    # Analysts: when set, the database role inkwell_analyst (read-only, the analytics views only)
    # may log in with this password, applied by every migration run (db/migrate.py). Unset: the
    # role is left as it is (created NOLOGIN; a DBA may grant it to analysts' own roles instead).
    analyst_password: SecretStr | None = None

    # The first admin, which the run command (serve.py) creates when the database has no admin yet.
    # Without a password one is generated and printed once by the run command (nowhere else).
    admin_username: str = Field(default="admin", min_length=1, max_length=100)
    admin_password: SecretStr | None = None
    # A new install works at once: the first organization ("Default", made with the first admin)
    # starts with this many credits. A titles request costs 1, a blog post 10 (inkwell.kind_costs).
    starting_credits: int = Field(default=1000, ge=0, le=1_000_000_000)

    # Where the HTTP API is served, as browsers reach it (./run sets it); the console links its docs.
    api_url: str | None = None
    # The HTTP API's login for what it reads for no one (event fan-out, health): the workers' role,
    # which sees every row; unset: DATABASE_URL (./run sets it).
    api_reader_database_url: str | None = None
    # The HTTP API (api/): anonymous website-analysis sessions may submit this many a minute per
    # session id and per client address; bodies over api_max_body_bytes are refused (413).
    api_visitor_submissions_per_minute: int = Field(default=5, ge=1)
    api_address_submissions_per_minute: int = Field(default=20, ge=1)
    api_max_body_bytes: int = Field(default=1_000_000, ge=1_000)
    # Seconds between heartbeat comments on an idle event stream (proxies close silent connections).
    api_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Completion webhooks: attempts in all, and the back-off base (waits base, base², base³ … s).
    webhook_max_attempts: int = Field(default=8, ge=1, le=20)
    webhook_retry_base_seconds: int = Field(default=2, ge=1)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    @property
    def offline_model(self) -> bool:
        return self.llm_base_url is None and self.llm_api_key is None

    @field_validator("task_time_limits")
    @classmethod
    def _valid_time_limits(cls, value: str | None) -> str | None:
        _parse_time_limits(value)
        return value

    def time_limit_for(self, kind: str) -> float:
        """The hard time limit of one attempt of a job of this kind, in seconds."""
        limits = {**TASK_TIME_LIMIT_DEFAULTS, **_parse_time_limits(self.task_time_limits)}
        return limits.get(kind, self.task_time_limit_seconds)


TASK_TIME_LIMIT_DEFAULTS = {"blog_post": 900.0}


def _parse_time_limits(value: str | None) -> dict[str, float]:
    limits: dict[str, float] = {}
    for part in (value or "").split(","):
        if not part.strip():
            continue
        kind, sep, seconds = part.partition("=")
        try:
            limit = float(seconds) if sep else 0.0
        except ValueError:
            limit = 0.0
        if not kind.strip() or not limit > 0:
            raise ValueError(f"task_time_limits: {part.strip()!r} is not kind=seconds (seconds > 0), e.g. blog_post=900")
        limits[kind.strip()] = limit
    return limits


@functools.cache
def get_settings() -> InkwellSettings:
    return InkwellSettings()
