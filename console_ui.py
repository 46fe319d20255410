"""What every page of the console shares: the sign-in gate and the signed-in user, the cached pool
(every query runs as that user, so the database's row-level security applies), the model banner,
status badges, safe rendering of model output, and the "queue unavailable" message.

Each page imports this module, so every page also runs on its own under AppTest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pandas as pd
import psycopg
import psycopg_pool
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.navigation.page import StreamlitPage

from procrastinate.manager import JobManager

from console_sessions import ADOPT_PATH, COOKIE_NAME, HANDOFFS, cookies_available
from console_time import (  # browser_zone: imported from here by the pages too
    SkippedLocalTime,
    aware_from_wall_clock,
    browser_zone,
    in_viewer_zone,
    time_column,
    when_here,
    zone_label,
)
from db.changes import ChangeCounters, Topic, read_change_counters
from db.connection import QueueUnavailable, console_connection, open_pool
from db.credits import TOP_UP_HINT, kind_costs
from db.credits import balance as credit_balance
from db.live import LiveRequest
from db.people import (
    ActionRefused,
    User,
    acting_as,
    end_session,
    sign_in,
    sign_in_with_identity,
    user_for_session,
)
from db.queues import QueuePause, model_outage, queue_pauses
from db.requests import GenerationRequest
from inkwell_settings import get_settings
from queue_tasks.actions import job_manager_for
from queue_tasks.models import clean_typed_text

def _cleaned_text_widget(widget, *, multiline: bool, bound: bool):
    """`widget` (st.text_input / st.text_area, or their DeltaGenerator methods) returning its value
    through clean_typed_text, with a warning beside the field when it changed anything."""
    if getattr(widget, "cleans_typed_text", False):
        return widget

    @functools.wraps(widget)
    def typed(*args, **kwargs):
        limits = {"max_chars": kwargs.get("max_chars"), "multiline": multiline}
        key, notes = kwargs.get("key"), []
        if key is not None and isinstance(st.session_state.get(key), str):
            # A value put into the field's state (a link, code, a restored session) is cleaned
            # before Streamlit itself handles it: a lone surrogate would break Streamlit there.
            stored, notes = clean_typed_text(st.session_state[key], **limits)
            if notes:
                st.session_state[key] = stored
        value = widget(*args, **kwargs)
        text, more = clean_typed_text(value, **limits)
        notes = notes + more
        if notes:
            place = st if bound else args[0]
            label = kwargs.get("label") or (args[0] if bound and args else args[1] if len(args) > 1 else "")
            note = f"{escape_markdown(str(label))}: {' '.join(notes)}"
            place.warning(note, icon=":material/cleaning_services:")
            # Kept for the Submit page, which says it again after a submit runs the page anew.
            st.session_state.setdefault(TYPED_TEXT_NOTES_KEY, []).append(note)
        return text

    typed.cleans_typed_text = True
    return typed


TYPED_TEXT_NOTES_KEY = "typed_text_notes"


def _clean_every_typed_text() -> None:
    """Every text field of every page goes through clean_typed_text (queue_tasks/models.py) before its
    value is used anywhere: NUL and control characters, lone surrogates and oversized text never
    reach a query, and a field that held them says what was done instead of a traceback."""
    for name, multiline in (("text_input", False), ("text_area", True)):
        setattr(DeltaGenerator, name, _cleaned_text_widget(getattr(DeltaGenerator, name), multiline=multiline, bound=False))
        setattr(st, name, _cleaned_text_widget(getattr(st, name), multiline=multiline, bound=True))


UNAVAILABLE_MESSAGE = "Queue unavailable — try again later. The page recovers by itself when the database is back."
STATUS_BADGES = {
    "scheduled": ":violet-badge[:material/schedule: scheduled]",
    "queued": ":gray-badge[:material/hourglass_empty: queued]",
    "running": ":blue-badge[:material/progress_activity: running]",
    "succeeded": ":green-badge[:material/check_circle: succeeded]",
    "failed": ":red-badge[:material/error: failed]",
    "cancelled": ":orange-badge[:material/cancel: cancelled]",
}
# A second click on Submit within this many seconds with the same content is the same request.
DUPLICATE_SUBMIT_WINDOW_SECONDS = 10.0


@st.cache_resource(show_spinner=False)
def _pool_for(database_url: str) -> psycopg_pool.ConnectionPool:
    _log_actions_to_stderr()
    return open_pool(database_url)


def _log_actions_to_stderr() -> None:
    """Submissions, cancels and retries are logged with their ids, as the worker logs the rest.

    Python's default (no handler, WARNING) would drop them in the console process.
    """
    inkwell_logger = logging.getLogger("inkwell")
    if not inkwell_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        inkwell_logger.addHandler(handler)
        inkwell_logger.setLevel(logging.INFO)


def get_pool() -> psycopg_pool.ConnectionPool:
    url = get_settings().database_url
    if not url:
        st.error("DATABASE_URL is not set. Start Inkwell with `./run`, which starts a database, or set DATABASE_URL.")
        st.stop()
    return _pool_for(url)


@st.cache_resource(show_spinner=False)
def _job_manager_for(database_url: str) -> JobManager:
    return job_manager_for(_pool_for(database_url))


def get_job_manager() -> JobManager:
    """Procrastinate's JobManager on the console's pool, for cancel and retry."""
    get_pool()
    return _job_manager_for(get_settings().database_url)


@contextlib.contextmanager
def database() -> Iterator[psycopg.Connection]:
    """A connection for one piece of the page, acting through the signed-in user's session token in
    one transaction, so the database's row-level security decides what it reads and may change.
    Raises QueueUnavailable when the database is down."""
    current_user()
    with acting_connection(get_pool(), session_token()) as conn:
        yield conn


@contextlib.contextmanager
def acting_connection(pool: psycopg_pool.ConnectionPool, token: str) -> Iterator[psycopg.Connection]:
    """database() for code that runs outside the page script (a download's data callable): give it
    the session token (session_token()) read on the page."""
    with console_connection(pool) as conn, acting_as(conn, token):
        yield conn


def show_unavailable(error: QueueUnavailable | None = None) -> None:
    st.error(UNAVAILABLE_MESSAGE, icon=":material/cloud_off:")


# --- sign-in and roles ---

# The signed-in user (db.people.User) of this browser session. Without it a page shows the sign-in
# form and nothing else. A reload starts a new Streamlit session: the session cookie
# (console_sessions) signs the person in again while their database session is live.
SIGNED_IN_KEY = "signed_in_user"
# The raw token of the signed-in person's session (db.people.start_session): the database knows it
# only hashed, and resolves every console transaction's acting user from it.
SESSION_TOKEN_KEY = "session_token"
SESSION_ENDED = (
    "Your session has ended: you signed out elsewhere, or an admin reset your password, changed your role "
    "or made your account no longer active. Sign in again, or ask an admin if this is a mistake."
)
SIGNED_IN_WITH_KEY = "signed_in_with"
# A one-time code for the session cookie (console_sessions), used on the first run after sign-in.
HANDOFF_KEY = "session_handoff"
SIGN_IN_NOTICE_KEY = "sign_in_notice"
WRONG_CREDENTIALS = "Wrong username or password."
ROLE_LABELS = {"editor": "Editor", "operator": "Operator", "analyst": "Analyst", "admin": "Admin"}
# What the console offers each role; the database enforces the same (row-level security).
SUBMITTERS = ("editor", "operator", "admin")
QUEUE_RUNNERS = ("operator", "admin")  # act on every request, bulk actions, pause queues
AUDIT_READERS = ("operator", "admin")


def page_header(title: str, *, roles: tuple[str, ...] | None = None) -> User:
    """The sign-in gate, then the page's title, the model banner and the account sidebar.

    `roles`: who may use the page; anyone else is told so and sees nothing more of it."""
    # Whether a change started this run (`rerun_for_changes`: the user did nothing); read by
    # `take_notice`.
    st.session_state[RUN_FOR_CHANGES_KEY] = st.session_state.pop(CHANGE_RERUN_KEY, False)
    user = require_sign_in()
    st.title(title)
    account_sidebar(user)
    if roles is not None and user.role not in roles:
        names = [f"{ROLE_LABELS[role].lower()}s" for role in roles]
        allowed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        st.info(f"This page is for {allowed}. You are signed in as {role_phrase(user.role)}.", icon=":material/lock:")
        st.stop()
    show_model_banner(user)
    return user


def role_phrase(role: str) -> str:
    label = ROLE_LABELS.get(role, role).lower()
    return f"{'an' if label[:1] in 'aeiou' else 'a'} {label}"


def current_user() -> User:
    """The signed-in user; the sign-in form (and a stop) when there is none."""
    user = st.session_state.get(SIGNED_IN_KEY)
    if user is None:
        show_sign_in()
        st.stop()
    return user


def session_token() -> str:
    """The signed-in person's session token ("" when none: the database then sees nobody)."""
    return st.session_state.get(SESSION_TOKEN_KEY, "")


def can_submit(user: User) -> bool:
    return user.role in SUBMITTERS


def runs_the_queue(user: User) -> bool:
    return user.role in QUEUE_RUNNERS


def may_act_on(user: User, request: GenerationRequest | LiveRequest) -> bool:
    """Whether to offer cancel and retry on a request: operators on all, editors on their own."""
    return runs_the_queue(user) or (user.role == "editor" and request.user_id == user.id)


def require_sign_in() -> User:
    """The signed-in user, read again from the database on every page run (a deactivated account
    or a changed role applies at once); or the sign-in form and a stop."""
    user = st.session_state.get(SIGNED_IN_KEY)
    if user is not None:
        user = _reread(user, session_token())
    if user is None:
        user = _user_from_cookie()
    if user is None:
        user = _user_from_identity_provider()
    if user is None:
        show_sign_in()
        st.stop()
    # Requests are stored with the signed-in user's name (kinds' forms read it from here).
    st.session_state["requester"] = user.display_name
    if code := st.session_state.pop(HANDOFF_KEY, None):
        _adopt_session_in_browser(code)
    return user


def _user_from_cookie() -> User | None:
    """A reload or a link opened in a new tab: the person's live session, from its cookie."""
    token = st.context.cookies.get(COOKIE_NAME) if cookies_available() else None
    if not token:
        return None
    try:
        with console_connection(get_pool()) as conn:
            user = user_for_session(conn, token)
    except QueueUnavailable:
        return None
    if user is not None:
        _start_session(user, token, via="cookie")
    return user


def _adopt_session_in_browser(code: str) -> None:
    """Send the browser once through the route that sets the session cookie, and back here."""
    target = json.dumps(f"{ADOPT_PATH}?code={code}&next=")
    st.html(
        f"<script>window.location.replace({target} + encodeURIComponent(window.location.pathname + window.location.search));</script>",
        unsafe_allow_javascript=True,
    )


def _reread(user: User, token: str) -> User | None:
    """The account of the session, read again; None (and signed out) when the session has ended:
    signed out elsewhere, password reset, role changed, account deactivated."""
    try:
        with console_connection(get_pool()) as conn:
            fresh = user_for_session(conn, token)
    except QueueUnavailable:
        return user  # the page says the database is down; the session stays signed in
    if fresh is None:
        sign_out(notice=SESSION_ENDED)
        return None
    st.session_state[SIGNED_IN_KEY] = fresh
    return fresh


def _start_session(user: User, token: str, via: str) -> None:
    # Nothing of a previous user's session (filters, selections, snapshots) carries over.
    st.session_state.clear()
    st.session_state[SIGNED_IN_KEY] = user
    st.session_state[SESSION_TOKEN_KEY] = token
    st.session_state[SIGNED_IN_WITH_KEY] = via
    if via != "cookie" and cookies_available():
        st.session_state[HANDOFF_KEY] = HANDOFFS.offer(token)


def sign_out(notice: str = "You are signed out.") -> None:
    through_provider = st.session_state.get(SIGNED_IN_WITH_KEY) == "oidc"
    if token := st.session_state.get(SESSION_TOKEN_KEY):
        try:
            with console_connection(get_pool()) as conn:
                end_session(conn, token)
        except QueueUnavailable:
            pass  # forgotten here all the same; it ends when it expires or the account changes
    st.session_state.clear()
    st.session_state[SIGN_IN_NOTICE_KEY] = notice
    if through_provider:
        st.logout()  # also forgets the identity provider's sign-in (a new session)


def show_sign_in() -> None:
    st.title("Sign in to Inkwell")
    if notice := st.session_state.pop(SIGN_IN_NOTICE_KEY, None):
        st.info(notice, icon=":material/logout:")
    # The username stays after a wrong password; the password never does (_take_password).
    with st.form("sign_in_form"):
        username = st.text_input("Username", key="sign_in_username", max_chars=100, autocomplete="username")
        password = st.text_input(
            "Password", key="sign_in_password", type="password", max_chars=1000, autocomplete="current-password"
        )
        submitted = st.form_submit_button(
            "Sign in", key="sign_in_submit", type="primary", icon=":material/login:", on_click=_take_password
        )
    if submitted:
        _sign_in_with_password(username.strip(), st.session_state.pop(PASSWORD_ATTEMPT_KEY, password))
    if oidc_configured():
        for provider in oidc_providers():
            label = f"Sign in with {provider}" if provider else "Sign in with single sign-on"
            if st.button(label, key=f"sign_in_oidc_{provider or 'default'}", icon=":material/key:"):
                st.login(provider)
    st.caption("No account yet? Ask an Inkwell admin. The first admin's password is printed by `./run`.")


PASSWORD_ATTEMPT_KEY = "sign_in_attempt"


def _take_password() -> None:
    """Runs before the page: the typed password is used once and the field is emptied."""
    st.session_state[PASSWORD_ATTEMPT_KEY] = st.session_state.get("sign_in_password", "")
    st.session_state["sign_in_password"] = ""


def _sign_in_with_password(username: str, password: str) -> None:
    if not username or not password:
        st.error("Enter your username and password.", icon=":material/lock:")
        return
    try:
        with console_connection(get_pool()) as conn:
            signed_in = sign_in(conn, username, password, address=client_address())
    except QueueUnavailable:
        show_unavailable()
        return
    except ActionRefused as refusal:  # throttled after failures, or too many sign-ins at once
        st.error(str(refusal), icon=":material/lock_clock:")
        return
    if signed_in is None:
        # Never which part was wrong: that would tell a stranger which usernames exist.
        st.error(WRONG_CREDENTIALS, icon=":material/lock:")
        return
    _start_session(*signed_in, via="password")
    st.rerun()


def client_address() -> str | None:
    """The browser's address as the console's server sees it, for throttling sign-in per address.

    None (per-account throttling only) for loopback: a browser on this machine, or a reverse proxy
    on it (deploy/), whose one address all clients would share, so that one guesser could lock
    everyone out."""
    address = st.context.ip_address
    if not isinstance(address, str):  # None on localhost; not a string under AppTest
        return None
    try:
        return None if ipaddress.ip_address(address.split("%")[0]).is_loopback else address
    except ValueError:
        return address


def oidc_configured() -> bool:
    """OpenID Connect sign-in is offered when Streamlit's auth is set up (an [auth] secrets section)."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def oidc_providers() -> list[str | None]:
    """Named providers ([auth.NAME] sections), or the one unnamed provider ([auth] alone)."""
    named = [name for name, value in st.secrets["auth"].items() if isinstance(value, Mapping)]
    return named or [None]


def _user_from_identity_provider() -> User | None:
    """Back from st.login: the Inkwell account linked to that identity (issuer + subject), if any."""
    if not oidc_configured() or not st.user.get("is_logged_in"):
        return None
    issuer, subject = st.user.get("iss"), st.user.get("sub")
    try:
        with console_connection(get_pool()) as conn:
            signed_in = sign_in_with_identity(conn, str(issuer), str(subject)) if issuer and subject else None
    except QueueUnavailable:
        show_unavailable()
        st.stop()
    if signed_in is None:
        _refuse_identity(issuer, subject)
        st.stop()
    _start_session(*signed_in, via="oidc")
    return signed_in[0]


def _refuse_identity(issuer: object, subject: object) -> None:
    st.title("Sign in to Inkwell")
    who = st.user.get("email") or st.user.get("name") or "this identity"
    st.error(
        f"Your identity provider signed you in as {escape_markdown(str(who))}, but no active Inkwell account "
        "is linked to that identity, so Inkwell cannot let you in. Ask an Inkwell admin to link it "
        "(or to reactivate your account).",
        icon=":material/no_accounts:",
    )
    st.caption(f"Issuer {escape_markdown(str(issuer))} · subject {escape_markdown(str(subject))}")
    if st.button("Sign out of the identity provider", key="oidc_refused_sign_out", icon=":material/logout:"):
        st.logout()


def account_sidebar(user: User) -> None:
    """Who is signed in (name, role, organization), and Sign out."""
    with st.sidebar:
        st.markdown(f":material/account_circle: {escape_markdown(user.display_name)}")
        st.caption(f"{ROLE_LABELS.get(user.role, user.role)} · {escape_markdown(user.organization_name)}")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            sign_out()
            st.rerun()
        if docs := api_docs_url():
            st.markdown(f"[:material/api: HTTP API docs]({docs})")


def api_docs_url() -> str | None:
    """The HTTP API's interactive docs (INKWELL_API_URL, set by ./run); None when no API is served."""
    base = get_settings().api_url
    return f"{base.rstrip('/')}/api/docs" if base else None


def show_model_banner(user: User | None = None) -> None:
    """The whole story for admins, who can change it; one short line for everyone else."""
    settings = get_settings()
    if settings.offline_model and user is not None and user.role != "admin":
        st.caption(":material/cloud_off: Offline model: results are quick built-in drafts, not a language model's.")
    elif settings.offline_model:
        st.info(
            "**Offline model in use.** Results come from Inkwell's built-in offline model: quick, "
            "deterministic, topic-specific drafts, not a language model. Set `INKWELL_LLM_BASE_URL` "
            "(and `INKWELL_LLM_API_KEY`) to use OpenAI, Ollama, vLLM or a llama.cpp server.",
            icon=":material/cloud_off:",
        )


def show_model_outage() -> None:
    """A banner while the workers find the model endpoint down (Home, Live, Workers and queues):
    since when and how many requests wait. Nothing while it is up or the database cannot say."""
    try:
        with database() as conn:
            outage = model_outage(conn)
    except QueueUnavailable:
        return  # the page says the queue is unavailable
    if outage is None:
        return
    st.warning(
        f"**Model endpoint unreachable since {when_here(outage.down_since)} — {plural(outage.waiting, 'request')} waiting.** "
        "Workers start no model calls while it is down and try it again now and then; they resume by "
        "themselves when it answers. Waiting spends none of a request's attempts.",
        icon=":material/cloud_off:",
    )


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


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
        st.datetime_input(f"Start at, your time ({zone_label(zone)})", key="start_at", format="YYYY-MM-DD",
                          step=dt.timedelta(minutes=5))


def chosen_start() -> dt.datetime | None:
    """The start chosen above as an aware time, or None to start now; a time already past is refused."""
    # Pages without the widgets (regenerating on the Site builds page) start now.
    choice = st.session_state.get("start_choice", START_NOW)
    now = dt.datetime.now(dt.timezone.utc)
    if choice == START_IN:
        return now + dt.timedelta(minutes=st.session_state["start_in_minutes"])
    if choice == START_AT:
        # The picker shows the browser's wall-clock time, without a zone.
        try:
            start = aware_from_wall_clock(st.session_state["start_at"], browser_zone())
        except SkippedLocalTime as skipped:
            raise StartRefused(str(skipped)) from skipped
        if start <= now:
            raise StartRefused(f"{start:%Y-%m-%d %H:%M} is in the past: choose a later time, or “{START_NOW}”.")
        return start
    return None


def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, status)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


