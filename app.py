"""Inkwell console — the entry point (`streamlit run app.py`) and the Home page. It builds the
navigation from the signed-in role (console_ui.console_navigation). On Home, editors request titles
and follow the latest requests live; operators read the Overview: status counts, queue depth,
throughput, wait and run times, failures and workers."""

from __future__ import annotations

import time

import altair as alt
import pandas as pd
import pydantic
import streamlit as st

from console_ui import (
    FAVICON,
    SIGNED_IN_KEY,
    can_submit,
    change_counters,
    console_navigation,
    current_user,
    database,
    escape_markdown,
    forget_submission,
    is_duplicate_submission,
    note_rows_read,
    page_header,
    paused_note,
    plural,
    rerun_for_changes,
    rows_changed,
    show_model_outage,
    show_price,
    show_unavailable,
    show_workers,
    status_badge,
    take_notice,
)
from console_kinds import show_result
from console_time import (
    AXIS_DAY_AND_HOUR,
    AXIS_MINUTES,
    CHART_TOOLTIP,
    ago,
    browser_zone,
    chart_wall_clock,
    exact_here,
    in_viewer_zone,
    time_column,
)
from db.connection import QueueUnavailable
from db.live import NavCounts, nav_counts
from db.overview import FinishedInInterval, OverviewFigures, WaitAndRunTimes, overview_figures
from db.requests import ACTIVE_STATUSES, TERMINAL_STATUSES, GenerationRequest, list_recent_requests
from inkwell_settings import get_settings
from queue_tasks.models import TitlesInput, describe_validation_error
from queue_tasks.submit import DEFAULT_QUEUE, SubmitError, submit_titles_request

# The Overview reads the last day of requests and today's status counts (older days come from a
# rollup, migration 0026): a few tens of milliseconds at a million requests; read at most this often.
OVERVIEW_REFRESH_SECONDS = 5


def request_titles() -> None:
    # Queued: the page ran again (below) to draw the form empty; a drawn field cannot be emptied.
    queued = take_notice("home_queued")
    if st.session_state.pop("home_form_to_empty", False):
        for key in ("home_topic", "home_audience", "home_tone"):
            st.session_state[key] = ""
    with st.form("titles_form"):
        topic = st.text_area("Topic", placeholder="e.g. composting in small apartments", max_chars=500, key="home_topic")
        left, middle, right = st.columns([2, 2, 1])
        audience = left.text_input("Audience (optional)", placeholder="e.g. city renters", max_chars=200, key="home_audience")
        tone = middle.text_input("Tone (optional)", placeholder="e.g. friendly", max_chars=200, key="home_tone")
        count = right.number_input("Number of titles", min_value=1, max_value=20, value=5, step=1)
        submitted = st.form_submit_button("Request titles", type="primary")

    if submitted:
        requester = current_user().display_name
        try:
            data = TitlesInput(topic=topic, audience=audience, tone=tone, count=int(count))
        except pydantic.ValidationError as error:
            st.error(f"Nothing was queued. {describe_validation_error(error)}", icon=":material/error:")
        else:
            content = {"kind": "titles", "input": data.model_dump(), "requester": requester}
            if is_duplicate_submission(content):
                st.info("That request was just submitted; it is listed below.")
            else:
                try:
                    with database() as conn:
                        submit_titles_request(conn, data, requested_by=requester)
                except QueueUnavailable:
                    forget_submission(content)
                    show_unavailable()
                except SubmitError as error:
                    forget_submission(content)
                    st.error(str(error))
                else:
                    st.session_state.pop("home_rows", None)  # listed below at once
                    st.session_state["home_queued"] = f"Queued: titles for “{escape_markdown(data.topic)}”. Progress shows below."
                    st.session_state["home_form_to_empty"] = True
                    st.rerun()
    # Always a place for the line, so the requests below keep their place on the page whether it
    # shows or not (a progress bar that moved was drawn twice for a moment).
    notice = st.empty()
    if queued:
        notice.success(queued)


def show_request(request: GenerationRequest) -> None:
    with st.container(border=True):
        head, when = st.columns([5, 2])
        topic = escape_markdown(str(request.input.get("topic", "")))
        head.markdown(f"{status_badge(request.status)} **{topic}**")
        when.caption(f"{escape_markdown(request.requested_by)} · {ago(request.created_at)}", help=exact_here(request.created_at))
        if note := paused_note(request):
            st.warning(note)
        if request.status in ("queued", "scheduled", "running"):
            eta = f" · about {request.eta_seconds} s left" if request.eta_seconds is not None else ""
            st.progress(request.progress / 100, text=f"{request.current_step}{eta}")
        elif request.status == "succeeded" and request.kind == "titles":
            show_result(request)
        elif request.status == "succeeded":
            # Home stays compact: a long result (a blog post, a site section) is one line and a link.
            title = request.result.get("title") if isinstance(request.result, dict) else None
            if title:
                st.markdown(escape_markdown(str(title)))
        elif request.status == "failed":
            st.error(f"`{request.error_code or 'failed'}` {escape_markdown(request.error_message or '')}")
        elif request.status == "cancelled":
            st.caption(request.current_step)
        if request.status in ("succeeded", "failed", "cancelled"):
            st.page_link("pages/3_History.py", label="Open this request", icon=":material/open_in_new:",
                         query_params={"request": str(request.id)})


