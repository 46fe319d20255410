"""Workers and queues: per queue what waits, runs and failed lately; pause and resume a queue;
the workers and their heartbeats. The panel refreshes itself."""

from __future__ import annotations

import streamlit as st

from console_time import ago, exact_here
from console_ui import (
    QUEUE_RUNNERS,
    current_user,
    database,
    escape_markdown,
    page_header,
    runs_the_queue,
    show_model_outage,
    show_unavailable,
    show_workers,
)
from db.connection import QueueUnavailable
from db.people import ActionRefused
from db.queues import QueueNameError, QueueSummary, list_workers, pause_queue, queue_summaries, resume_queue
from inkwell_settings import get_settings
from queue_tasks.submit import DEFAULT_QUEUE

REFRESH_SECONDS = 2.0


def notify(kind: str, text: str) -> None:
    st.session_state["queues_notice"] = (kind, text)


def show_notice() -> None:
    notice = st.session_state.pop("queues_notice", None)
    if notice:
        kind, text = notice
        {"success": st.success, "warning": st.warning, "error": st.error}[kind](text)


def pause(queue_name: str) -> None:
    who = current_user().display_name
    try:
        with database() as conn:
            paused = pause_queue(conn, queue_name, paused_by=who)
    except (QueueNameError, ActionRefused) as problem:
        notify("warning", str(problem))
    except QueueUnavailable:
        notify("error", "Queue unavailable — nothing was paused; try again later.")
    else:
        name = escape_markdown(queue_name.strip())
        notify("success", f"Paused {name}: no worker starts its jobs until it is resumed." if paused else f"{name} was already paused.")


def resume(queue_name: str) -> None:
    who = current_user().display_name
    try:
        with database() as conn:
            resumed = resume_queue(conn, queue_name, resumed_by=who)
    except ActionRefused as refusal:
        notify("warning", str(refusal))
    except QueueUnavailable:
        notify("error", "Queue unavailable — nothing was resumed; try again later.")
    else:
        name = escape_markdown(queue_name)
        notify("success", f"Resumed {name}: workers take its jobs again." if resumed else f"{name} was not paused.")


def pause_by_name() -> None:
    pause(st.session_state.get("pause_queue_name", ""))


def show_queue(queue: QueueSummary) -> None:
    with st.container(border=True):
        name, waiting, scheduled, running, failed, action = st.columns([3, 1, 1, 1, 1, 2])
        name.markdown(f"**{escape_markdown(queue.queue_name)}**")
        if queue.is_paused:
            name.caption(f":orange[Paused] by {escape_markdown(queue.paused_by or '')} {ago(queue.paused_at)}",
                         help=exact_here(queue.paused_at))
        waiting.metric("Waiting", f"{queue.waiting:,}")
        scheduled.metric("Scheduled", f"{queue.scheduled:,}")
        running.metric("Running", f"{queue.running:,}")
        failed.metric("Failed (1 h)", f"{queue.failed_last_hour:,}")
        if not runs_the_queue(current_user()):
            return  # analysts read; operators pause and resume
        if queue.is_paused:
            action.button("Resume", key=f"resume_{queue.queue_name}", type="primary", on_click=resume, args=(queue.queue_name,))
        else:
            action.button("Pause", key=f"pause_{queue.queue_name}", on_click=pause, args=(queue.queue_name,))


@st.fragment(run_every=REFRESH_SECONDS)
def queues_and_workers() -> None:
    show_notice()
    try:
        with database() as conn:
            queues = queue_summaries(conn, always_listed=[DEFAULT_QUEUE])
            workers = list_workers(conn, stale_after_seconds=get_settings().stalled_worker_seconds)
    except QueueUnavailable:
        show_unavailable()
        return
    st.subheader("Queues")
    for queue in queues:
        show_queue(queue)
    show_workers(workers)


st.set_page_config(page_title="Workers and queues · Inkwell", layout="wide")
user = page_header("Workers and queues", roles=(*QUEUE_RUNNERS, "analyst"))
show_model_outage()
st.caption(
    "Pausing a queue stops every worker from starting its jobs (jobs already running finish); "
    "resuming lets them start at once."
    + ("" if runs_the_queue(user) else " Operators pause and resume queues; this view is read-only.")
)
queues_and_workers()
if runs_the_queue(user):
    with st.expander("Pause a queue that is not listed"):
        with st.form("pause_other_queue", border=False):
            st.text_input("Queue name", key="pause_queue_name", max_chars=40, placeholder="e.g. bulk")
            st.form_submit_button("Pause queue", on_click=pause_by_name)