# GFM turns bare `http://…`, `www.…` and e-mail addresses into links after the escapes are read,
# so a backslash cannot stop it; an invisible word joiner (U+2060) inside the pattern does.
WORD_JOINER = "\u2060"
_AUTOLINK_STARTS = re.compile(r"(?i)(?<![a-z0-9])(https?:)(?=//)|(?<![a-z0-9])(www)(?=\.)|(@)(?=[\w-])")


def unlinked(text: str) -> str:
    """The text with nothing GFM would make a link of (it reads the same)."""
    return _AUTOLINK_STARTS.sub(lambda match: match.group(0) + WORD_JOINER, text)


def escape_markdown(text: str) -> str:
    """User input and model output are data, never markup: no HTML, links (bare addresses
    included), images, colours or maths get through."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", unlinked(text)).replace("\n", "  \n")


def is_duplicate_submission(content: object) -> bool:
    """True when the same content was submitted from this browser session a moment ago.

    Guards against a double click on Submit sending two reruns that would queue the job twice.
    """
    key = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    recent: dict[str, float] = st.session_state.setdefault("recent_submissions", {})
    now = time.monotonic()
    for old_key in [k for k, at in recent.items() if now - at > DUPLICATE_SUBMIT_WINDOW_SECONDS]:
        del recent[old_key]
    if key in recent:
        return True
    recent[key] = now
    return False


def forget_submission(content: object) -> None:
    """A submission that failed may be tried again at once."""
    key = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    st.session_state.setdefault("recent_submissions", {}).pop(key, None)


def workers_heading_or_none_running(workers: list) -> bool:
    """The Workers heading; False, after saying how to start one, when no worker runs."""
    st.subheader("Workers")
    if not workers:
        st.warning(
            "No worker is running, so no job starts. Start one with `python -m procrastinate --app=queue_tasks.app worker`.",
            icon=":material/engineering:",
        )
        return False
    return True


def show_workers(workers: list) -> None:
    """Workers from procrastinate_workers with their heartbeat; stale ones are flagged.

    Takes any rows with `id`, `last_heartbeat`, `running_jobs` and `is_stale` (db.queues.WorkerStatus).
    """
    if not workers_heading_or_none_running(workers):
        return
    frame = pd.DataFrame(
        {
            "Worker": [w.id for w in workers],
            "Last heartbeat": [in_viewer_zone(w.last_heartbeat) for w in workers],
            "Running jobs": [w.running_jobs for w in workers],
            "State": ["stale: no recent heartbeat" if w.is_stale else "alive" for w in workers],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        column_config={"Last heartbeat": time_column()},
    )
    stale = [w for w in workers if w.is_stale]
    stale_after = get_settings().stalled_worker_seconds
    if stale:
        st.warning(
            f"{len(stale)} worker(s) missed their heartbeat for over {stale_after:g} s; "
            "their running jobs are put back in the queue.",
            icon=":material/heart_broken:",
        )
    else:
        st.caption(f"A worker silent for over {stale_after:g} s is presumed dead; its running jobs are put back in the queue.")


# --- lists that stay current ---

# How often a list asks whether its rows changed. The counters are read at most once per console
# process per COUNTER_READ_SECONDS (cached), however many people watch: one cheap call, no table
# read (db.changes).
CHANGE_CHECK_SECONDS = 1.0
COUNTER_READ_SECONDS = 0.5


@st.cache_data(ttl=COUNTER_READ_SECONDS, show_spinner=False)
def _change_counters(database_url: str) -> ChangeCounters:
    with console_connection(_pool_for(database_url)) as conn:
        return read_change_counters(conn)


def change_counters() -> ChangeCounters:
    get_pool()
    return _change_counters(get_settings().database_url)


# Set by `rerun_for_changes` just before it runs the page again; moved to RUN_FOR_CHANGES_KEY by
# the next run's page_header.
CHANGE_RERUN_KEY = "change_rerun_pending"
RUN_FOR_CHANGES_KEY = "run_for_changes"


def note_rows_read(list_name: str, topics: tuple[Topic, ...]) -> None:
    """Call before reading a list's rows: what its counters say now (read at or before the rows,
    so a change in between shows up as a change, never as none)."""
    key = f"changes_seen_{list_name}"
    try:
        now = change_counters().of(topics)
    except QueueUnavailable:
        return
    seen, settling = st.session_state.get(key, (None, False))
    if seen is None:
        st.session_state[key] = (now, False)
    elif now != seen:
        st.session_state[key] = (now, True)  # read on a new count: look once more on the next tick


def rows_changed(list_name: str, topics: tuple[Topic, ...]) -> bool:
    """Whether the list's rows may have changed since it last read them: a counter moved since the
    last look, or moved on the look before (a change counted at commit can be a moment from
    visible, so the list reads once more after one)."""
    key = f"changes_seen_{list_name}"
    try:
        now = change_counters().of(topics)
    except QueueUnavailable:
        # Read again, so the list says the queue is unavailable instead of showing old rows as current.
        return True
    seen, settling = st.session_state.get(key, (None, False))
    if seen is None:
        st.session_state[key] = (now, False)
        return False
    if now != seen:
        st.session_state[key] = (now, True)
        return True
    st.session_state[key] = (now, False)
    return settling


def rerun_for_changes() -> None:
    """Runs the whole page again because what it shows changed, not because the user did something:
    the notices of the user's last action stay (`take_notice`)."""
    st.session_state[CHANGE_RERUN_KEY] = True
    st.rerun(scope="app")


