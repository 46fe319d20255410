"""People: organizations, accounts with one role each, sign-in, acting as a user, and the audit log.

Who may read and change what is decided by PostgreSQL (migrations 0040–0042, 0070), not by this module:

- A signed-in person (or an API client) holds a session: a random token from `start_session`,
  stored in `inkwell.sessions` only as its sha256, with an expiry. `acting_as(conn, token)` opens a
  transaction in which the connection has the role `inkwell_console` and names the token
  (`inkwell.session_token`); the database resolves the acting user from it (inkwell.acting_user_id,
  SECURITY DEFINER) and row-level security limits every query to what that user may read and
  change. A token of no live session (made up, ended, expired, inactive account) is nobody. The
  console uses this form once per `database()` block (console_ui.py): it ends with its transaction,
  so a pooled connection never keeps a session.
- `acting_as_session(conn, token)` does the same for a connection's session, until the block ends,
  for code that commits several transactions on one connection as one user.
- `end_session` ends one session (sign-out); a password reset, a role change and a deactivation end
  all of the account's sessions (a trigger of 0070). `user_for_session` is the account of a live session.
- Accounts and organizations change only through the database functions of migration 0042, which
  refuse unless the acting user is an active admin and write the audit entry themselves.
- Sign-in (`authenticate`, `get_user`, `find_oidc_user`) and `ensure_first_admin` run on the owner
  connection, before anyone is acting: inkwell_console cannot read password hashes.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import math
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from argon2 import PasswordHasher, Type
from argon2.low_level import hash_secret_raw
from psycopg import errors
from psycopg.pq import TransactionStatus
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from db.queries import QUERIES

logger = logging.getLogger("inkwell.people")

ROLES = ("editor", "operator", "analyst", "admin")
SESSION_KINDS = ("console", "api")
MAX_NAME_CHARS = 100
MIN_PASSWORD_CHARS = 10
# argon2 hashes any length, but a megabyte "password" would only cost the server time.
MAX_PASSWORD_CHARS = 256
DEFAULT_ORGANIZATION = "Default"
_USERNAME_CHARS = re.compile(r"^[a-z0-9._@-]+$")
# Refused whatever their length: the first guesses of any attacker.
_COMMON_PASSWORDS = frozenset(
    {
        "password12", "password123", "password1234", "1234567890", "12345678910", "0123456789",
        "qwertyuiop", "qwerty1234", "qwerty12345", "1q2w3e4r5t", "abcdefghij", "iloveyou12",
        "letmein123", "welcome123", "admin12345", "administrator", "changeme123", "passw0rd123",
    }
)

_hasher = PasswordHasher()
# A console session lasts at most this long (sign in again after).
CONSOLE_SESSION_LIFETIME = dt.timedelta(hours=12)
# Each password hash takes 64 MiB and ~0.1 s of a core: at most this many at once per process, so
# a burst of sign-in tries cannot exhaust memory; a try that waits longer than HASH_WAIT_SECONDS
# for a slot is turned away ("try again in a moment") without counting as a failure.
MAX_CONCURRENT_PASSWORD_HASHES = 2
HASH_WAIT_SECONDS = 5.0
_hashing_slots = threading.BoundedSemaphore(MAX_CONCURRENT_PASSWORD_HASHES)


class ActionRefused(ValueError):
    """The action was refused: it does not apply to its target as it is now, or the acting user
    may not do it. Nothing was changed."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    organization_id: int
    organization_name: str
    active: bool


# --- sessions, and acting through one ---------------------------------------------------------


