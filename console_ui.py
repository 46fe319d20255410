"""What every page of the console shares: the cached pool, the model banner, the requester's
name, status badges, safe rendering of model output, and the "queue unavailable" message.

Each page imports this module, so every page also runs on its own under AppTest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import psycopg
import psycopg_pool
import streamlit as st

from procrastinate.manager import JobManager

from db.connection import QueueUnavailable, console_connection, open_pool
from inkwell_settings import get_settings
from queue_tasks.actions import job_manager_for

UNAVAILABLE_MESSAGE = "Queue unavailable — try again later. The page recovers by itself when the database is back."
STATUS_BADGES = {
    "scheduled": ":violet-badge[:material/schedule: scheduled]",
    "queued": ":gray-badge[:material/hourglass_empty: queued]",
    "running": ":blue-badge[:material/progress_activity: running]",
    "succeeded": ":green-badge[:material/check_circle: succeeded]",
    "failed": ":red-badge[:material/error: failed]",
    "cancelled": ":orange-badge[:material/cancel: cancelled]",
}
# A second click on Submit within this many seconds with the same content is the same request.
DUPLICATE_SUBMIT_WINDOW_SECONDS = 10.0


@st.cache_resource(show_spinner=False)
def _pool_for(database_url: str) -> psycopg_pool.ConnectionPool:
    _log_actions_to_stderr()
    return open_pool(database_url)


def _log_actions_to_stderr() -> None:
    """Submissions, cancels and retries are logged with their ids, as the worker logs the rest.

    Python's default (no handler, WARNING) would drop them in the console process.
    """
    inkwell_logger = logging.getLogger("inkwell")
    if not inkwell_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        inkwell_logger.addHandler(handler)
        inkwell_logger.setLevel(logging.INFO)


def get_pool() -> psycopg_pool.ConnectionPool:
    url = get_settings().database_url
    if not url:
        st.error("DATABASE_URL is not set. Start Inkwell with `./run`, which starts a database, or set DATABASE_URL.")
        st.stop()
    return _pool_for(url)


@st.cache_resource(show_spinner=False)
def _job_manager_for(database_url: str) -> JobManager:
    return job_manager_for(_pool_for(database_url))


def get_job_manager() -> JobManager:
    """Procrastinate's JobManager on the console's pool, for cancel and retry."""
    get_pool()
    return _job_manager_for(get_settings().database_url)


@contextlib.contextmanager
def database() -> Iterator[psycopg.Connection]:
    """A connection for one piece of the page; raises QueueUnavailable when the database is down."""
    with console_connection(get_pool()) as conn:
        yield conn


def show_unavailable(error: QueueUnavailable | None = None) -> None:
    st.error(UNAVAILABLE_MESSAGE, icon=":material/cloud_off:")


def page_header(title: str) -> None:
    st.title(title)
    show_model_banner()
    requester_sidebar()


def show_model_banner() -> None:
    settings = get_settings()
    if settings.offline_model:
        st.info(
            "**Offline model in use.** Results come from Inkwell's built-in offline model: quick, "
            "deterministic, topic-specific drafts, not a language model. Set `INKWELL_LLM_BASE_URL` "
            "(and `INKWELL_LLM_API_KEY`) to use OpenAI, Ollama, vLLM or a llama.cpp server.",
            icon=":material/cloud_off:",
        )


def requester_sidebar() -> str:
    """The name a person gives once per browser session; stored on each request they submit."""
    # Streamlit drops a widget's value when another page is shown, so the name lives under a
    # plain session key and the widget is seeded from it on every page.
    st.session_state.setdefault("requester_name", "")
    st.session_state["requester"] = st.session_state["requester_name"]
    with st.sidebar:
        st.text_input(
            "Your name", key="requester", max_chars=100, placeholder="e.g. Ana from Marketing", on_change=_remember_requester
        )
    return st.session_state["requester"].strip()


def _remember_requester() -> None:
    st.session_state["requester_name"] = st.session_state["requester"]


def browser_zone() -> dt.tzinfo:
    """The time zone the browser reports; UTC when it reports none (or one this server does not know)."""
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


START_NOW, START_IN, START_AT = "Start now", "In N minutes", "At a date and time"
MAX_START_IN_MINUTES = 7 * 24 * 60


class StartRefused(ValueError):
    """The chosen start time cannot be used; nothing is queued."""


def choose_start() -> None:
    """The start-time widgets; their values are read when a form is submitted."""
    zone = browser_zone()
    next_hour = (dt.datetime.now(zone) + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    st.session_state.setdefault("start_in_minutes", 30)
    st.session_state.setdefault("start_at", next_hour.replace(tzinfo=None))
    choice = st.radio("When to start", [START_NOW, START_IN, START_AT], horizontal=True, key="start_choice")
    if choice == START_IN:
        st.number_input("Minutes from now", min_value=1, max_value=MAX_START_IN_MINUTES, step=5, key="start_in_minutes")
    elif choice == START_AT:
        st.datetime_input(f"Start at ({zone})", key="start_at", step=dt.timedelta(minutes=5))


def chosen_start() -> dt.datetime | None:
    """The start chosen above as an aware time, or None to start now; a time already past is refused."""
    # Pages without the widgets (regenerating on the Site builds page) start now.
    choice = st.session_state.get("start_choice", START_NOW)
    now = dt.datetime.now(dt.timezone.utc)
    if choice == START_IN:
        return now + dt.timedelta(minutes=st.session_state["start_in_minutes"])
    if choice == START_AT:
        # The picker shows the browser's wall-clock time, without a zone.
        start = st.session_state["start_at"].replace(tzinfo=browser_zone())
        if start <= now:
            raise StartRefused(f"{start:%Y-%m-%d %H:%M} is in the past: choose a later time, or “{START_NOW}”.")
        return start
    return None


def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, status)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """Model output is data, never markup: no HTML, links, images, colours or maths get through."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def is_duplicate_submission(content: object) -> bool:
    """True when the same content was submitted from this browser session a moment ago.

    Guards against a double click on Submit sending two reruns that would queue the job twice.
    """
    key = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    recent: dict[str, float] = st.session_state.setdefault("recent_submissions", {})
    now = time.monotonic()
    for old_key in [k for k, at in recent.items() if now - at > DUPLICATE_SUBMIT_WINDOW_SECONDS]:
        del recent[old_key]
    if key in recent:
        return True
    recent[key] = now
    return False


