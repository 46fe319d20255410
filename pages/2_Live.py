"""Live: the requests waiting or running, refreshed every second, each with progress and a Cancel button.
A scheduled request, or one waiting to retry (with its next attempt's time), can be run now or
discarded: they are unfinished requests, which this page lists (History lists finished ones)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import psycopg
import streamlit as st

from console_ui import (
    browser_zone,
    can_submit,
    current_user,
    database,
    escape_markdown,
    get_job_manager,
    may_act_on,
    note_rows_read,
    page_header,
    show_model_outage,
    paused_note,
    rows_changed,
    show_unavailable,
    status_badge,
)
from console_kinds.partial import show_partial_answer
from console_time import ago, clock_and_relative, duration, exact_here
from db.connection import QueueUnavailable
from db.live import (
    LiveFilters,
    LiveRequest,
    LiveRequests,
    list_live_requests,
    list_live_requests_by_id,
    time_left,
    typical_run_seconds,
)
from db.requests import ACTIVE_STATUSES
from inkwell_settings import get_settings
from queue_tasks.actions import ActionRefused, cancel_request, run_request_now
from queue_tasks.submit import JOB_KINDS

# A request someone cancelled here stays in the list this long after it ended, so they see it end.
CANCELLED_VISIBLE_SECONDS = 30
# The cards are read again when a request changes (any change, progress included); and at least
# this often, so a cancelled card leaves and "starts in" times stay right when nothing changes.
WATCHED = ("requests",)
LIVE_MAX_AGE_SECONDS = 10.0
# Time left is learned from recent runs of the same kind (db.live.typical_run_seconds), read this often.
TYPICAL_RUN_REFRESH_SECONDS = 60


def chosen_filters() -> LiveFilters:
    st.session_state.setdefault("live_kinds", [])
    st.session_state.setdefault("live_statuses", [])
    st.session_state.setdefault("live_only_mine", False)
    kinds, statuses, mine = st.columns([2, 2, 1], vertical_alignment="bottom")
    kinds.multiselect(
        "Kind", list(JOB_KINDS), format_func=lambda name: JOB_KINDS[name].label, placeholder="All kinds", key="live_kinds"
    )
    statuses.multiselect("Status", list(ACTIVE_STATUSES), placeholder="All statuses", key="live_statuses")
    mine.toggle("Only mine", key="live_only_mine")
    return LiveFilters(
        statuses=st.session_state["live_statuses"],
        kinds=st.session_state["live_kinds"],
        requested_by=current_user().display_name if st.session_state["live_only_mine"] else None,
    )


def cancel(request_id: uuid.UUID, topic: str, discarding: bool = False) -> None:
    """Cancel (or, for a scheduled request, Discard) button callback: runs before the panel redraws,
    so the panel shows the outcome.

    `topic` is already escaped for Markdown."""
    try:
        with database() as conn:
            outcome = cancel_request(conn, get_job_manager(), request_id)
    except ActionRefused as refusal:
        st.session_state["live_notice"] = (str(refusal), ":material/info:")
    except QueueUnavailable:
        st.session_state["live_notice"] = ("Not cancelled: the queue is unavailable — try again later.", ":material/cloud_off:")
    else:
        st.session_state.pop("live_rows", None)
        st.session_state.setdefault("live_cancelled", set()).add(str(request_id))
        if discarding and outcome == "cancelled":
            message = f"Discarded “{topic}”: it will not run."
        else:
            message = f"Cancelled “{topic}”." if outcome == "cancelled" else f"Cancelling “{topic}”: the worker is stopping it."
        st.session_state["live_notice"] = (message, ":material/cancel:")


def run_now(request_id: uuid.UUID, topic: str) -> None:
    """Run now button callback: the request's job is due at once (`topic` is already escaped)."""
    try:
        with database() as conn:
            run_request_now(conn, request_id)
    except ActionRefused as refusal:
        st.session_state["live_notice"] = (str(refusal), ":material/info:")
    except QueueUnavailable:
        st.session_state["live_notice"] = ("Not started: the queue is unavailable — try again later.", ":material/cloud_off:")
    else:
        st.session_state.pop("live_rows", None)
        st.session_state["live_notice"] = (f"“{topic}” starts as soon as a worker is free.", ":material/play_arrow:")


def recently_cancelled(conn: psycopg.Connection, shown: set[uuid.UUID]) -> list[LiveRequest]:
    """Requests cancelled from this page that left the live list a moment ago, so their end is seen."""
    followed: set[str] = st.session_state.setdefault("live_cancelled", set())
    now = dt.datetime.now(dt.timezone.utc)
    visible = []
    for request in list_live_requests_by_id(conn, list(followed)):
        if request.id in shown:
            continue
        if request.finished_at and (now - request.finished_at).total_seconds() > CANCELLED_VISIBLE_SECONDS:
            followed.discard(str(request.id))
        else:
            visible.append(request)
    return visible


@st.cache_data(ttl=TYPICAL_RUN_REFRESH_SECONDS, show_spinner=False)
def typical_runs(database_url: str, viewer_id: int, kinds: tuple[str, ...]) -> dict[str, float]:
    """Cached per viewer (row-level security: learned from the runs they may see) for a minute."""
    with database() as conn:
        return typical_run_seconds(conn, kinds)


def progress_text(request: LiveRequest, typical: dict[str, float]) -> str:
    seconds = time_left(request, typical.get(request.kind), dt.datetime.now(dt.timezone.utc))
    left = f" · about {duration(seconds)} left" if seconds is not None else ""
    return f"{escape_markdown(request.current_step)}{left}"


