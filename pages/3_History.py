"""History: finished requests, newest first. Filter them, page through them, open one to see what
happened, retry or cancel one, the selected rows or everything the filter matches, export as CSV.

The table is a snapshot, read again when the filters or the page change, on Refresh, and by itself
within a second or two when a request is added or changes status (a change counter, migration 0090,
checked every second): row selections keep pointing at the rows the user saw. How many requests
match is counted once per filter set, and last: the table is on screen while it is counted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pandas as pd
import psycopg_pool
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from console_ui import (
    acting_connection,
    browser_zone,
    current_user,
    database,
    escape_markdown,
    get_job_manager,
    get_pool,
    may_act_on,
    note_rows_read,
    page_header,
    refresh_when_changed,
    runs_the_queue,
    session_token,
    show_unavailable,
    status_badge,
    take_notice,
)
from console_kinds import show_result
from console_time import ago, exact_here, in_viewer_zone, time_column
from db.connection import QueueUnavailable
from db.people import User
from db.history import (
    MIN_SEARCH_CHARS,
    PAGE_SIZE,
    HistoryFilter,
    HistoryPage,
    HistoryRow,
    JobEvent,
    PageStart,
    count_history_up_to,
    count_limit,
    export_history_csv,
    history_page,
    matching_requests,
    request_events,
)
from db.requests import ACTIVE_STATUSES, TERMINAL_STATUSES, GenerationRequest, get_request
from db.webhooks import DeliveryAttempt, list_deliveries
from queue_tasks.actions import RETRYABLE_STATUSES, ActionRefused, cancel_request, cancel_requests, retry_request, retry_requests
from queue_tasks.submit import JOB_KINDS

EXPORT_MAX_ROWS = 100_000
# A bulk action runs one transaction per request; larger sets are done in several confirmed rounds.
BULK_MAX_REQUESTS = 1_000
ACTIONABLE = {"retry": RETRYABLE_STATUSES, "cancel": ACTIVE_STATUSES}
VERBS = {"retry": "Retry", "cancel": "Cancel"}
DONE = {"retry": "retried", "cancel": "cancelled"}
# Permanent failures: the same input fails the same way however often it is retried.
RETRY_WILL_NOT_HELP = {
    "url_refused": "Retrying will not help: Inkwell does not fetch that address. Submit a new request with a public http(s) address.",
}
# The table reads its rows again when a request is added, removed or changes status.
WATCHED = ("request_status",)


@dataclass(frozen=True)
class Snapshot:
    filters: HistoryFilter
    start: PageStart | None
    page: HistoryPage


@dataclass(frozen=True)
class MatchCount:
    """How many requests match the filters, counted no further than `limit` + 1."""

    filters: HistoryFilter
    counted: int
    limit: int

    @property
    def is_cut_short(self) -> bool:
        return self.counted > self.limit

    def describe(self) -> str:
        return f"more than {self.limit:,}" if self.is_cut_short else f"{self.counted:,}"


@dataclass(frozen=True)
class BulkPlan:
    """A bulk action waiting for the user's confirmation, on exactly the requests counted."""

    action: str
    request_ids: list[uuid.UUID]
    statuses: list[str]
    more_match: bool


# --- what happened after a click, shown at the top of the next run ---


def notify(kind: str, text: str) -> None:
    st.session_state["history_notice"] = (kind, text)


def show_notice() -> None:
    notice = take_notice("history_notice")
    if notice:
        kind, text = notice
        {"success": st.success, "warning": st.warning, "info": st.info, "error": st.error}[kind](text)


# --- filters and paging ---


