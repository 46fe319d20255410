"""Admin: users (create with a role and an organization, change the role, deactivate, reset the
password), organizations (create, credit balances, top up) and the audit log. Operators see the
audit log only. The database allows these changes to admins alone, whatever this page shows."""

from __future__ import annotations

import secrets

import pandas as pd
import psycopg
import streamlit as st

from console_time import in_viewer_zone, time_column
from console_ui import (
    AUDIT_READERS,
    ROLE_LABELS,
    current_user,
    database,
    escape_markdown,
    page_header,
    show_unavailable,
    take_notice,
)
from db.connection import QueueUnavailable
from db.people import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    ROLES,
    User,
    audit_entries,
    create_organization,
    create_user,
    list_organizations,
    list_users,
    set_password,
    set_user_active,
    set_user_role,
)

from db.credits import top_up

AUDIT_ROWS = 500
GENERATED_PASSWORD_BYTES = 12


def notify(kind: str, text: str) -> None:
    st.session_state["admin_notice"] = (kind, text)


def show_notice() -> None:
    if notice := take_notice("admin_notice"):
        kind, text = notice
        {"success": st.success, "warning": st.warning, "error": st.error}[kind](text)


def refused(error: Exception) -> str:
    """What was wrong, in the words db.people and the database chose for people."""
    if isinstance(error, psycopg.Error):
        return error.diag.message_primary or "The database refused it."
    return str(error)


def generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


# --- users ---


def users_table(users: list[User]) -> None:
    st.dataframe(
        pd.DataFrame(
            {
                "Username": [u.username for u in users],
                "Name": [u.display_name for u in users],
                "Role": [ROLE_LABELS.get(u.role, u.role) for u in users],
                "Organization": [u.organization_name for u in users],
                "Active": [u.active for u in users],
            }
        ),
        hide_index=True,
    )


def create_user_form(organizations: list[dict]) -> None:
    with st.form("admin_create_user", clear_on_submit=True):
        st.markdown("**Create a user**")
        left, right = st.columns(2)
        username = left.text_input("Username", key="new_user_username", max_chars=100, placeholder="e.g. ana")
        display_name = right.text_input("Name", key="new_user_display_name", max_chars=100, placeholder="e.g. Ana Lima")
        role = left.selectbox("Role", ROLES, format_func=lambda r: ROLE_LABELS.get(r, r), key="new_user_role")
        organization = right.selectbox(
            "Organization", organizations, format_func=lambda o: o["name"], key="new_user_organization"
        )
        password = st.text_input(
            "Password", key="new_user_password", type="password", max_chars=MAX_PASSWORD_CHARS,
            help=f"At least {MIN_PASSWORD_CHARS} characters. Leave empty to generate one; it is shown once.",
        )
        with st.expander("Single sign-on (optional)"):
            st.caption("Link the account to an identity from the identity provider (the sign-in page shows both "
                       "values to someone it refused); it then signs in with single sign-on.")
            issuer = st.text_input("Issuer (iss)", key="new_user_oidc_issuer", max_chars=500)
            subject = st.text_input("Subject (sub)", key="new_user_oidc_subject", max_chars=500)
            sso_only = st.checkbox("Single sign-on only (no password)", key="new_user_sso_only")
        submitted = st.form_submit_button("Create user", key="new_user_submit", type="primary", icon=":material/person_add:")
    if not submitted:
        return
    if organization is None:
        st.error("Nothing was created: create an organization first.")
        return
    linked = bool(issuer.strip() and subject.strip())
    if sso_only and not linked:
        st.error("Nothing was created: single sign-on only needs both the issuer and the subject.")
        return
    chosen = None if sso_only else password or generated_password()
    try:
        with database() as conn:
            user = create_user(
                conn, username=username, display_name=display_name, role=role, organization_id=organization["id"],
                password=chosen, oidc_issuer=issuer.strip() or None, oidc_subject=subject.strip() or None,
            )
    except QueueUnavailable:
        show_unavailable()
        return
    except (psycopg.Error, ValueError) as error:
        st.error(f"Nothing was created. {refused(error)}")
        return
    shown = f" Their password (shown only now): `{chosen}`" if chosen and not password else ""
    st.success(
        f"Created {escape_markdown(user.username)} ({role_label(user.role)}, {escape_markdown(user.organization_name)}).{shown}",
        icon=":material/person_add:",
    )


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role).lower()


