"""Site builds: every build with its sections' progress; retry the failed ones, cancel the rest,
regenerate, promote preview to production and roll production back."""

from __future__ import annotations

import uuid

import streamlit as st

from console_kinds.site_build import show_content, submit_build
from console_time import clock_here
from console_ui import (
    can_submit,
    current_user,
    database,
    escape_markdown,
    get_job_manager,
    page_header,
    plural,
    refresh_when_changed,
    show_unavailable,
    status_badge,
)
from db import sites
from db.connection import QueueUnavailable
from db.requests import ACTIVE_STATUSES
from queue_tasks.actions import cancel_requests, retry_requests
from queue_tasks.site_build import MODE_LABELS, BuildRefused, SectionRef, SiteDefinition
from queue_tasks.site_promotion import ACTION_LABELS, submit_promotion

STATE_BADGES = {
    "running": ":blue-badge[:material/progress_activity: running]",
    "succeeded": ":green-badge[:material/check_circle: succeeded]",
    "partially succeeded": ":orange-badge[:material/rule: partially succeeded]",
    "failed": ":red-badge[:material/error: failed]",
    "cancelled": ":orange-badge[:material/cancel: cancelled]",
}
WHOLE_SITE = "The whole site"


def notify(text: str, icon: str = ":material/info:") -> None:
    st.session_state["site_notice"] = (text, icon)


def retry_failed(batch_id: uuid.UUID) -> None:
    try:
        with database() as conn:
            failed = sites.batch_request_ids(conn, batch_id, ["failed"])
            outcome = retry_requests(conn, get_job_manager(), failed)
    except QueueUnavailable:
        notify("Nothing was retried: the queue is unavailable — try again later.", ":material/cloud_off:")
        return
    refused = f" {plural(len(outcome.refused), 'section')} could not be retried." if outcome.refused else ""
    notify(f"Re-queued {plural(len(outcome.done), 'failed section')}.{refused}", ":material/replay:")


def cancel_batch(batch_id: uuid.UUID) -> None:
    try:
        with database() as conn:
            unfinished = sites.batch_request_ids(conn, batch_id, list(ACTIVE_STATUSES))
            outcome = cancel_requests(conn, get_job_manager(), unfinished)
    except QueueUnavailable:
        notify("Nothing was cancelled: the queue is unavailable — try again later.", ":material/cloud_off:")
        return
    notify(f"Cancelled {plural(len(outcome.done), 'unfinished section')}; finished ones are kept.", ":material/cancel:")


def start_promotion(batch_id: uuid.UUID, action: str) -> None:
    try:
        with database() as conn:
            submit_promotion(conn, batch_id, action, requested_by=current_user().display_name)
    except QueueUnavailable:
        notify("Nothing was queued: the queue is unavailable — try again later.", ":material/cloud_off:")
    except BuildRefused as refusal:  # credits, limits, or (row-level security) not this user's build
        notify(f"Nothing was queued. {refusal}", ":material/block:")
    else:
        notify(f"{ACTION_LABELS[action]}: queued.", ":material/rocket_launch:")


def choose_batch(batches: list[sites.SiteBatchSummary]) -> sites.SiteBatchSummary | None:
    by_id = {str(b.id): b for b in batches}
    if pending := st.session_state.pop("site_batch_pending", None):
        st.session_state["site_batch"] = pending
    linked = st.query_params.get("build")
    if linked and linked != st.session_state.get("site_batch_linked"):
        st.session_state["site_batch_linked"] = linked  # a link (or a reload) opens its build, once
        if linked in by_id:
            st.session_state["site_batch"] = linked
        else:
            st.warning(
                "The linked site build is not one you can see: it belongs to another organization, or "
                "the link is mistyped. Showing the newest build instead.",
                icon=":material/link_off:",
            )
    st.session_state.setdefault("site_batch", str(batches[0].id))
    if st.session_state["site_batch"] not in by_id:
        st.session_state["site_batch"] = str(batches[0].id)
    st.selectbox(
        "Build",
        list(by_id),
        # No live counts here: the selector is drawn once per page run, the build view below refreshes itself.
        format_func=lambda i: f"{by_id[i].site_name} · {plural(by_id[i].total, 'section')} · {MODE_LABELS[by_id[i].mode].split(':')[0]} · "
        f"{by_id[i].requested_by} · {clock_here(by_id[i].created_at)}",
        key="site_batch",
    )
    # The address opens the chosen build directly: bookmark it or send it to a colleague.
    st.query_params["build"] = st.session_state["site_batch"]
    st.session_state["site_batch_linked"] = st.session_state["site_batch"]
    return by_id[st.session_state["site_batch"]]


