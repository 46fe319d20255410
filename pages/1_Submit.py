"""Submit: queue one request, or many at once from pasted topics or a CSV file, to start now or later."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pydantic
import streamlit as st

from console_kinds import FORMS_BY_KIND
from console_ui import (
    browser_zone,
    database,
    forget_submission,
    is_duplicate_submission,
    page_header,
    plural,
    show_unavailable,
)
from db.connection import QueueUnavailable
from queue_tasks.submit import JOB_KINDS, SubmitError, submit_requests

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


st.set_page_config(page_title="Submit · Inkwell", page_icon=":material/edit_note:", layout="wide")
page_header("Submit")
st.caption("Each request becomes a background job. Queue one, or many at once; now or later.")

kind = st.selectbox("Kind of request", list(JOB_KINDS), format_func=lambda name: JOB_KINDS[name].label, key="submit_kind")
choose_start()
FORMS_BY_KIND[kind](queue_requests)