def filter_bar() -> HistoryFilter:
    statuses_col, kind_col, dates_col = st.columns([3, 1, 2])
    statuses = statuses_col.multiselect(
        "Status", [*TERMINAL_STATUSES, *ACTIVE_STATUSES], default=list(TERMINAL_STATUSES), key="history_status",
        help="Finished requests by default; add queued or running ones to cancel them in bulk.",
    )
    kind = kind_col.selectbox(
        "Kind", [None, *JOB_KINDS], format_func=lambda k: "Any" if k is None else JOB_KINDS[k].label, key="history_kind"
    )
    dates = dates_col.date_input("Submitted between", value=(), key="history_dates")
    requester_col, text_col = st.columns([1, 2])
    requester = requester_col.text_input("Requester", key="history_requester", placeholder="e.g. Ana from Marketing", max_chars=100)
    text = text_col.text_input("Text in topic or titles", key="history_text", placeholder="e.g. compost", max_chars=200).strip()
    if 0 < len(text) < MIN_SEARCH_CHARS:
        text_col.caption(f"Type at least {MIN_SEARCH_CHARS} characters to search.")
        text = ""
    return HistoryFilter(
        statuses=tuple(statuses) or TERMINAL_STATUSES,
        kind=kind,
        requester=requester.strip() or None,
        submitted_from=start_of_day(dates[0]) if len(dates) > 0 else None,
        submitted_before=start_of_day(dates[1] + dt.timedelta(days=1)) if len(dates) > 1 else None,
        text=text or None,
        organization_id=editors_organization(current_user()),
    )


def editors_organization(user: User) -> int | None:
    """An editor reads their organization's requests: said explicitly too, so History stays fast."""
    return user.organization_id if user.role == "editor" else None


def start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=browser_zone())


def page_starts() -> list[PageStart]:
    """The keyset of every page between the newest and the current one: Older pushes, Newer pops."""
    return st.session_state.setdefault("history_starts", [])


def reload_history() -> None:
    st.session_state.pop("history_snapshot", None)
    st.session_state.pop("history_count", None)
    st.session_state.pop("history_waiting", None)


def go_older(last_row: PageStart) -> None:
    page_starts().append(last_row)
    st.session_state.pop("history_snapshot", None)  # another page of the same matches: the count stays


def go_newer() -> None:
    page_starts().pop()
    st.session_state.pop("history_snapshot", None)


def load_snapshot(filters: HistoryFilter) -> Snapshot:
    snapshot: Snapshot | None = st.session_state.get("history_snapshot")
    starts = page_starts()
    if snapshot is not None and snapshot.filters != filters:
        starts.clear()  # other filters: back to the newest page, and no pending action on the old ones
        dismiss_plan()
    start = starts[-1] if starts else None
    if snapshot is None or snapshot.filters != filters or snapshot.start != start:
        note_rows_read("history", WATCHED)
        with database() as conn:
            page = history_page(conn, filters, after=start)
        snapshot = Snapshot(filters, start, page)
        st.session_state["history_snapshot"] = snapshot
        st.session_state.pop("history_stale", None)
        # A new table widget, so no selection survives onto rows the user has not seen.
        st.session_state["history_table_version"] = st.session_state.get("history_table_version", 0) + 1
    elif st.session_state.pop("history_stale", False):
        snapshot = refreshed(snapshot)
    return snapshot


def selected_positions() -> list[int]:
    table = st.session_state.get(f"history_table_{st.session_state.get('history_table_version', 0)}")
    return list(table["selection"]["rows"]) if table else []


def refreshed(snapshot: Snapshot) -> Snapshot:
    """The same filters and page read again after the rows changed. The table keeps its widget, so
    the selection and the scroll position stay, unless a selected row would move: then the table
    waits until the selection is cleared (or Refresh), and says what is waiting."""
    note_rows_read("history", WATCHED)
    with database() as conn:
        page = history_page(conn, snapshot.filters, after=snapshot.start)
    fresh = Snapshot(snapshot.filters, snapshot.start, page)
    st.session_state.pop("history_count", None)
    positions = selected_positions()
    old_ids = [snapshot.page.rows[i].id for i in positions if i < len(snapshot.page.rows)]
    new_ids = [page.rows[i].id for i in positions if i < len(page.rows)]
    if positions and old_ids != new_ids:
        st.session_state["history_waiting"] = True
        return snapshot
    st.session_state.pop("history_waiting", None)
    st.session_state["history_snapshot"] = fresh
    return fresh


def mark_stale() -> None:
    st.session_state["history_stale"] = True