def session_token_hash(token: str) -> bytes:
    """What the database stores of a token: sha256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def start_session(
    conn: psycopg.Connection,
    user_id: int,
    *,
    kind: str = "console",
    name: str | None = None,
    expires_at: dt.datetime | None = None,
) -> str:
    """A new session for the account; returns its raw token (shown to no one else, stored only hashed).

    The database allows this to the owner's connection (sign-in, scripts) and to a connection acting
    through a live session of that same account (an API token made while signed in); anyone else gets
    ActionRefused.
    """
    if kind not in SESSION_KINDS:
        raise ValueError(f"Unknown session kind {kind!r}; the kinds are {', '.join(SESSION_KINDS)}.")
    token = secrets.token_urlsafe(32)
    params = {
        "user_id": int(user_id),
        "token_hash": session_token_hash(token),
        "kind": kind,
        "name": name,
        "expires_at": expires_at,
    }
    try:
        with conn.transaction():
            conn.execute(QUERIES["start_session"], params)
    except errors.InsufficientPrivilege as refusal:
        raise ActionRefused(_message(refusal)) from None
    except errors.ForeignKeyViolation:
        raise ValueError(f"No account {user_id}.") from None
    return token


def end_session(conn: psycopg.Connection, token: str) -> None:
    """Ends the session of this token at once (sign-out); nothing happens when it had ended already."""
    if token:
        with conn.transaction():
            conn.execute(QUERIES["end_session"], {"token_hash": session_token_hash(token)})


def user_for_session(conn: psycopg.Connection, token: str) -> User | None:
    """The active account of this live session, else None (unknown, ended or expired session,
    inactive account). Records the session's use. Needs a connection with no transaction open."""
    if not token:
        return None
    with acting_as(conn, token):
        if conn.execute(QUERIES["touch_session"]).fetchone()[0] is None:
            return None
        with conn.cursor(row_factory=class_row(User)) as cur:
            return cur.execute(QUERIES["acting_user"]).fetchone()


