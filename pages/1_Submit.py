"""Submit: queue one request, or many at once from pasted topics or a CSV file, to start now or later."""

from __future__ import annotations

from collections.abc import Sequence

import pydantic
import streamlit as st

from console_kinds import FORMS_BY_KIND
from console_time import when_here
from console_ui import (
    START_IN,
    SUBMITTERS,
    StartRefused,
    choose_start,
    chosen_start,
    current_user,
    database,
    forget_submission,
    is_duplicate_submission,
    page_header,
    plural,
    show_price,
    show_unavailable,
)
from db.connection import QueueUnavailable
from queue_tasks.submit import JOB_KINDS, SUBMIT_PAGE_KINDS, SubmitError, submit_requests

def queue_requests(kind: str, requests: Sequence[pydantic.BaseModel], *, refused: int = 0) -> None:
    """Submit the requests in one batch (one transaction) and say what happened."""
    requester = current_user().display_name
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
    when = f", to start at {when_here(start)}" if start else ""
    also = f" {plural(refused, 'line')} refused (listed below)." if refused else ""
    st.success(f"Queued {plural(len(requests), 'request')}{when}.{also}", icon=":material/check_circle:")
    st.page_link("pages/2_Live.py", label="Watch progress on the Live page", icon=":material/monitoring:")


st.set_page_config(page_title="Submit · Inkwell", layout="wide")
page_header("Submit", roles=SUBMITTERS)
st.caption("Each request becomes a background job. Queue one, or many at once; now or later.")

kind = st.selectbox("Kind of request", SUBMIT_PAGE_KINDS, format_func=lambda name: JOB_KINDS[name].label, key="submit_kind")
show_price(kind)
choose_start()
FORMS_BY_KIND[kind](queue_requests)