def recent_rows() -> list[GenerationRequest]:
    """The latest requests, read again only when a request changed (the change counter moved)."""
    changed = rows_changed("home", ("requests",))
    cached = st.session_state.get("home_rows")
    if cached is not None and not changed:
        return cached
    note_rows_read("home", ("requests",))
    with database() as conn:
        requests = list_recent_requests(conn, limit=20)
    st.session_state["home_rows"] = requests
    return requests


@st.fragment(run_every=1.0)
def recent_requests() -> None:
    st.subheader("Latest requests")
    try:
        requests = recent_rows()
    except QueueUnavailable:
        show_unavailable()
        return
    if not requests:
        st.info("No jobs yet — submit a topic above." if can_submit(current_user()) else "No requests yet.")
        return
    for request in requests:
        show_request(request)


@st.cache_data(ttl=OVERVIEW_REFRESH_SECONDS, show_spinner=False)
def load_overview(database_url: str, viewer_id: int) -> OverviewFigures:
    """Cached per database and viewer (row-level security shows each user their own figures):
    every rerun within the TTL shares one read."""
    with database() as conn:
        return overview_figures(
            conn,
            stale_after_seconds=get_settings().stalled_worker_seconds,
            always_listed_queues=[DEFAULT_QUEUE],
        )


def show_status_counts(counts: dict[str, int]) -> None:
    st.subheader("Requests by status")
    for column, status in zip(st.columns(6), (*ACTIVE_STATUSES, *TERMINAL_STATUSES)):
        column.metric(status.capitalize(), f"{counts.get(status, 0):,}")


def show_queue_depth(figures: OverviewFigures) -> None:
    st.subheader("Queues")
    frame = pd.DataFrame(
        {
            "Queue": [q.queue_name for q in figures.queues],
            "Waiting": [q.waiting for q in figures.queues],
            "Scheduled": [q.scheduled for q in figures.queues],
            "Running": [q.running for q in figures.queues],
            "Paused": ["paused" if q.is_paused else "" for q in figures.queues],
        }
    )
    st.dataframe(frame, hide_index=True)
    st.caption("Pause or resume a queue on the Workers and queues page.")


def throughput_chart(intervals: list[FinishedInInterval], per: str, axis_format: str) -> alt.Chart:
    """Succeeded and failed per interval, stacked; the time axis in the viewer's zone, 24-hour."""
    frame = pd.DataFrame(
        {
            "Finished": chart_wall_clock([i.interval_start for i in intervals], browser_zone()) * 2,
            "Outcome": ["Succeeded"] * len(intervals) + ["Failed"] * len(intervals),
            "Requests": [i.succeeded for i in intervals] + [i.failed for i in intervals],
        }
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{per}(Finished):T", title=None, axis=alt.Axis(format=axis_format, labelAngle=0)),
            y=alt.Y("Requests:Q", title="Requests", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color("Outcome:N", scale=alt.Scale(domain=["Succeeded", "Failed"], range=["#2e7d32", "#c62828"]),
                            legend=alt.Legend(title=None, orient="top")),
            tooltip=[
                alt.Tooltip(f"{per}(Finished):T", title="From", format=CHART_TOOLTIP),
                alt.Tooltip("Outcome:N"),
                alt.Tooltip("Requests:Q"),
            ],
        )
    )


def show_throughput(figures: OverviewFigures) -> None:
    st.subheader("Finished requests")
    per_minute, per_hour = st.tabs(["Last hour, per minute", "Last day, per hour"])
    charts = (
        (per_minute, figures.finished_per_minute, "hour", "yearmonthdatehoursminutes", AXIS_MINUTES),
        (per_hour, figures.finished_per_hour, "day", "yearmonthdatehours", AXIS_DAY_AND_HOUR),
    )
    for tab, intervals, when, per, axis_format in charts:
        if not any(i.succeeded or i.failed for i in intervals):
            tab.caption(f"No request has finished in the last {when}.")  # an empty chart reads as broken
        else:
            tab.altair_chart(throughput_chart(intervals, per, axis_format), width="stretch")


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} s"