@contextlib.contextmanager
def acting_as(conn: psycopg.Connection, token: str | User | int) -> Iterator[psycopg.Connection]:
    """A transaction on `conn` in which every query runs as the user of the session `token`, under
    row-level security. A token that names no live session acts as nobody (sees nothing).

    Commits when the block ends, rolls back on an exception; either way the role and the session
    end with the transaction. Functions called inside that open their own transaction get a
    savepoint, so a refused action (ActionRefused) does not undo the others.

    Given a User (or a user id) instead of a token, a session is opened for the block and ended
    with it: only the owner's connection may do that (scripts, tests); the console always passes
    the signed-in person's token.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        # Inside an open transaction these settings would outlive this block (until that
        # transaction ends), acting as the user for code that does not expect it.
        raise RuntimeError("acting_as needs a connection with no transaction open")
    with conn.transaction():
        own_session = not isinstance(token, str)
        if own_session:
            token = start_session(conn, _user_id(token))
        conn.execute(QUERIES["act_with_session"], {"token": token})
        yield conn
        # (A failed transaction rolls back, and the session it started with it.)
        if own_session and conn.info.transaction_status != TransactionStatus.INERROR:
            conn.execute(QUERIES["end_session"], {"token_hash": session_token_hash(token)})


@contextlib.contextmanager
def acting_as_session(conn: psycopg.Connection, token: str | User | int) -> Iterator[psycopg.Connection]:
    """`conn` (autocommit) acts through the session `token` until the block ends, across as many
    transactions as it runs.

    On the way out a transaction left open is rolled back and the role and session are reset,
    so a pooled connection goes back to the pool as it came. (If that reset fails, the connection
    is broken, and psycopg_pool discards a broken connection instead of handing it out again.)
    A User or user id opens a session for the block, as in acting_as (owner's connection only).
    """
    if not conn.autocommit or conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("acting_as_session needs an autocommit connection with no transaction open")
    own_session = not isinstance(token, str)
    if own_session:
        token = start_session(conn, _user_id(token))
    conn.execute(QUERIES["act_with_session_for_connection"], {"token": token})
    try:
        yield conn
    finally:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.rollback()
        conn.execute(QUERIES["stop_acting"])
        if own_session:
            end_session(conn, token)


def _user_id(user: User | int) -> int:
    return user.id if isinstance(user, User) else int(user)


def acting_state(conn: psycopg.Connection) -> tuple[str | None, bool]:
    """The acting user's role (None: nobody, or an inactive account) and whether row-level
    security applies now (False on the owner connection: workers, tests, the system)."""
    role, restricted = conn.execute(QUERIES["acting_state"]).fetchone()
    return role, restricted


# --- sign-in ---------------------------------------------------------------------------------


class SignInThrottled(ActionRefused):
    """Too many failed sign-ins for this account or from this address: try again later."""

    def __init__(self, wait_seconds: float):
        self.wait_seconds = max(1, math.ceil(wait_seconds))
        super().__init__(
            f"Too many failed sign-ins: try again in {_duration(self.wait_seconds)}. "
            "(Repeated failures lock the account for 15 minutes.)"
        )


class SignInBusy(ActionRefused):
    """Too many sign-ins are being checked at once; nothing was counted."""


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


def sign_in(
    conn: psycopg.Connection, username: str, password: str, *, address: str | None = None
) -> tuple[User, str] | None:
    """Checks a username and password and starts a console session: (the user, the raw session
    token), or None (whatever was wrong: unknown username, wrong password, inactive account).

    Works on the console's own role, which cannot read password hashes (migration 0073): the
    database gives out the account's argon2 settings, this computes the hash of the password typed,
    and the database compares it and starts the session. Takes as long for an unknown username as
    for a wrong password. Raises SignInThrottled while the account or `address` (the client's
    address) must wait after failures, and SignInBusy when too many hashes are being computed.
    Needs a connection with no transaction open (the failure count must be committed).
    """
    name = (username or "").strip().lower()[: MAX_NAME_CHARS + 1]
    password = (password or "")[: MAX_PASSWORD_CHARS + 1]
    wait, settings, hash_chars = conn.execute(
        QUERIES["sign_in_challenge"], {"username": name, "address": address}
    ).fetchone()
    token = secrets.token_urlsafe(32)
    # While throttled, no hash is computed; the database still records the try (sign_in.throttled).
    hash_part, new_hash = _hash_with_settings(password, settings, hash_chars) if wait <= 0 else (None, None)
    params = {
        "username": name,
        "hash_part": hash_part,
        "address": address,
        "token_hash": session_token_hash(token),
        "expires_at": dt.datetime.now(dt.timezone.utc) + CONSOLE_SESSION_LIFETIME,
        "new_hash": new_hash,
    }
    with conn.transaction():
        user_id = conn.execute(QUERIES["sign_in"], params).fetchone()[0]
    if user_id is not None and user_id < 0:
        raise SignInThrottled(-user_id)
    if user_id is None:
        return None
    user = user_for_session(conn, token)
    return (user, token) if user is not None else None


def authenticate(conn: psycopg.Connection, username: str, password: str, *, address: str | None = None) -> User | None:
    """The active account with this username and password, else None (see sign_in); the session
    sign_in starts is ended at once."""
    signed_in = sign_in(conn, username, password, address=address)
    if signed_in is None:
        return None
    user, token = signed_in
    end_session(conn, token)
    return user


def sign_in_with_identity(conn: psycopg.Connection, issuer: str, subject: str) -> tuple[User, str] | None:
    """A console session for the active account linked to this identity provider's issuer and
    subject, once the console has checked the provider's answer (st.login); else None."""
    token = secrets.token_urlsafe(32)
    params = {
        "issuer": issuer,
        "subject": subject,
        "token_hash": session_token_hash(token),
        "expires_at": dt.datetime.now(dt.timezone.utc) + CONSOLE_SESSION_LIFETIME,
    }
    with conn.transaction():
        user_id = conn.execute(QUERIES["sign_in_with_identity"], params).fetchone()[0]
    if user_id is None:
        return None
    user = user_for_session(conn, token)
    return (user, token) if user is not None else None


def _hash_with_settings(password: str, settings: str, hash_chars: int) -> tuple[str, str | None]:
    """The base64 hash part of argon2id(password) with these settings, and a new full hash when the
    settings are older than the current ones (stored in its place at a successful sign-in)."""
    _algorithm, version, costs, salt = settings.split("$")[1:5]
    cost = dict(item.split("=") for item in costs.split(","))
    if not _hashing_slots.acquire(timeout=HASH_WAIT_SECONDS):
        raise SignInBusy("Too many sign-ins are being checked right now: try again in a moment.")
    try:
        raw = hash_secret_raw(
            secret=password.encode("utf-8", "surrogatepass"),
            salt=base64.b64decode(salt + "=" * (-len(salt) % 4)),
            time_cost=int(cost["t"]),
            memory_cost=int(cost["m"]),
            parallelism=int(cost["p"]),
            hash_len=hash_chars * 3 // 4,
            type=Type.ID,
            version=int(version.removeprefix("v=")),
        )
        stale = _hasher.check_needs_rehash(f"{settings}${'A' * hash_chars}")
        new_hash = _hasher.hash(password) if stale else None
    finally:
        _hashing_slots.release()
    return base64.b64encode(raw).decode().rstrip("="), new_hash


def get_user(conn: psycopg.Connection, user_id: int) -> User | None:
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(QUERIES["get_user"], {"user_id": user_id}).fetchone()


def find_oidc_user(conn: psycopg.Connection, issuer: str, subject: str) -> User | None:
    """The account linked to this identity provider's issuer and subject (active or not: check `active`)."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(QUERIES["find_oidc_user"], {"issuer": issuer, "subject": subject}).fetchone()


def list_users(conn: psycopg.Connection) -> list[User]:
    """Every account for an admin (or the owner connection); anyone else sees only their own."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(QUERIES["list_users"]).fetchall()


# --- organizations and accounts ----------------------------------------------------------------


def create_organization(conn: psycopg.Connection, name: str) -> int:
    clean = _checked_name(name, "organization name")
    try:
        with conn.transaction():
            return conn.execute(QUERIES["create_organization"], {"name": clean}).fetchone()[0]
    except errors.UniqueViolation:
        raise ValueError(f"An organization named {clean!r} exists already.") from None
    except errors.InsufficientPrivilege as refusal:
        raise ActionRefused(_message(refusal)) from None


def list_organizations(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """id, name, credit_balance, created_at and users (accounts) of each organization, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES["list_organizations"]).fetchall()


def create_user(
    conn: psycopg.Connection,
    *,
    username: str,
    display_name: str,
    role: str,
    organization_id: int,
    password: str | None,
    oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
) -> User:
    """A new account; `password` None for one that signs in only through the identity provider.

    Raises ValueError naming what is wrong with the input, ActionRefused unless an admin is acting
    (or this is the first account, an admin).
    """
    clean_username = check_username(username)
    clean_display_name = _checked_name(display_name, "display name")
    check_role(role)
    if password is None and not (oidc_issuer and oidc_subject):
        raise ValueError("Give the account a password (or link it to an identity provider), else no one can sign in with it.")
    password_hash = _hasher.hash(check_password(password, username=clean_username)) if password is not None else None
    params = {
        "username": clean_username,
        "display_name": clean_display_name,
        "role": role,
        "organization_id": organization_id,
        "password_hash": password_hash,
        "oidc_issuer": oidc_issuer,
        "oidc_subject": oidc_subject,
    }
    try:
        with conn.transaction():
            user_id = conn.execute(QUERIES["create_user"], params).fetchone()[0]
            user = get_user(conn, user_id)
    except errors.UniqueViolation as clash:
        if "oidc" in (clash.diag.constraint_name or ""):
            raise ValueError("Another account is already linked to this identity.") from None
        raise ValueError(f"The username {clean_username!r} is taken.") from None
    except errors.ForeignKeyViolation:
        raise ValueError(f"No organization {organization_id}.") from None
    except errors.InsufficientPrivilege as refusal:
        raise ActionRefused(_message(refusal)) from None
    logger.info("account %s (%s) created", clean_username, role)
    return user


def set_user_role(conn: psycopg.Connection, user_id: int, role: str) -> None:
    check_role(role)
    _change_user(conn, "set_user_role", {"user_id": user_id, "role": role})


def set_user_active(conn: psycopg.Connection, user_id: int, active: bool) -> None:
    _change_user(conn, "set_user_active", {"user_id": user_id, "active": bool(active)})


def set_password(conn: psycopg.Connection, user_id: int, password: str) -> None:
    check_password(password)
    _change_user(conn, "set_user_password", {"user_id": user_id, "password_hash": _hasher.hash(password)})


def _change_user(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> None:
    """Run one of 0042's admin functions in a savepoint: a refusal leaves the caller's transaction usable."""
    try:
        with conn.transaction():
            found = conn.execute(QUERIES[query], params).fetchone()[0]
    except errors.InsufficientPrivilege as refusal:
        raise ActionRefused(_message(refusal)) from None
    if not found:
        raise ValueError(f"No account {params['user_id']}.")
    logger.info("account %s: %s", params["user_id"], query.removeprefix("set_user_"))


def ensure_first_admin(
    conn: psycopg.Connection, *, username: str = "admin", password: str | None = None, starting_credits: int = 0
) -> tuple[User, str | None]:
    """The first admin: created with organization "Default" when no account exists yet; a Default
    organization made here starts with `starting_credits` (the run command passes
    INKWELL_STARTING_CREDITS), so a new install's first request is not refused.

    Returns the admin and the generated password, to be shown once (None when `password` was
    given, or when accounts exist already: then the oldest admin is returned). Run on the owner
    connection; safe when several run commands start at once.
    """
    with conn.transaction():
        conn.execute(QUERIES["lock_first_admin"])
        if conn.execute(QUERIES["any_user_exists"]).fetchone()[0]:
            with conn.cursor(row_factory=class_row(User)) as cur:
                admin = cur.execute(QUERIES["first_admin"]).fetchone()
            if admin is None:
                raise RuntimeError("Accounts exist but none is an admin: make one an admin with psql "
                                   "(UPDATE inkwell.users SET role = 'admin' WHERE username = '…').")
            return admin, None
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(15)
        row = conn.execute(QUERIES["organization_id_by_name"], {"name": DEFAULT_ORGANIZATION}).fetchone()
        organization_id = row[0] if row else create_organization(conn, DEFAULT_ORGANIZATION)
        if not row and starting_credits > 0:
            conn.execute(QUERIES["grant_starting_credits"], {"organization_id": organization_id, "credits": starting_credits})
        admin = create_user(
            conn,
            username=username,
            display_name="Administrator",
            role="admin",
            organization_id=organization_id,
            password=password,
        )
    logger.info("first admin %s created", admin.username)
    return admin, password if generated else None


# --- input checks -----------------------------------------------------------------------------


def check_username(username: str) -> str:
    """The username as stored (lower case), or ValueError saying what is wrong."""
    name = (username or "").strip().lower()
    if not name:
        raise ValueError("The username is empty.")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"The username is longer than {MAX_NAME_CHARS} characters.")
    if not _USERNAME_CHARS.match(name):
        raise ValueError("A username may contain only letters, digits and . _ - @ (no spaces).")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; the roles are {', '.join(ROLES)}.")
    return role


def check_password(password: str | None, *, username: str = "") -> str:
    """The password, or ValueError saying why it is too weak."""
    if not password:
        raise ValueError("The password is empty.")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"The password is too short: at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"The password is longer than {MAX_PASSWORD_CHARS} characters.")
    lowered = password.lower()
    if len(set(password)) < 4 or lowered in _COMMON_PASSWORDS:
        raise ValueError("The password is too easy to guess: use a longer phrase or a password manager's.")
    if len(username) >= 3 and username.lower() in lowered:
        raise ValueError("The password must not contain the username.")
    return password


def _checked_name(value: str, what: str) -> str:
    name = (value or "").strip()
    if not name:
        raise ValueError(f"The {what} is empty.")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"The {what} is longer than {MAX_NAME_CHARS} characters.")
    return name


def _message(error: psycopg.Error) -> str:
    return error.diag.message_primary or str(error)


# --- audit log --------------------------------------------------------------------------------


def audit(conn: psycopg.Connection, action: str, target_type: str | None, target_id: object, details: dict | None = None) -> None:
    """One audit entry by the acting user ('system' on the owner connection), in the caller's transaction."""
    conn.execute(
        QUERIES["audit"],
        {
            "action": action,
            "target_type": target_type,
            "target_id": None if target_id is None else str(target_id),
            "details": Jsonb(details or {}),
        },
    )


def audit_entries(
    conn: psycopg.Connection,
    *,
    limit: int = 200,
    action: str | None = None,
    actor_user_id: int | None = None,
    target_type: str | None = None,
    target_id: object | None = None,
    before: Any = None,
) -> list[dict[str, Any]]:
    """The newest audit entries first: all of them for admins and operators, one's own for anyone else.

    Each: id, at, actor_user_id, actor_name, action, organization_id, organization_name,
    target_type, target_id, target_name (a user's or an organization's name; None for other
    targets), details. `before` (an aware datetime) pages further back.
    """
    params = {
        "limit": limit,
        "action": action,
        "actor_user_id": actor_user_id,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "before": before,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES["audit_entries"], params).fetchall()


def organization_name(conn: psycopg.Connection, organization_id: int) -> str | None:
    """An organization's name; None when there is none with this id (or the acting user may not read it)."""
    row = conn.execute(QUERIES["organization_name"], {"organization_id": organization_id}).fetchone()
    return row[0] if row else None