def take_notice(key: str) -> object | None:
    """The notice an action left under `key` for this run to show, taken so the user's next action
    does not show it again. A run that a change started (`rerun_for_changes`: a list's change check,
    the navigation's counts) shows the last notice again: the user did nothing, and what an action
    just did (which is itself often the change) must not flash and vanish when the page refreshes."""
    shown_key = f"{key}_shown"
    notice = st.session_state.pop(key, None)
    if notice is not None:
        st.session_state[shown_key] = notice
    elif st.session_state.get(RUN_FOR_CHANGES_KEY):
        notice = st.session_state.get(shown_key)
    else:
        st.session_state.pop(shown_key, None)
    return notice


def refresh_when_changed(list_name: str, topics: tuple[Topic, ...], on_change: Callable[[], None]) -> None:
    """A one-second check that, when the list's rows changed, forgets them (`on_change`) and runs the
    page again: filters, selections and the scroll position stay as they are."""

    @st.fragment(run_every=CHANGE_CHECK_SECONDS)
    def check() -> None:
        if rows_changed(list_name, topics):
            on_change()
            rerun_for_changes()

    check()


# --- credits before submitting ---


def show_price(kind: str) -> None:
    """What one request of the kind costs and what the organization has left, before it is
    submitted; when that is not enough, who can fix it and where."""
    user = current_user()
    try:
        with database() as conn:
            price = kind_costs(conn).get(kind)
            left = credit_balance(conn, user.organization_id)
    except QueueUnavailable:
        return
    if price is None or left is None:
        return
    cost = "Free" if price == 0 else f"Each request costs {plural(price, 'credit')}"
    organization = escape_markdown(user.organization_name)
    st.caption(f":material/toll: {cost} · {organization} has {plural(left, 'credit')} left.")
    if price > left:
        st.warning(
            f"{organization} has {plural(left, 'credit')} left, not enough for this. {TOP_UP_HINT}",
            icon=":material/account_balance_wallet:",
        )