def show_wait_and_run_times(times: WaitAndRunTimes) -> None:
    st.subheader("Wait and run time, last 24 h")
    wait_median, wait_p95, run_median, run_p95 = st.columns(4)
    wait_median.metric("Wait, median", seconds(times.wait_median))
    wait_p95.metric("Wait, p95", seconds(times.wait_p95))
    run_median.metric("Run time, median", seconds(times.run_median))
    run_p95.metric("Run time, p95", seconds(times.run_p95))
    if times.requests == 0:
        st.caption("No request has succeeded or failed in the last 24 hours yet: the times appear once one has.")
        return
    st.caption(
        f"Over {plural(times.requests, 'request')} that succeeded or failed. Wait: from when a request was due "
        "(submitted, or its scheduled time) to its first start. Run time: from first start to the end, retries included."
    )


def show_failures(figures: OverviewFigures) -> None:
    st.subheader("Failures by error code, last 24 h")
    if not figures.failures:
        st.success("No request failed in the last 24 hours.", icon=":material/check_circle:")
        return
    frame = pd.DataFrame(
        {
            "Error code": [f.error_code for f in figures.failures],
            "Failures": [f.failures for f in figures.failures],
            "Last failed": [in_viewer_zone(f.last_failed_at) for f in figures.failures],
            "Latest message": [f.latest_message or "" for f in figures.failures],
        }
    )
    st.dataframe(frame, hide_index=True, column_config={"Last failed": time_column()})
    st.caption("Find and retry them on the History page (status: failed).")


@st.fragment(run_every=OVERVIEW_REFRESH_SECONDS)
def overview() -> None:
    try:
        figures = load_overview(get_settings().database_url, current_user().id)
    except QueueUnavailable:
        show_unavailable()
        return
    show_status_counts(figures.requests_by_status)
    queues, workers = st.columns(2)
    with queues:
        show_queue_depth(figures)
    with workers:
        show_workers(figures.workers)
    show_throughput(figures)
    show_wait_and_run_times(figures.wait_and_run_times)
    show_failures(figures)


def home() -> None:
    user = page_header("Inkwell")
    show_model_outage()
    requests_tab, overview_tab = st.tabs(["Requests", "Overview"])
    with requests_tab:
        if can_submit(user):
            st.caption("Ask the model for titles. The work runs as a background job; this page follows it live.")
            show_price("titles")
            request_titles()
        else:
            st.caption("The latest requests you may see, followed live. Analysts read; they do not submit.")
        recent_requests()
    with overview_tab:
        overview()


# --- counts beside Live and History in the navigation ---

NAV_COUNTS_CHECK_SECONDS = 2.0
# Failures of the last hour age out without any change: counted again at least this often.
NAV_COUNTS_MAX_AGE_SECONDS = 30
# However busy the queue, new counts rerun the page at most this often.
NAV_RERUN_MIN_SECONDS = 5.0


@st.cache_data(ttl=NAV_COUNTS_MAX_AGE_SECONDS, show_spinner=False, max_entries=1000)
def load_nav_counts(database_url: str, viewer_id: int, status_changes: int) -> NavCounts:
    """Counted again only when a request changed status (migration 0090's counter) or the counts
    are NAV_COUNTS_MAX_AGE_SECONDS old; per viewer (row-level security decides what they count)."""
    with database() as conn:
        return nav_counts(conn)


def current_nav_counts() -> NavCounts | None:
    user = st.session_state.get(SIGNED_IN_KEY)
    if user is None:
        return None
    try:
        return load_nav_counts(get_settings().database_url, user.id, change_counters().request_status)
    except QueueUnavailable:
        return None


def nav_titles(counts: NavCounts | None) -> dict[str, str]:
    if counts is None:
        return {}
    titles = {}
    if live := [f"{count:,} {what}" for count, what in ((counts.running, "running"), (counts.queued, "queued")) if count]:
        titles["pages/2_Live.py"] = " · ".join(["Live", *live])
    if counts.failed_last_hour:
        titles["pages/3_History.py"] = f"History · {counts.failed_last_hour:,} failed in 1 h"
    return titles


@st.fragment(run_every=NAV_COUNTS_CHECK_SECONDS)
def keep_nav_counts_current(shown: NavCounts | None) -> None:
    """Runs the page again when the counts beside the navigation changed (filters, selections and
    the scroll position stay)."""
    if time.monotonic() - st.session_state.get("nav_counts_shown_at", 0.0) < NAV_RERUN_MIN_SECONDS:
        return
    if current_nav_counts() != shown:
        rerun_for_changes()


# Before the navigation: the tab keeps this icon on every page (the pages set none).
st.set_page_config(page_title="Inkwell", page_icon=FAVICON, layout="wide")
# The pages the signed-in role may use, Home first; before sign-in, the sign-in form alone.
counts = current_nav_counts()
page = console_navigation(home, titles=nav_titles(counts))
if st.session_state.get(SIGNED_IN_KEY) is not None:
    st.session_state["nav_counts_shown_at"] = time.monotonic()
    with st.sidebar:
        keep_nav_counts_current(counts)
page.run()