def load_count(filters: HistoryFilter) -> MatchCount:
    count: MatchCount | None = st.session_state.get("history_count")
    if count is None or count.filters != filters:
        limit = count_limit(filters)
        with database() as conn:
            count = MatchCount(filters, count_history_up_to(conn, filters, limit + 1), limit)
        st.session_state["history_count"] = count
    return count


def show_empty_state(filters: HistoryFilter) -> None:
    if page_starts():
        st.info("No older requests match. Go back with Newer.")
        st.button("Newer", key="history_newer", on_click=go_newer)
    elif filters == HistoryFilter(organization_id=filters.organization_id):
        st.info("No finished requests yet — submit a topic on the home page; it shows here once it ends.")
    else:
        st.info("No requests match these filters — clear a filter, pick more statuses or widen the dates.")
    st.caption("This list updates by itself as requests end.")
    st.button("Refresh", key="history_refresh_empty", on_click=reload_history, icon=":material/refresh:")


def history_table(page: HistoryPage) -> list[HistoryRow]:
    """The page as a table; returns the rows the user selected."""
    frame = pd.DataFrame(
        {
            "Submitted": [in_viewer_zone(row.created_at) for row in page.rows],
            "Status": [row.status for row in page.rows],
            "Kind": [JOB_KINDS[row.kind].label if row.kind in JOB_KINDS else row.kind for row in page.rows],
            "Topic": [row.topic or "" for row in page.rows],
            "Requester": [row.requested_by for row in page.rows],
            "Attempts": [row.attempts for row in page.rows],
            "Error": [row.error_code or "" for row in page.rows],
            "Finished": [in_viewer_zone(row.finished_at) for row in page.rows],
        }
    )
    when = time_column()
    event = st.dataframe(
        frame,
        key=f"history_table_{st.session_state['history_table_version']}",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        column_config={"Submitted": when, "Finished": when},
    )
    return [page.rows[i] for i in event.selection.rows]


def page_caption(snapshot: Snapshot, matching: str) -> str:
    first = len(page_starts()) * PAGE_SIZE + 1
    shown = f"{first:,}–{first + len(snapshot.page.rows) - 1:,}"
    return f"Requests {shown} {matching}, newest first. Select rows to act on them."


def pager(snapshot: Snapshot) -> DeltaGenerator:
    """The paging buttons; returns the caption's place, filled in once the matches are counted."""
    newer, where, refresh, older = st.columns([1, 3, 1, 1])
    newer.button("Newer", key="history_newer", disabled=not page_starts(), on_click=go_newer)
    caption = where.empty()
    caption.caption(page_caption(snapshot, "(counting the matches…)"))
    if st.session_state.get("history_waiting"):
        where.caption(":material/update: Newer changes are waiting: they show when you clear your selection or Refresh.")
    refresh.button("Refresh", key="history_refresh", on_click=reload_history)
    older.button(
        "Older", key="history_older", disabled=not snapshot.page.has_older,
        on_click=go_older, args=(snapshot.page.rows[-1].page_key,),
    )
    return caption


def show_count(snapshot: Snapshot, caption: DeltaGenerator, export_note: DeltaGenerator) -> None:
    try:
        count = load_count(snapshot.filters)
    except QueueUnavailable:
        caption.caption(page_caption(snapshot, "(the matches could not be counted)"))
        return
    caption.caption(page_caption(snapshot, f"of {count.describe()} matching"))
    if count.is_cut_short:
        export_note.caption(f"The CSV holds the newest {EXPORT_MAX_ROWS:,} matching requests at most; narrow the filter for older ones.")


# --- bulk actions ---


def describe_requests(count: int, statuses: list[str]) -> str:
    noun = "request" if count == 1 else "requests"
    return f"{count:,} {' or '.join(statuses)} {noun}"


def plan(action: str, rows: list[HistoryRow], more_match: bool) -> None:
    st.session_state["history_plan"] = BulkPlan(
        action=action,
        request_ids=[row.id for row in rows],
        statuses=[s for s in ACTIONABLE[action] if any(row.status == s for row in rows)],
        more_match=more_match,
    )