def change_user(users: list[User]) -> None:
    st.markdown("**Change a user**")
    by_id = {u.id: u for u in users}
    chosen_id = st.selectbox(
        "User", list(by_id), key="admin_user",
        format_func=lambda i: f"{by_id[i].username} · {by_id[i].display_name} · {role_label(by_id[i].role)}"
        + ("" if by_id[i].active else " · deactivated"),
    )
    if chosen_id is None:
        return
    chosen = by_id[chosen_id]
    role_col, active_col, password_col = st.columns(3)
    with role_col:
        new_role = st.selectbox(
            "Role", ROLES, index=list(ROLES).index(chosen.role), format_func=lambda r: ROLE_LABELS.get(r, r),
            key=f"admin_role_{chosen.id}",
        )
        st.button("Change role", key="admin_change_role", on_click=change_role, args=(chosen, new_role),
                  disabled=new_role == chosen.role)
    with active_col:
        if chosen.active:
            st.button("Deactivate", key="admin_deactivate", on_click=change_active, args=(chosen, False),
                      disabled=chosen.id == current_user().id, help="They can no longer sign in; their requests stay.")
        else:
            st.button("Reactivate", key="admin_reactivate", on_click=change_active, args=(chosen, True))
    with password_col:
        st.button("Reset password", key="admin_reset_password", on_click=reset_password, args=(chosen,),
                  help="Sets a new generated password, shown once here.")


def change_account(change, done: str) -> None:
    """Run one account change as the signed-in admin and say what happened."""
    try:
        with database() as conn:
            change(conn)
    except QueueUnavailable:
        notify("error", "Queue unavailable — nothing was changed; try again later.")
    except (psycopg.Error, ValueError) as error:
        notify("error", f"Nothing was changed. {refused(error)}")
    else:
        notify("success", done)


def change_role(user: User, role: str) -> None:
    change_account(
        lambda conn: set_user_role(conn, user.id, role), f"{escape_markdown(user.username)} is now {role_label(role)}."
    )


def change_active(user: User, active: bool) -> None:
    state = "reactivated: they can sign in again" if active else "deactivated: they can no longer sign in"
    change_account(lambda conn: set_user_active(conn, user.id, active), f"{escape_markdown(user.username)} is {state}.")


def reset_password(user: User) -> None:
    password = generated_password()
    try:
        with database() as conn:
            set_password(conn, user.id, password)
    except QueueUnavailable:
        notify("error", "Queue unavailable — the password was not changed; try again later.")
    except (psycopg.Error, ValueError) as error:
        notify("error", f"The password was not changed. {refused(error)}")
    else:
        notify("success", f"New password for {escape_markdown(user.username)} (shown only now): `{password}`")


def read(query):
    """What `query(conn)` returns, read as the signed-in admin; None (after saying so) when the
    database is unavailable."""
    try:
        with database() as conn:
            return query(conn)
    except QueueUnavailable:
        show_unavailable()
        return None


def users_section() -> None:
    # The list is drawn above the forms but read after them, so a change made just now shows in it.
    listing = st.container()
    if (organizations := read(list_organizations)) is None:
        return
    create_user_form(organizations)
    if (users := read(list_users)) is None:
        return
    with listing:
        users_table(users)
        change_user(users)


# --- organizations ---


def create_organization_form() -> None:
    with st.form("admin_create_organization", clear_on_submit=True):
        name = st.text_input("New organization", key="new_organization_name", max_chars=100, placeholder="e.g. Marketing")
        submitted = st.form_submit_button("Create organization", key="new_organization_submit", icon=":material/domain_add:")
    if not submitted:
        return
    if not name.strip():
        st.error("Nothing was created: give the organization a name.")
        return
    try:
        with database() as conn:
            create_organization(conn, name.strip())
    except QueueUnavailable:
        show_unavailable()
    except (psycopg.Error, ValueError) as error:
        st.error(f"Nothing was created. {refused(error)}")
    else:
        st.success(f"Created the organization {escape_markdown(name.strip())}.", icon=":material/domain_add:")