# --- navigation ---

# The browser tab's icon, set once by app.py: a page's own icon would make the browser fetch a
# Material Symbols picture from fonts.gstatic.com, and an offline install asks the internet for nothing.
FAVICON = Path(__file__).resolve().parent / "static" / "inkwell.svg"

# Every page but Home, in the order of the sidebar, with who may use it (None: every signed-in role).
# Each page checks its roles again itself (page_header), and the database enforces them.
CONSOLE_PAGES: tuple[tuple[str, tuple[str, ...] | None, str], ...] = (
    ("pages/1_Submit.py", SUBMITTERS, ":material/add_circle:"),
    ("pages/2_Live.py", None, ":material/monitoring:"),
    ("pages/3_History.py", None, ":material/history:"),
    ("pages/4_Workers_and_queues.py", (*QUEUE_RUNNERS, "analyst"), ":material/engineering:"),
    ("pages/5_Posts.py", None, ":material/article:"),
    ("pages/6_Site_builds.py", None, ":material/web:"),
    ("pages/7_Admin.py", AUDIT_READERS, ":material/admin_panel_settings:"),
    ("pages/8_API_tokens.py", None, ":material/key:"),
)


def may_use(user: User, page: str) -> bool:
    """Whether the page is listed for (and linked to) the user."""
    roles = next((roles for path, roles, _ in CONSOLE_PAGES if path == page), None)
    return roles is None or user.role in roles


