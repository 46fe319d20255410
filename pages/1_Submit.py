"""Submit: queue one request, or many at once from pasted topics or a CSV file, to start now or later."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pydantic
import streamlit as st

from console_kinds import FORMS_BY_KIND
from console_time import when_here
from console_kinds.titles import show_refused_lines
from console_ui import (
    START_IN,
    TYPED_TEXT_NOTES_KEY,
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
    take_notice,
)
from db.connection import QueueUnavailable
from queue_tasks.bulk_input import RefusedLine
from queue_tasks.submit import JOB_KINDS, SUBMIT_PAGE_KINDS, SubmitError, submit_requests

# After a successful submit the page runs again: a drawn widget's value cannot be changed, so the
# form's new values (empty, or the refused lines) wait here until its widgets are drawn again.
FORM_RESET_KEY = "submit_form_reset"
NOTICE_KEY = "submit_notice"


def queue_requests(
    kind: str,
    requests: Sequence[pydantic.BaseModel],
    *,
    refused: Sequence[RefusedLine] = (),
    reset: Mapping[str, object] | None = None,
    refused_left_in_form: bool = False,
) -> None:
    """Submit the requests in one batch (one transaction) and say what happened.

    Queued: the form's fields get the values in `reset` (what was queued leaves the form; refused
    lines stay) and the page runs again, saying what was queued. Not queued: the form keeps
    everything, and the reason is shown beside it."""
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
    also = f" {plural(len(refused), 'line')} refused (listed below)." if refused else ""
    st.session_state[NOTICE_KEY] = (
        f"Queued {plural(len(requests), 'request')}{when}.{also}", list(refused), refused_left_in_form,
        st.session_state.get(TYPED_TEXT_NOTES_KEY, []),  # what the cleaning of typed text changed
    )
    st.session_state[FORM_RESET_KEY] = dict(reset or {})
    st.rerun()


def show_what_was_queued() -> None:
    """The outcome of the submit that ran the page again, until the user acts again (`take_notice`).
    Drawn in a container that is there on every run: the page's elements keep their places, so the
    browser keeps the form's tab open."""
    with st.container():
        if notice := take_notice(NOTICE_KEY):
            message, refused, left_in_form, cleaned = notice
            st.success(message, icon=":material/check_circle:")
            for note in cleaned:
                st.warning(note, icon=":material/cleaning_services:")
            st.page_link("pages/2_Live.py", label="Watch progress on the Live page", icon=":material/monitoring:")
            if refused:
                show_refused_lines(refused, left_in_form=left_in_form)


st.set_page_config(page_title="Submit · Inkwell", layout="wide")
page_header("Submit", roles=SUBMITTERS)
st.caption("Each request becomes a background job. Queue one, or many at once; now or later.")
for key, value in st.session_state.pop(FORM_RESET_KEY, {}).items():
    st.session_state[key] = value
show_what_was_queued()
st.session_state[TYPED_TEXT_NOTES_KEY] = []  # this run's, from here on

kind = st.selectbox("Kind of request", SUBMIT_PAGE_KINDS, format_func=lambda name: JOB_KINDS[name].label, key="submit_kind")
show_price(kind)
choose_start()
FORMS_BY_KIND[kind](queue_requests)
