"""API tokens: make a token for a site or app that calls Inkwell's HTTP API, see when each was last
used, and revoke one at once. A token is shown only when it is made; Inkwell keeps only its hash."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from console_time import ago, browser_zone, exact_here
from console_ui import api_docs_url, database, escape_markdown, page_header, show_unavailable
from db.api_tokens import create_token, list_tokens, revoke_token
from db.connection import QueueUnavailable
from db.webhooks import webhook_secret

NEW_TOKEN_KEY = "api_token_just_made"

st.set_page_config(page_title="API tokens · Inkwell", layout="wide")
user = page_header("API tokens")
st.caption(
    "A token lets your own site or app call Inkwell's HTTP API as you, with your role: send it as "
    "`Authorization: Bearer <token>`." + (f" [API reference]({api_docs_url()})" if api_docs_url() else "")
)

with st.form("new_api_token", clear_on_submit=True):
    name = st.text_input("Name", key="api_token_name", max_chars=100, placeholder="e.g. the shop's blog editor")
    expires = st.date_input("Expires (optional)", value=None, key="api_token_expiry",
                            min_value=dt.date.today() + dt.timedelta(days=1))
    if st.form_submit_button("Create token", type="primary", icon=":material/add:"):
        expires_at = dt.datetime.combine(expires, dt.time(), browser_zone()) if expires else None  # the viewer's midnight
        try:
            with database() as conn:
                st.session_state[NEW_TOKEN_KEY] = (name.strip(), create_token(conn, user, name, expires_at))
        except ValueError as error:
            st.error(str(error))
        except QueueUnavailable as error:
            show_unavailable(error)

if made := st.session_state.pop(NEW_TOKEN_KEY, None):
    st.success(f"Token “{escape_markdown(made[0])}” created. Copy it now: it is not shown again.", icon=":material/key:")
    st.code(made[1], language=None)

try:
    with database() as conn:
        tokens = list_tokens(conn)
except QueueUnavailable as error:
    show_unavailable(error)
    st.stop()

now = dt.datetime.now(dt.timezone.utc)
st.subheader("Tokens" if user.role != "admin" else "Tokens (everyone's)")
if not tokens:
    st.info("No API tokens yet.")
for token in tokens:
    live = token.is_live(now)
    state = "live" if live else ("revoked" if token.revoked_at else "expired")
    columns = st.columns([3, 2, 2, 2, 1])
    owner = f" · {escape_markdown(token.username)}" if token.user_id != user.id else ""
    columns[0].markdown(f"**{escape_markdown(token.name or '(unnamed)')}**{owner} · {state}")
    columns[1].caption(f"created {ago(token.created_at)}", help=exact_here(token.created_at))
    if token.last_used_at:
        columns[2].caption(f"last used {ago(token.last_used_at)}", help=exact_here(token.last_used_at))
    else:
        columns[2].caption("never used")
    if token.expires_at:
        ended = "expired" if token.expires_at <= now else "expires"
        columns[3].caption(f"{ended} {ago(token.expires_at)}", help=exact_here(token.expires_at))
    else:
        columns[3].caption("no expiry")
    if live and columns[4].button("Revoke", key=f"revoke_token_{token.id}", icon=":material/block:"):
        try:
            with database() as conn:
                revoked = revoke_token(conn, token.id)
        except QueueUnavailable as error:
            show_unavailable(error)
        else:
            if revoked:
                st.toast("Token revoked: it is refused from now on.")
            st.rerun()

st.subheader("Webhook signing secret")
st.caption(
    "Completion webhooks (`callbackUrl`) are signed with this secret (Standard Webhooks: `webhook-id`, "
    "`webhook-timestamp`, `webhook-signature`). Verify the signature before trusting a delivery."
)
if st.button("Show my webhook secret", key="show_webhook_secret", icon=":material/visibility:"):
    try:
        with database() as conn:
            st.code(webhook_secret(conn), language=None)
    except QueueUnavailable as error:
        show_unavailable(error)