def console_navigation(home: Callable[[], None], titles: Mapping[str, str] | None = None) -> StreamlitPage:
    """Home first, then the pages the signed-in role may use. Before sign-in the navigation is hidden
    (each page shows the sign-in form), yet every page stays registered: a link to a request opens
    it once the person has signed in. `titles`: labels by page path (counts beside them); the page's
    address stays the same."""
    user = st.session_state.get(SIGNED_IN_KEY) or _user_from_cookie()
    pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
    pages += [
        st.Page(path, icon=icon, title=(titles or {}).get(path))
        for path, roles, icon in CONSOLE_PAGES
        if user is None or roles is None or user.role in roles
    ]
    return st.navigation(pages, position="sidebar" if user is not None else "hidden")


# --- paused queues ---

PAUSES_READ_SECONDS = 2.0


@st.cache_data(ttl=PAUSES_READ_SECONDS, show_spinner=False)
def _queue_pauses(database_url: str, viewer_id: int) -> dict[str, QueuePause]:
    with database() as conn:
        return queue_pauses(conn)


def paused_note(request: GenerationRequest | LiveRequest) -> str | None:
    """For a request waiting in a paused queue: who paused it and when, in the viewer's time."""
    if request.status not in ("queued", "scheduled"):
        return None
    try:
        pause = _queue_pauses(get_settings().database_url, current_user().id).get(request.queue_name)
    except QueueUnavailable:
        return None
    if pause is None:
        return None
    return (
        f":material/pause_circle: Queue {escape_markdown(pause.queue_name)} paused by {escape_markdown(pause.paused_by)} "
        f"at {when_here(pause.paused_at)}: it starts once the queue is resumed (Workers and queues)."
    )

_clean_every_typed_text()