def top_up_form(organizations: list[dict]) -> None:
    with st.form("admin_top_up", clear_on_submit=True):
        st.markdown("**Top up credits**")
        organization = st.selectbox("Organization", organizations, format_func=lambda o: o["name"], key="top_up_organization")
        credits = st.number_input("Credits to add", min_value=1, max_value=10_000_000, value=100, step=100, key="top_up_credits")
        note = st.text_input("Note (optional)", key="top_up_note", max_chars=200)
        submitted = st.form_submit_button("Top up", key="top_up_submit", type="primary", icon=":material/add_card:")
    if not submitted or organization is None:
        return
    try:
        with database() as conn:
            balance = top_up(conn, organization["id"], int(credits), note=note.strip() or None)
    except QueueUnavailable:
        show_unavailable()
    except (psycopg.Error, ValueError) as error:
        st.error(f"No credits were added. {refused(error)}")
    else:
        st.success(f"Added {int(credits):,} credits to {escape_markdown(organization['name'])}: the balance is now {balance:,}.")


def organizations_section() -> None:
    # Balances are drawn above the forms but read after them, so a top-up made just now shows.
    listing = st.container()
    create_organization_form()
    if (organizations := read(list_organizations)) is None:
        return
    top_up_form(organizations)
    if (organizations := read(list_organizations)) is None:
        return
    listing.dataframe(
        pd.DataFrame(
            {
                "Organization": [o["name"] for o in organizations],
                "Credit balance": [o["credit_balance"] for o in organizations],
                "Users": [o["users"] for o in organizations],
            }
        ),
        hide_index=True,
    )


# --- audit log ---


def audit_log() -> None:
    if (entries := read(lambda conn: audit_entries(conn, limit=AUDIT_ROWS))) is None:
        return
    if not entries:
        st.info("Nothing recorded yet.", icon=":material/receipt_long:")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "When": [in_viewer_zone(e["at"]) for e in entries],
                "Who": [e["actor_name"] for e in entries],
                "Organization": [e["organization_name"] or "" for e in entries],
                "Action": [words(e["action"]) for e in entries],
                "Target": [target_words(e) for e in entries],
                "Details": [details_text(e["details"]) for e in entries],
            }
        ),
        hide_index=True,
        column_config={"When": time_column()},
    )
    st.caption(f"The newest {AUDIT_ROWS:,} entries: who submitted, cancelled, retried, paused, changed roles or credits.")


# What an audit entry's target is called, in words (the database's name in the left column).
TARGET_WORDS = {"session": "API token", "site_batch": "site build", "site_promotion": "promotion"}


def words(code: str) -> str:
    """A code in words: "user.role_changed" → "user role changed", "api_token" → "API token"."""
    return code.replace(".", " ").replace("_", " ").replace("api token", "API token")


def target_words(entry: dict) -> str:
    """ "user edna", "organization Acme", "queue bulk", "request 1f2a…": a name where there is one."""
    if not entry["target_type"]:
        return ""
    kind = TARGET_WORDS.get(entry["target_type"], words(entry["target_type"]))
    return f"{kind} {entry['target_name'] or entry['target_id'] or ''}".strip()


def details_text(details: object) -> str:
    """An entry's details in words: no Python dicts or lists on screen, no empty fields."""
    if isinstance(details, dict):
        return ", ".join(f"{words(str(k))}: {details_text(v)}" for k, v in details.items() if v not in (None, "", [], {}))
    if isinstance(details, list):
        return ", ".join(details_text(v) for v in details)
    if isinstance(details, bool):
        return "yes" if details else "no"
    return "" if details is None else str(details)


# --- the page ---

st.set_page_config(page_title="Admin · Inkwell", layout="wide")
user = page_header("Admin", roles=AUDIT_READERS)
show_notice()
if user.role == "admin":
    users_tab, organizations_tab, audit_tab = st.tabs(["Users", "Organizations", "Audit log"])
    with users_tab:
        users_section()
    with organizations_tab:
        organizations_section()
    with audit_tab:
        audit_log()
else:
    st.caption("Operators see the audit log; admins also manage users, organizations and credits.")
    audit_log()
