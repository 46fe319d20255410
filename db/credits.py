"""Credits: balances, the ledger, top-ups, and the database's refusals of a submission.

The database does the accounting (migration 0045): each kind's price is reserved from the
organization's balance in the submit transaction, returned once if the request fails or is
cancelled, and reserved again if it is retried; per-user limits are checked there too. A refusal
is an error with one of the SQLSTATEs below and a message written for the person who submitted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.queries import QUERIES

NOT_ENOUGH_CREDITS = "IK001"
TOO_MANY_IN_FLIGHT = "IK002"
TOO_MANY_SUBMISSIONS = "IK003"
KIND_HAS_NO_PRICE = "IK004"
# Every "not enough credits" says where the cure is (the console's page; API callers read it too).
TOP_UP_HINT = "An admin adds credits on the Admin page, Organizations tab (Top up credits)."
# Migration 0080: an anonymous visitor's session or address made too many submissions.
TOO_MANY_VISITOR_SUBMISSIONS = "IK005"
SUBMISSION_REFUSALS = frozenset({NOT_ENOUGH_CREDITS, TOO_MANY_IN_FLIGHT, TOO_MANY_SUBMISSIONS, KIND_HAS_NO_PRICE, TOO_MANY_VISITOR_SUBMISSIONS})


class LedgerEntry(BaseModel):
    id: int
    organization_id: int
    request_id: uuid.UUID | None
    delta: int
    reason: str  # top_up, reserve, refund, adjustment
    actor_user_id: int | None
    actor_name: str | None
    note: str | None
    created_at: dt.datetime


def refusal_message(error: BaseException) -> str | None:
    """The database's message when it refused a submission or a retry (credits, limits, the acting
    user's role: role_refusal), else None.

    Looks through the causes too: Procrastinate wraps the errors of its own queries.
    """
    found = refusal(error)
    return found[1] if found else None


def refusal(error: BaseException | None) -> tuple[str, str] | None:
    """(SQLSTATE, message) of the database's refusal of a submission or a retry, else None."""
    while error is not None:
        if isinstance(error, psycopg.Error) and error.sqlstate in SUBMISSION_REFUSALS:
            message = error.diag.message_primary
            return error.sqlstate, f"{message} {TOP_UP_HINT}" if error.sqlstate == NOT_ENOUGH_CREDITS else message
        if isinstance(error, psycopg.errors.InsufficientPrivilege):
            return error.sqlstate, role_refusal(error)
        error = error.__cause__
    return None


ROLE_REFUSAL = (
    "Your role does not allow this: analysts read every request but change nothing, and editors "
    "act only on their own requests. Nothing was changed."
)
# What PostgreSQL itself says when a privilege or a row-level security policy refuses (the
# database's own refusals, RAISEd by Inkwell's functions and triggers, are sentences already).
_GENERIC_REFUSALS = ("new row violates row-level security", "permission denied")


def role_refusal(error: psycopg.Error) -> str:
    """A refusal of the database for people: Inkwell's own sentence, or ROLE_REFUSAL for
    PostgreSQL's privilege and row-level security errors (never their table names and SQL context)."""
    message = error.diag.message_primary or ""
    return ROLE_REFUSAL if not message or message.startswith(_GENERIC_REFUSALS) else message


@contextlib.contextmanager
def refusals_as(error_type: type[Exception], *, role_message: str | None = None) -> Iterator[None]:
    """Turn the database's refusal of a submission (credits, limits, the role) into
    `error_type(message)`; `role_message` says more precisely than ROLE_REFUSAL what the role may not do."""
    try:
        yield
    except psycopg.Error as error:
        if (found := refusal(error)) is None:
            raise
        sqlstate, message = found
        refused = error_type(role_message if role_message and message == ROLE_REFUSAL else message)
        refused.sqlstate = sqlstate  # what kind of refusal: the HTTP API answers 402, 403 or 429 by it
        raise refused from None


def top_up(conn: psycopg.Connection, organization_id: int, credits: int, *, note: str | None = None) -> int:
    """Add credits to an organization; returns the new balance.

    The database allows it to admins only (ActionRefused, with its sentence, otherwise) and writes
    the ledger and audit entries in the same transaction.
    """
    from db.people import ActionRefused

    try:
        with conn.transaction():
            return conn.execute(
                QUERIES["top_up_credits"], {"organization_id": organization_id, "credits": credits, "note": note}
            ).fetchone()[0]
    except psycopg.errors.InsufficientPrivilege as refusal:
        raise ActionRefused(role_refusal(refusal)) from None


def balance(conn: psycopg.Connection, organization_id: int) -> int | None:
    """The credits the organization can still spend (None: no such organization, or not visible)."""
    row = conn.execute(QUERIES["credit_balance"], {"organization_id": organization_id}).fetchone()
    return row[0] if row else None


def ledger(conn: psycopg.Connection, organization_id: int, limit: int = 50) -> list[LedgerEntry]:
    with conn.cursor(row_factory=class_row(LedgerEntry)) as cur:
        return cur.execute(QUERIES["credit_ledger"], {"organization_id": organization_id, "limit": limit}).fetchall()


def kind_costs(conn: psycopg.Connection) -> dict[str, int]:
    """Credits one request of each kind costs."""
    return dict(conn.execute(QUERIES["kind_costs"]).fetchall())
