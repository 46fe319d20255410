"""Workers and queues: per queue what waits, runs and failed lately; pause and resume a queue;
each worker's host, process id, concurrency, uptime, jobs it ended and the jobs it runs now, each
linked to its request. The panel refreshes itself."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from console_time import ago, duration, exact_here, in_viewer_zone, time_column
from console_ui import (
    QUEUE_RUNNERS,
    current_user,
    database,
    escape_markdown,
    page_header,
    plural,
    runs_the_queue,
    show_model_outage,
    show_unavailable,
    workers_heading_or_none_running,
)
from db.connection import QueueUnavailable
from db.people import ActionRefused
from db.queues import (
    QueueNameError,
    QueueSummary,
    RunningJob,
    WorkerDetail,
    pause_queue,
    queue_summaries,
    resume_queue,
    worker_details,
)
from inkwell_settings import get_settings
from queue_tasks.actions import discard_finished_requests
from queue_tasks.submit import DEFAULT_QUEUE, JOB_KINDS

REFRESH_SECONDS = 2.0
DISCARD_DEFAULT_DAYS = 30


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


def discard_finished() -> None:
    days = int(st.session_state.get("discard_older_than_days", DISCARD_DEFAULT_DAYS))
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    try:
        with database() as conn:
            discarded = discard_finished_requests(conn, finished_before=before)
    except ActionRefused as refusal:
        notify("warning", str(refusal))
    except QueueUnavailable:
        notify("error", "Queue unavailable — nothing was discarded; try again later.")
    else:
        notify("success", f"Discarded {plural(discarded, 'finished request')} finished over {plural(days, 'day')} ago."
               if discarded else f"No finished request left to discard from over {plural(days, 'day')} ago.")


def offer_discard_finished() -> None:
    """Operators clear old finished requests out of the lists; what analysts read stays."""
    with st.expander("Discard finished requests"):
        st.caption(
            "Discarded requests leave History and Home's latest requests. Nothing is deleted: analysts' data "
            "(the analytics views), the Overview and a link to a request still have them until the retention "
            "rules remove them (README, History housekeeping). Waiting and running requests are never discarded; "
            "each discard is in the audit log."
        )
        st.session_state.setdefault("discard_older_than_days", DISCARD_DEFAULT_DAYS)
        st.number_input("Finished more than this many days ago", min_value=0, max_value=3650, step=1,
                        key="discard_older_than_days")
        days = int(st.session_state["discard_older_than_days"])
        with st.popover("Discard", icon=":material/delete_sweep:"):
            st.markdown(f"Discard every request that finished over {plural(days, 'day')} ago from the console's lists?")
            st.button("Yes, discard them", key="discard_finished_confirm", type="primary", on_click=discard_finished)


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


def uptime_text(uptime: dt.timedelta | None) -> str:
    return "—" if uptime is None else duration(uptime.total_seconds())


def worker_name(worker: WorkerDetail) -> str:
    return f"Worker {worker.id}" + (f" · {worker.host} · pid {worker.pid}" if worker.host else "")


def show_running_job(job: RunningJob) -> None:
    """A running job, linked to its request's own page when it runs one."""
    if job.request_id is None:
        st.caption(f"{escape_markdown(job.task_name)} (job {job.job_id}, queue {escape_markdown(job.queue_name)})")
        return
    kind = JOB_KINDS[job.kind].label if job.kind in JOB_KINDS else (job.kind or job.task_name)
    label = f"{job.topic or kind} · {kind} · {job.progress or 0} %"
    st.page_link("pages/3_History.py", label=label, icon=":material/progress_activity:",
                 query_params={"request": str(job.request_id)})


def show_workers(workers: list[WorkerDetail]) -> None:
    if not workers_heading_or_none_running(workers):
        return
    frame = pd.DataFrame(
        {
            "Worker": [w.id for w in workers],
            "Host": [w.host or "—" for w in workers],
            "Process id": [str(w.pid) if w.pid else "—" for w in workers],
            "Concurrency": [str(w.concurrency) if w.concurrency else "—" for w in workers],
            "Uptime": [uptime_text(w.uptime) for w in workers],
            "Running": [len(w.running) for w in workers],
            "Succeeded": [w.jobs_succeeded for w in workers],
            "Failed": [w.jobs_failed for w in workers],
            "Retried": [w.jobs_retried for w in workers],
            "Last heartbeat": [in_viewer_zone(w.last_heartbeat) for w in workers],
            "State": ["stale: no recent heartbeat" if w.is_stale else "alive" for w in workers],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        column_config={"Last heartbeat": time_column()},
    )
    stale_after = get_settings().stalled_worker_seconds
    st.caption(
        "Succeeded, failed and retried: jobs each worker ended since it started (failed: no attempt left; "
        f"retried: handed back for another attempt). A worker silent for over {stale_after:g} s is presumed "
        "dead; its running jobs are put back in the queue."
    )
    if stale := [w for w in workers if w.is_stale]:
        st.warning(
            f"{len(stale)} worker(s) missed their heartbeat for over {stale_after:g} s; "
            "their running jobs are put back in the queue.",
            icon=":material/heart_broken:",
        )
    for worker in workers:
        if not worker.running:
            continue
        with st.container(border=True):
            st.markdown(f"**{escape_markdown(worker_name(worker))}** runs now:")
            for job in worker.running:
                show_running_job(job)


@st.fragment(run_every=REFRESH_SECONDS)
def queues_and_workers() -> None:
    show_notice()
    try:
        with database() as conn:
            queues = queue_summaries(conn, always_listed=[DEFAULT_QUEUE])
            workers = worker_details(conn, stale_after_seconds=get_settings().stalled_worker_seconds)
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
    offer_discard_finished()