def show_counts(batch: sites.SiteBatchSummary) -> None:
    columns = st.columns(6)
    for column, (label, value) in zip(
        columns,
        [("Total", batch.total), ("Queued", batch.queued), ("Running", batch.running), ("Succeeded", batch.succeeded),
         ("Failed", batch.failed), ("Cancelled", batch.cancelled)],
    ):
        column.metric(label, value)
    st.progress(batch.progress, text=f"{batch.finished} of {plural(batch.total, 'section')} finished")
    st.markdown(STATE_BADGES.get(batch.state, batch.state))
    if batch.state == "partially succeeded":
        st.warning(
            f"Partial success: {batch.succeeded} of {batch.total} sections succeeded; "
            f"{batch.failed} failed and {batch.cancelled} were cancelled. Retry the failed sections below.",
            icon=":material/rule:",
        )
    if batch.skipped_sections:
        st.caption(f"{plural(batch.skipped_sections, 'section')} already had content and were left as they were (mode “leave”).")


def show_sections(rows: list[sites.BatchSection]) -> None:
    st.dataframe(
        [
            {
                "Route": r.route,
                "Section": r.section,
                "Template": r.template,
                "Status": r.status,
                "Progress": r.progress,
                "Attempts": r.attempts,
                "Version": r.current_version,
                "Error": f"{r.error_code}: {r.error_message}" if r.error_code else "",
            }
            for r in rows
        ],
        hide_index=True,
        column_config={"Progress": st.column_config.ProgressColumn("Progress", min_value=0, max_value=100, format="%d%%")},
    )


def has_live_promotion(promotions: list[sites.PromotionSummary]) -> bool:
    """Whether this build's latest finished promotion or rollback was a promotion that copied something."""
    finished = sorted((p for p in promotions if p.status == "succeeded"), key=lambda p: p.created_at)
    return bool(finished) and finished[-1].action == "promote" and finished[-1].done > 0


def confirmed_button(column, label: str, question: str, *, key: str, on_click, args, disabled: bool, icon: str) -> None:
    """A one-click action that cannot be undone asks first: the button opens the question."""
    if disabled:
        column.button(label, key=f"{key}_disabled", disabled=True, icon=icon)
        return
    with column.popover(label, icon=icon):
        st.markdown(question)
        st.button(f"Yes, {label[0].lower()}{label[1:]}", key=key, type="primary", on_click=on_click, args=args)


def show_actions(batch: sites.SiteBatchSummary, promotions: list[sites.PromotionSummary]) -> None:
    retry, cancel, promote, rollback = st.columns(4)
    retry.button(
        "Retry failed sections", key=f"retry_{batch.id}", on_click=retry_failed, args=(batch.id,),
        disabled=not batch.failed, icon=":material/replay:",
    )
    cancel.button(
        "Cancel batch", key=f"cancel_{batch.id}", on_click=cancel_batch, args=(batch.id,),
        disabled=not (batch.queued or batch.running), icon=":material/cancel:",
    )
    confirmed_button(
        promote, ACTION_LABELS["promote"], "Copy this build's succeeded sections to production? Visitors see them at once.",
        key=f"promote_{batch.id}", on_click=start_promotion, args=(batch.id, "promote"),
        disabled=batch.environment != "preview" or not batch.succeeded, icon=":material/rocket_launch:",
    )
    promoted = has_live_promotion(promotions)
    confirmed_button(
        rollback, ACTION_LABELS["rollback"], "Put back in production what was there before this build's promotion?",
        key=f"rollback_{batch.id}", on_click=start_promotion, args=(batch.id, "rollback"),
        disabled=batch.environment != "preview" or not promoted, icon=":material/undo:",
    )
    if batch.environment == "preview" and not promoted:
        rollback.caption("Nothing of this build is in production, so there is nothing to roll back.")