def forget_submission(content: object) -> None:
    """A submission that failed may be tried again at once."""
    key = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    st.session_state.setdefault("recent_submissions", {}).pop(key, None)


def show_workers(workers: list) -> None:
    """Workers from procrastinate_workers with their heartbeat; stale ones are flagged.

    Takes any rows with `id`, `last_heartbeat`, `running_jobs` and `is_stale` (db.queues.WorkerStatus).
    """
    st.subheader("Workers")
    if not workers:
        st.warning(
            "No worker is running, so no job starts. Start one with `python -m procrastinate --app=queue_tasks.app worker`.",
            icon=":material/engineering:",
        )
        return
    frame = pd.DataFrame(
        {
            "Worker": [w.id for w in workers],
            "Last heartbeat": [w.last_heartbeat.astimezone(browser_zone()) for w in workers],
            "Running jobs": [w.running_jobs for w in workers],
            "State": ["stale: no recent heartbeat" if w.is_stale else "alive" for w in workers],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        column_config={"Last heartbeat": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )
    stale = [w for w in workers if w.is_stale]
    stale_after = get_settings().stalled_worker_seconds
    if stale:
        st.warning(
            f"{len(stale)} worker(s) missed their heartbeat for over {stale_after:g} s; "
            "their running jobs are put back in the queue.",
            icon=":material/heart_broken:",
        )
    else:
        st.caption(f"A worker silent for over {stale_after:g} s is presumed dead; its running jobs are put back in the queue.")
