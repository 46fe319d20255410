"""Inkwell console — the entry point (`streamlit run app.py`) and the Home page. It builds the
navigation from the signed-in role (console_ui.console_navigation). On Home, editors request titles
and follow the latest requests live; operators read the Overview: status counts, queue depth,
throughput, wait and run times, failures and workers."""

from __future__ import annotations

import pandas as pd
import pydantic
import streamlit as st

from console_ui import (
    browser_zone,
    can_submit,
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
    rows_changed,
    show_model_outage,
    show_price,
    show_unavailable,
    show_workers,
    status_badge,
)
from console_kinds import show_result
from db.connection import QueueUnavailable
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
    if queued := st.session_state.pop("home_queued", None):
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
                    st.rerun()
    if queued:
        st.success(queued)


def show_request(request: GenerationRequest) -> None:
    with st.container(border=True):
        head, when = st.columns([5, 2])
        topic = escape_markdown(str(request.input.get("topic", "")))
        head.markdown(f"{status_badge(request.status)} **{topic}**")
        when.caption(f"{escape_markdown(request.requested_by)} · {request.created_at.astimezone(browser_zone()):%Y-%m-%d %H:%M:%S}")
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


def throughput_frame(intervals: list[FinishedInInterval]) -> pd.DataFrame:
    return pd.DataFrame(
        {"Succeeded": [i.succeeded for i in intervals], "Failed": [i.failed for i in intervals]},
        index=pd.Index([i.interval_start.astimezone(browser_zone()) for i in intervals], name="Finished"),
    )


def show_throughput(figures: OverviewFigures) -> None:
    st.subheader("Finished requests")
    per_minute, per_hour = st.tabs(["Last hour, per minute", "Last day, per hour"])
    colours = ["#2e7d32", "#c62828"]
    for tab, intervals, when in ((per_minute, figures.finished_per_minute, "hour"), (per_hour, figures.finished_per_hour, "day")):
        if not any(i.succeeded or i.failed for i in intervals):
            tab.caption(f"No request has finished in the last {when}.")  # an empty chart reads as broken
        else:
            tab.bar_chart(throughput_frame(intervals), color=colours)


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
            "Last failed": [f.last_failed_at.astimezone(browser_zone()) for f in figures.failures],
            "Latest message": [f.latest_message or "" for f in figures.failures],
        }
    )
    st.dataframe(frame, hide_index=True)
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


st.set_page_config(page_title="Inkwell", page_icon=":material/edit_note:", layout="wide")
# The pages the signed-in role may use, Home first; before sign-in, the sign-in form alone.
console_navigation(home).run()