def show_promotions(conn, batch: sites.SiteBatchSummary) -> None:
    promotions = sites.list_promotions(conn, batch.id)
    if not promotions:
        return
    st.subheader("Promotions and rollbacks")
    for p in promotions:
        with st.expander(
            f"{ACTION_LABELS.get(p.action, p.action)} · {p.status} · {p.done} done, {p.skipped} skipped, {p.failed} failed · "
            f"{p.requested_by} · {clock_here(p.created_at)}"
        ):
            st.dataframe(
                [{"Route": e.route, "Section": e.section, "Status": e.status, "Detail": e.message or ""}
                 for e in sites.list_promotion_entities(conn, p.id)],
                hide_index=True,
            )


def show_entity_content(rows: list[sites.BatchSection]) -> None:
    st.subheader("Content")
    labels = {f"{r.route} · {r.section}": r for r in rows}
    chosen = st.selectbox("Section", list(labels), key="site_content_section")
    if chosen:
        row = labels[chosen]
        st.caption(f"{status_badge(row.status)} · preview version {row.current_version or '—'}")
        show_content(row.current_content)


def regenerate(batch: sites.SiteBatchSummary, rows: list[sites.BatchSection], definition: dict | None) -> None:
    st.subheader("Regenerate")
    if definition is None:
        return
    with st.form(f"regenerate_{batch.id}"):
        targets = [WHOLE_SITE] + [f"{r.route} · {r.section}" for r in rows]
        target = st.selectbox("What", targets, key="regenerate_target")
        mode = st.radio("Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, key="regenerate_mode")
        submitted = st.form_submit_button("Regenerate", icon=":material/autorenew:")
    if submitted:
        only = None
        if target != WHOLE_SITE:
            route, section = target.split(" · ", 1)
            only = [SectionRef(route, section)]
        submit_build(SiteDefinition.model_validate(definition), mode, only=only)


@st.fragment(run_every=2.0)
def batch_view(batch_id: uuid.UUID) -> None:
    if notice := st.session_state.pop("site_notice", None):
        st.toast(escape_markdown(notice[0]), icon=notice[1])
    try:
        with database() as conn:
            batch = sites.get_batch(conn, batch_id)
            rows = sites.list_batch_sections(conn, batch_id)
            if batch is None:
                st.info("This build no longer exists.")
                return
            show_counts(batch)
            if can_submit(current_user()):
                show_actions(batch, sites.list_promotions(conn, batch_id))
            show_sections(rows)
            show_promotions(conn, batch)
    except QueueUnavailable:
        show_unavailable()
        return
    show_entity_content(rows)


st.set_page_config(page_title="Site builds · Inkwell", layout="wide")
user = page_header("Site builds")
st.caption("Each build runs one job per route × section. Start one on the Submit page (kind “Site build”).")
# New builds and their sections' states appear by themselves; the chosen build stays chosen (by id).
refresh_when_changed("site_builds", ("site_builds", "request_status"), on_change=lambda: None)
try:
    with database() as conn:
        batches = sites.list_batches(conn)
except QueueUnavailable:
    show_unavailable()
    st.stop()
if not batches:
    st.info("No site builds yet.", icon=":material/web:")
    if can_submit(current_user()):
        st.page_link("pages/1_Submit.py", label="Build a site on the Submit page", icon=":material/add_circle:")
    st.stop()
selected = choose_batch(batches)
batch_view(selected.id)
try:
    with database() as conn:
        regenerate_rows = sites.list_batch_sections(conn, selected.id)
        regenerate_definition = sites.get_batch_definition(conn, selected.id)
except QueueUnavailable:
    show_unavailable()
    st.stop()
if can_submit(user):
    regenerate(selected, regenerate_rows, regenerate_definition)