def plan_for_selected(action: str, selected: list[HistoryRow]) -> None:
    rows = [row for row in selected if row.status in ACTIONABLE[action]]
    if not rows:
        notify("info", f"None of the selected requests can be {DONE[action]}: only {' or '.join(ACTIONABLE[action])} ones can.")
        return
    plan(action, rows, more_match=False)


def plan_for_matching(action: str, filters: HistoryFilter) -> None:
    statuses = tuple(s for s in filters.statuses if s in ACTIONABLE[action])
    if not statuses:
        notify("info", f"The filter shows no requests that can be {DONE[action]}: add the {' or '.join(ACTIONABLE[action])} status.")
        return
    try:
        with database() as conn:
            rows = matching_requests(conn, filters.model_copy(update={"statuses": statuses}), BULK_MAX_REQUESTS + 1)
    except QueueUnavailable:
        notify("error", "Queue unavailable — try again later.")
        return
    if not rows:
        notify("info", f"No {' or '.join(statuses)} requests match the filter.")
        return
    plan(action, rows[:BULK_MAX_REQUESTS], more_match=len(rows) > BULK_MAX_REQUESTS)


def carry_out(bulk: BulkPlan) -> None:
    dismiss_plan()
    run = retry_requests if bulk.action == "retry" else cancel_requests
    try:
        with database() as conn:
            outcome = run(conn, get_job_manager(), bulk.request_ids)
    except QueueUnavailable:
        notify("error", "Queue unavailable — the action stopped part-way. Once the database is back, the table shows what was done.")
        reload_history()
        return
    done = f"{DONE[bulk.action].capitalize()} {len(outcome.done):,} of {len(bulk.request_ids):,} requests."
    if outcome.refused:
        reason = next(iter(outcome.refused.values()))
        notify("warning", f"{done} {len(outcome.refused):,} refused, for example: {reason}")
    else:
        notify("success", done)
    reload_history()


def dismiss_plan() -> None:
    st.session_state.pop("history_plan", None)


def confirm_plan(bulk: BulkPlan) -> None:
    what = describe_requests(len(bulk.request_ids), bulk.statuses)
    question = f"{VERBS[bulk.action]} {'the newest ' if bulk.more_match else ''}{what}?"
    if bulk.more_match:
        question += " More match the filter: run it again afterwards for the rest."
    with st.container(border=True):
        st.warning(question, icon=":material/help:")
        confirm, keep = st.columns(2)
        confirm.button("Confirm", key="bulk_confirm", type="primary", on_click=carry_out, args=(bulk,))
        keep.button("Keep them as they are", key="bulk_dismiss", on_click=dismiss_plan)


def bulk_actions(filters: HistoryFilter, selected: list[HistoryRow]) -> None:
    retry_selected, cancel_selected, retry_all, cancel_all = st.columns(4)
    # Offered only for what can work: a finished row cannot be cancelled, a waiting one not retried.
    retryable = [row for row in selected if row.status in ACTIONABLE["retry"]]
    cancellable = [row for row in selected if row.status in ACTIONABLE["cancel"]]
    retry_selected.button(
        f"Retry selected ({len(retryable)})", key="bulk_retry_selected", disabled=not retryable,
        on_click=plan_for_selected, args=("retry", selected),
    )
    cancel_selected.button(
        f"Cancel selected ({len(cancellable)})", key="bulk_cancel_selected", disabled=not cancellable,
        on_click=plan_for_selected, args=("cancel", selected),
    )
    retry_all.button("Retry all matching…", key="bulk_retry_matching", on_click=plan_for_matching, args=("retry", filters))
    cancel_all.button("Cancel all matching…", key="bulk_cancel_matching", on_click=plan_for_matching, args=("cancel", filters))
    pending: BulkPlan | None = st.session_state.get("history_plan")
    if pending:
        confirm_plan(pending)


# --- export ---


def history_csv(pool: psycopg_pool.ConnectionPool, token: str, filters: HistoryFilter) -> str:
    # Runs on Streamlit's download thread, outside the page script: it gets the pool and the
    # session token, not the page's helpers.
    with acting_connection(pool, token) as conn:
        return export_history_csv(conn, filters, EXPORT_MAX_ROWS)


