"""Inkwell console — home page: request titles, and watch the latest requests live."""

from __future__ import annotations

import pydantic
import streamlit as st

from console_ui import (
    database,
    escape_markdown,
    forget_submission,
    is_duplicate_submission,
    page_header,
    show_unavailable,
    status_badge,
)
from db.connection import QueueUnavailable
from db.requests import GenerationRequest, list_recent_requests
from queue_tasks.models import TitlesInput, describe_validation_error
from queue_tasks.submit import SubmitError, submit_titles_request

st.set_page_config(page_title="Inkwell", page_icon=":material/edit_note:", layout="wide")
page_header("Inkwell")
st.caption("Ask the model for titles. The work runs as a background job; this page follows it live.")

with st.form("titles_form"):
    topic = st.text_area("Topic", placeholder="e.g. composting in small apartments", max_chars=500)
    left, middle, right = st.columns([2, 2, 1])
    audience = left.text_input("Audience (optional)", placeholder="e.g. city renters")
    tone = middle.text_input("Tone (optional)", placeholder="e.g. friendly")
    count = right.number_input("Number of titles", min_value=1, max_value=20, value=5, step=1)
    submitted = st.form_submit_button("Request titles", type="primary")

if submitted:
    requester = st.session_state.get("requester", "").strip()
    try:
        data = TitlesInput(topic=topic, audience=audience, tone=tone, count=int(count))
    except pydantic.ValidationError as error:
        st.error(f"Nothing was queued. {describe_validation_error(error)}", icon=":material/error:")
    else:
        content = {"kind": "titles", "input": data.model_dump(), "requester": requester}
        if not requester:
            st.warning("Enter your name in the sidebar first, so your requests can be found later.")
        elif is_duplicate_submission(content):
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
                st.success(f"Queued: titles for “{escape_markdown(data.topic)}”. Progress shows below.")


def show_request(request: GenerationRequest) -> None:
    with st.container(border=True):
        head, when = st.columns([5, 2])
        topic = escape_markdown(str(request.input.get("topic", "")))
        head.markdown(f"{status_badge(request.status)} **{topic}**")
        when.caption(f"{escape_markdown(request.requested_by)} · {request.created_at:%Y-%m-%d %H:%M:%S}")
        if request.status in ("queued", "scheduled", "running"):
            eta = f" · about {request.eta_seconds} s left" if request.eta_seconds is not None else ""
            st.progress(request.progress / 100, text=f"{request.current_step}{eta}")
        elif request.status == "succeeded" and request.result:
            titles = request.result.get("titles", [])
            st.markdown("\n".join(f"{i}. {escape_markdown(t)}" for i, t in enumerate(titles, 1)))
            source = "the offline model" if request.offline_model else escape_markdown(request.model_name or "the model")
            st.caption(f"From {source} · attempt {request.attempts}")
        elif request.status == "failed":
            st.error(f"`{request.error_code or 'failed'}` {escape_markdown(request.error_message or '')}")
        elif request.status == "cancelled":
            st.caption(request.current_step)


@st.fragment(run_every=1.0)
def recent_requests() -> None:
    st.subheader("Latest requests")
    try:
        with database() as conn:
            requests = list_recent_requests(conn, limit=20)
    except QueueUnavailable:
        show_unavailable()
        return
    if not requests:
        st.info("No jobs yet — submit a topic above.")
        return
    for request in requests:
        show_request(request)


recent_requests()
