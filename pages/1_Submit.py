"""Submit: queue one request, or many at once from pasted topics or a CSV file, to start now or later."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pydantic
import streamlit as st

from console_ui import (
    browser_zone,
    database,
    escape_markdown,
    forget_submission,
    is_duplicate_submission,
    page_header,
    show_unavailable,
)
from db.connection import QueueUnavailable
from queue_tasks.bulk_input import MAX_BULK_ROWS, BulkInput, BulkInputRefused, RefusedLine, parse_pasted_topics, parse_titles_csv
from queue_tasks.models import TitlesInput, describe_validation_error
from queue_tasks.submit import JOB_KINDS, SubmitError, submit_requests
from queue_tasks.titles import KIND as TITLES

START_NOW, START_IN, START_AT = "Start now", "In N minutes", "At a date and time"
MAX_START_IN_MINUTES = 7 * 24 * 60
# Big enough for MAX_BULK_ROWS rows of the longest topics; a larger file is refused by the uploader.
MAX_CSV_MEGABYTES = 20


class StartRefused(ValueError):
    """The chosen start time cannot be used; nothing is queued."""


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


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
    choice = st.session_state["start_choice"]
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


def queue_requests(kind: str, requests: Sequence[pydantic.BaseModel], *, refused: int = 0) -> None:
    """Submit the requests in one batch (one transaction) and say what happened."""
    requester = st.session_state["requester"].strip()
    if not requester:
        st.warning("Enter your name in the sidebar first, so your requests can be found later. Nothing was queued.")
        return
    try:
        start = chosen_start()
    except StartRefused as refusal:
        st.error(f"Nothing was queued. {refusal}")
        return
    choice = st.session_state["start_choice"]
    content = {
        "kind": kind,
        "inputs": [request.model_dump(mode="json") for request in requests],
        "requester": requester,
        # The choice, not the computed time: "in 30 minutes" clicked twice is the same request.
        "start": [choice, st.session_state.get("start_in_minutes") if choice == START_IN else start],
    }
    if is_duplicate_submission(content):
        st.info("That was just submitted; nothing more was queued.")
        st.page_link("pages/2_Live.py", label="Watch it on the Live page", icon=":material/monitoring:")
        return
    try:
        with database() as conn:
            submit_requests(conn, kind, requests, requested_by=requester, schedule_at=start)
    except QueueUnavailable:
        forget_submission(content)
        show_unavailable()
        return
    except SubmitError as error:
        forget_submission(content)
        st.error(f"Nothing was queued. {error}")
        return
    when = f", to start {start.astimezone(browser_zone()):%Y-%m-%d %H:%M %Z}" if start else ""
    also = f" {plural(refused, 'line')} refused (listed below)." if refused else ""
    st.success(f"Queued {plural(len(requests), 'request')}{when}.{also}", icon=":material/check_circle:")
    st.page_link("pages/2_Live.py", label="Watch progress on the Live page", icon=":material/monitoring:")


def show_refused_lines(refused: list[RefusedLine]) -> None:
    st.warning(f"{plural(len(refused), 'line')} refused — fix them and submit those lines again:")
    st.dataframe([{"Line": line.line, "Reason": line.reason} for line in refused], hide_index=True)


def queue_batch(batch: BulkInput) -> None:
    if batch.requests:
        queue_requests(TITLES, batch.requests, refused=len(batch.refused))
    else:
        st.error("Nothing was queued: every line was refused.")
    if batch.refused:
        show_refused_lines(batch.refused)


def titles_options(form: str) -> tuple[str, str, int]:
    left, middle, right = st.columns([2, 2, 1])
    audience = left.text_input("Audience (optional)", placeholder="e.g. city renters", max_chars=200, key=f"{form}_audience")
    tone = middle.text_input("Tone (optional)", placeholder="e.g. friendly", max_chars=200, key=f"{form}_tone")
    count = right.number_input("Number of titles", min_value=1, max_value=20, value=5, step=1, key=f"{form}_count")
    return audience, tone, int(count)


def one_titles_request() -> None:
    with st.form("one_request"):
        topic = st.text_area("Topic", placeholder="e.g. composting in small apartments", max_chars=500, key="one_topic")
        audience, tone, count = titles_options("one")
        submitted = st.form_submit_button("Submit", type="primary", key="one_submit")
    if submitted:
        try:
            data = TitlesInput(topic=topic, audience=audience, tone=tone, count=count)
        except pydantic.ValidationError as error:
            st.error(f"Nothing was queued. {describe_validation_error(error)}")
        else:
            queue_requests(TITLES, [data])


def pasted_titles_requests() -> None:
    with st.form("pasted_requests"):
        text = st.text_area(
            "Topics, one per line", height=240, key="pasted_topics",
            placeholder="composting in small apartments\nurban beekeeping\nwinter gardening",
        )
        st.caption("The audience, tone and number of titles below apply to every topic. Blank lines are skipped.")
        audience, tone, count = titles_options("pasted")
        submitted = st.form_submit_button("Submit these topics", type="primary", key="pasted_submit")
    if submitted:
        try:
            queue_batch(parse_pasted_topics(text, audience=audience, tone=tone, count=count))
        except BulkInputRefused as refusal:
            st.error(escape_markdown(str(refusal)))


def csv_titles_requests() -> None:
    with st.form("csv_requests"):
        upload = st.file_uploader(
            "CSV file", type=["csv", "tsv", "txt"], max_upload_size=MAX_CSV_MEGABYTES, key="csv_file"
        )
        st.caption(
            f"A header row first, naming the columns: **topic** (required), audience, tone, count (1–20, default 5). "
            f"Commas, semicolons or tabs between cells; UTF-8 text; at most {MAX_BULK_ROWS:,} rows."
        )
        submitted = st.form_submit_button("Submit the file's rows", type="primary", key="csv_submit")
    if submitted:
        if upload is None:
            st.warning("Choose a CSV file first.")
            return
        try:
            queue_batch(parse_titles_csv(upload.getvalue()))
        except BulkInputRefused as refusal:
            # The message may quote the file's header line: data, not markup.
            st.error(escape_markdown(f"“{upload.name}” was not queued. {refusal}"))


def titles_forms() -> None:
    one, pasted, upload = st.tabs(["One request", "Paste many topics", "Upload a CSV"])
    with one:
        one_titles_request()
    with pasted:
        pasted_titles_requests()
    with upload:
        csv_titles_requests()


# Each kind of job brings its own forms; JOB_KINDS decides which kinds are offered.
FORMS_BY_KIND = {TITLES: titles_forms}

st.set_page_config(page_title="Submit · Inkwell", page_icon=":material/edit_note:", layout="wide")
page_header("Submit")
st.caption("Each request becomes a background job. Queue one, or many at once; now or later.")

kind = st.selectbox("Kind of request", list(JOB_KINDS), format_func=lambda name: JOB_KINDS[name].label, key="submit_kind")
choose_start()
FORMS_BY_KIND[kind]()