def start_text(request: LiveRequest, zone: dt.tzinfo) -> str:
    starts = request.scheduled_at
    if starts is None:
        return "Scheduled"
    now = dt.datetime.now(dt.timezone.utc)
    if starts > now:
        return f":material/schedule: Starts at {clock_and_relative(starts, zone, now)}"
    return f":material/schedule: Was due at {clock_and_relative(starts, zone, now)} — waiting for a worker to pick it up"


def next_attempt_text(request: LiveRequest, zone: dt.tzinfo) -> str:
    assert request.next_attempt_at is not None
    return f":material/replay: Waiting to retry: next attempt at {clock_and_relative(request.next_attempt_at, zone, dt.datetime.now(dt.timezone.utc))}"


def offer_actions(request: LiveRequest, topic: str, column) -> None:
    """Cancel (Discard for a request that has not started), and Run now for one waiting for later."""
    if request.status not in ACTIVE_STATUSES or not may_act_on(current_user(), request):
        return
    # Cancelling cannot be undone: it asks first.
    if request.status == "scheduled":
        with column.popover("Discard", icon=":material/delete:"):
            st.markdown(f"Discard “{topic}”? It will not run; this cannot be undone.")
            st.button("Yes, discard it", key=f"cancel_{request.id}", type="primary", on_click=cancel,
                      args=(request.id, topic, True))
    else:
        with column.popover("Cancel", icon=":material/cancel:"):
            st.markdown(f"Cancel “{topic}”? A running job stops at once; this cannot be undone.")
            st.button("Yes, cancel it", key=f"cancel_{request.id}", type="primary", on_click=cancel, args=(request.id, topic))
    if request.waits_for_later:
        column.button("Run now", key=f"run_now_{request.id}", icon=":material/play_arrow:", on_click=run_now,
                      args=(request.id, topic), help="Start it as soon as a worker is free instead of at its time.")


def show_request(request: LiveRequest, zone: dt.tzinfo, typical: dict[str, float]) -> None:
    topic = escape_markdown(str(request.input.get("topic", "")))
    with st.container(border=True):
        head, who, action = st.columns([6, 3, 2], vertical_alignment="center")
        head.markdown(f"{status_badge(request.status)} **{topic}**")
        kind = JOB_KINDS[request.kind].label if request.kind in JOB_KINDS else request.kind
        who.caption(f"{escape_markdown(request.requested_by)} · {escape_markdown(kind)} · submitted {ago(request.created_at)}",
                    help=exact_here(request.created_at))
        offer_actions(request, topic, action)
        if note := paused_note(request):
            st.warning(note)
        if request.status == "scheduled":
            st.caption(start_text(request, zone))
        elif request.next_attempt_at is not None and request.status == "queued":
            st.caption(next_attempt_text(request, zone))
        elif request.status in ACTIVE_STATUSES:
            st.progress(request.progress / 100, text=progress_text(request, typical))
        else:
            st.caption(escape_markdown(request.current_step))
        # Procrastinate counts finished attempts; a running request is on the one after them.
        attempt = request.attempts if request.status == "running" else request.attempts + 1
        if request.status in ACTIVE_STATUSES and attempt > 1:
            st.caption(f"Attempt {attempt} of {get_settings().max_attempts}")
        if request.status == "running" and request.partial_text:
            with st.expander("The answer so far", expanded=True):
                show_partial_answer(request.partial_text, escape_markdown)


def show_empty_state(filters: LiveFilters) -> None:
    if filters.narrows:
        st.info("No waiting or running jobs match these filters.", icon=":material/filter_alt_off:")
        return
    st.info("No jobs waiting or running — submit a topic on the Submit page.", icon=":material/inbox:")
    if can_submit(current_user()):
        st.page_link("pages/1_Submit.py", label="Submit a topic", icon=":material/add_circle:")


def live_rows(filters: LiveFilters) -> tuple[LiveRequests, list[LiveRequest]]:
    """The rows to show: read again only when a request changed (the change counter moved), the
    filters changed, or they are older than LIVE_MAX_AGE_SECONDS; else the ones read before."""
    changed = rows_changed("live", WATCHED)
    cached = st.session_state.get("live_rows")
    if cached is not None:
        read_at, read_for, live, ended = cached
        if not changed and read_for == filters and time.monotonic() - read_at < LIVE_MAX_AGE_SECONDS:
            return live, ended
    note_rows_read("live", WATCHED)
    with database() as conn:
        live = list_live_requests(conn, filters)
        ended = recently_cancelled(conn, {request.id for request in live.requests})
    st.session_state["live_rows"] = (time.monotonic(), filters, live, ended)
    return live, ended


@st.fragment(run_every=1.0)
def live_requests(filters: LiveFilters) -> None:
    if notice := st.session_state.pop("live_notice", None):
        message, icon = notice
        st.toast(message, icon=icon)
    try:
        live, ended = live_rows(filters)
    except QueueUnavailable:
        show_unavailable()
        return
    if not live.requests and not ended:
        show_empty_state(filters)
        return
    if live.is_cut_short:
        st.caption(f"Showing the newest {len(live.requests):,} of {live.total:,}. Narrow the filters to see the others.")
    zone = browser_zone()
    running_kinds = tuple(sorted({r.kind for r in live.requests if r.status == "running"}))
    try:
        typical = typical_runs(get_settings().database_url, current_user().id, running_kinds) if running_kinds else {}
    except QueueUnavailable:
        typical = {}
    for request in sorted(live.requests + ended, key=lambda r: (r.created_at, r.id), reverse=True):
        show_request(request, zone, typical)


st.set_page_config(page_title="Live · Inkwell", layout="wide")
page_header("Live")
show_model_outage()
st.caption("Requests waiting or running, newest first. The list keeps itself current.")
live_requests(chosen_filters())