def export_button(filters: HistoryFilter) -> DeltaGenerator:
    """The export button; returns the place of its note, written once the matches are counted."""
    pool, token = get_pool(), session_token()
    st.download_button(
        "Export CSV", key="history_export", data=lambda: history_csv(pool, token, filters),
        file_name=f"inkwell-history-{dt.date.today():%Y%m%d}.csv", mime="text/csv", on_click="ignore",
        icon=":material/download:",
    )
    return st.empty()


# --- one request in detail ---


def retry_one(request_id: uuid.UUID) -> None:
    try:
        with database() as conn:
            retry_request(conn, get_job_manager(), request_id)
    except ActionRefused as refusal:
        notify("warning", str(refusal))
    except QueueUnavailable:
        notify("error", "Queue unavailable — the request was not retried; try again later.")
    else:
        notify("success", "Queued again: a new attempt of the same request. What happened before stays in its timeline.")
    reload_history()


def cancel_one(request_id: uuid.UUID) -> None:
    try:
        with database() as conn:
            outcome = cancel_request(conn, get_job_manager(), request_id)
    except ActionRefused as refusal:
        notify("warning", str(refusal))
    except QueueUnavailable:
        notify("error", "Queue unavailable — the request was not cancelled; try again later.")
    else:
        notify("success", "Cancelled." if outcome == "cancelled" else "Cancelling: the worker is stopping it.")
    reload_history()


def close_detail() -> None:
    st.query_params.pop("request", None)


def field_label(key: object) -> str:
    return str(key).replace("_", " ").capitalize()


def readable(value: object) -> str:
    """A field's value in words: no Python dicts or lists on screen."""
    if isinstance(value, dict):
        return "; ".join(f"{field_label(k)}: {readable(v)}" for k, v in value.items() if v not in (None, "", [], {})) or "—"
    if isinstance(value, list):
        return ", ".join(readable(v) for v in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def show_input_and_result(request: GenerationRequest) -> None:
    given, produced = st.columns(2)
    with given:
        st.markdown("**Input**")
        st.markdown(
            "\n".join(
                f"- {escape_markdown(field_label(k))}: {escape_markdown(readable(v))}"
                for k, v in request.input.items() if v not in (None, "", [], {})
            )
        )
    with produced:
        st.markdown("**Result**")
        show_result(request)
    if request.error_code or request.error_message:
        st.error(f"**{escape_markdown(request.error_code or 'error')}** {escape_markdown(request.error_message or '')}")
    if request.error_code in RETRY_WILL_NOT_HELP:
        st.caption(f":material/block: {RETRY_WILL_NOT_HELP[request.error_code]}")


def duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    return "—" if start is None or end is None else f"{(end - start).total_seconds():,.1f} s"


def show_timings(request: GenerationRequest) -> None:
    due = max(request.created_at, request.scheduled_at or request.created_at)
    attempts, waited, ran = st.columns(3)
    attempts.metric("Attempts", request.attempts)
    waited.metric("Waited", duration(due, request.started_at))
    ran.metric("Ran", duration(request.started_at, request.finished_at))
    moments = [("Submitted", request.created_at), ("Due", request.scheduled_at),
               ("First started", request.started_at), ("Finished", request.finished_at)]
    moments = [(label, at) for label, at in moments if at is not None]  # relative here, exact in the tooltip
    st.caption(" · ".join(f"{label} {ago(at)}" for label, at in moments),
               help="  \n".join(f"{label}: {exact_here(at)}" for label, at in moments))


def show_timeline(events: list[JobEvent]) -> None:
    st.markdown("**Event timeline**")
    if not events:
        st.caption("No queue events recorded (old events are deleted with their jobs).")
        return
    frame = pd.DataFrame(
        {"When": [in_viewer_zone(e.at) for e in events], "Event": [e.type for e in events], "Job": [e.job_id for e in events]}
    )
    st.dataframe(frame, key="history_timeline", hide_index=True,
                 column_config={"When": time_column(milliseconds=True)})


def show_webhook_deliveries(deliveries: list[DeliveryAttempt]) -> None:
    """Each attempt to POST this request's final status to its callback URL (HTTP API webhooks)."""
    st.markdown("**Webhook deliveries**")
    frame = pd.DataFrame({
        "When": [in_viewer_zone(d.attempted_at) for d in deliveries],
        "Attempt": [d.attempt for d in deliveries],
        "URL": [d.url for d in deliveries],
        "Answer": [d.status_code for d in deliveries],
        "Error": [d.error or "" for d in deliveries],
        "ms": [d.duration_ms for d in deliveries],
        "Message": [d.webhook_id for d in deliveries],
    })
    st.dataframe(frame, key="history_webhook_deliveries", hide_index=True,
                 column_config={"When": time_column()})


def request_actions(request: GenerationRequest) -> None:
    retry, cancel, close = st.columns(3)
    allowed = may_act_on(current_user(), request)
    if allowed and request.status in RETRYABLE_STATUSES:
        retry.button("Retry this request", key="detail_retry", type="primary", on_click=retry_one, args=(request.id,))
    if allowed and request.status in ACTIVE_STATUSES:
        cancel.button("Cancel this request", key="detail_cancel", on_click=cancel_one, args=(request.id,))
    if not allowed:
        retry.caption("Read-only: " + ("analysts do not cancel or retry." if current_user().role == "analyst"
                                       else "a colleague's request; only they or an operator can act on it."))
    if "request" in st.query_params:
        close.button("Close", key="detail_close", on_click=close_detail)


def show_detail(request_id: str) -> None:
    try:
        wanted = uuid.UUID(request_id)
    except ValueError:
        st.warning("That link does not name a request.")
        return
    try:
        with database() as conn:
            request = get_request(conn, wanted)
            events = request_events(conn, request) if request else []
            deliveries = list_deliveries(conn, request.id) if request else []
    except QueueUnavailable:
        show_unavailable()
        return
    if request is None:
        st.warning(
            "This request is not one you can see: it belongs to another organization, or the link is "
            "mistyped. Ask whoever sent the link.",
            icon=":material/link_off:",
        )
        return
    with st.container(border=True):
        st.markdown(f"{status_badge(request.status)} **{escape_markdown(str(request.input.get('topic', '')))}**")
        st.caption(f"Request {request.id} · {escape_markdown(request.kind)} · by {escape_markdown(request.requested_by)} "
                   f"· queue {escape_markdown(request.queue_name)} · this page's address opens it directly: "
                   "bookmark it or send it to a colleague")
        show_input_and_result(request)
        show_timings(request)
        show_timeline(events)
        if deliveries:
            show_webhook_deliveries(deliveries)
        request_actions(request)


@st.fragment(run_every=3.0)
def reload_when_database_is_back() -> None:
    try:
        with database():
            pass
    except QueueUnavailable:
        return
    st.rerun(scope="app")


# --- the page ---

st.set_page_config(page_title="History · Inkwell", layout="wide")
user = page_header("History")
st.caption("Every request once it has ended, newest first. Open one to see what happened; retry what failed.")
show_notice()
filters = filter_bar()
try:
    snapshot = load_snapshot(filters)
except QueueUnavailable:
    show_unavailable()
    reload_when_database_is_back()
    st.stop()

selected: list[HistoryRow] = []
if snapshot.page.rows:
    selected = history_table(snapshot.page)
    count_caption = pager(snapshot)
    if runs_the_queue(user):
        bulk_actions(filters, selected)
    export_note = export_button(filters)
else:
    show_empty_state(filters)

table_key = f"history_table_{st.session_state.get('history_table_version', 0)}"
if len(selected) == 1:
    # The address now opens this request directly: bookmark it or send it to a colleague.
    st.query_params["request"] = str(selected[0].id)
elif st.session_state.get("history_selected_in") == table_key:
    st.query_params.pop("request", None)  # the row was unselected: its detail closes
st.session_state["history_selected_in"] = table_key if len(selected) == 1 else None
detail_id = st.query_params.get("request")
if detail_id:
    st.subheader("Request")
    show_detail(detail_id)

# Last: everything above is on screen while the matches are counted.
if snapshot.page.rows:
    show_count(snapshot, count_caption, export_note)
refresh_when_changed("history", WATCHED, on_change=mark_stale)
