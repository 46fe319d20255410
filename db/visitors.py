"""Anonymous visitors of the HTTP API: a website analysis asked for with a session id and no account.

The database keeps only the sha256 of a visitor's session id (migration 0080). `acting_as_visitor`
opens a transaction in which row-level security lets the visitor see, cancel and retry only the
requests made with the same id, and submit only website analyses; `admit_submission` counts a
submission against the per-id and per-address limits, in the submission's transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import psycopg
from psycopg.pq import TransactionStatus

from db.queries import QUERIES

MIN_SESSION_ID_CHARS = 8
MAX_SESSION_ID_CHARS = 200


def visitor_hash(session_id: str) -> str:
    """The hex sha256 of a session id: all the database ever holds of it."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def check_session_id(session_id: str) -> str:
    """The session id, or ValueError saying what is wrong with it."""
    if not (MIN_SESSION_ID_CHARS <= len(session_id) <= MAX_SESSION_ID_CHARS):
        raise ValueError(f"A session id is {MIN_SESSION_ID_CHARS} to {MAX_SESSION_ID_CHARS} characters long.")
    if not session_id.isascii() or not session_id.isprintable() or " " in session_id:
        raise ValueError("A session id is printable ASCII without spaces.")
    return session_id


@contextlib.contextmanager
def acting_as_visitor(conn: psycopg.Connection, session_id: str) -> Iterator[psycopg.Connection]:
    """A transaction on `conn` acting as the visitor with this session id (no user, no organization)."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("acting_as_visitor needs a connection with no transaction open")
    with conn.transaction():
        conn.execute(QUERIES["act_as_visitor"], {"visitor_hash": visitor_hash(session_id)})
        yield conn


def admit_submission(conn: psycopg.Connection, client_address: str, *, per_visitor: int, per_address: int) -> None:
    """Count one submission of the acting visitor from this address; the database refuses one over
    the limits with IK005 and a message that says how long to wait (db.credits.refusal)."""
    address_hash = hashlib.sha256(client_address.encode()).digest()
    conn.execute(
        QUERIES["admit_visitor_submission"],
        {"address_hash": address_hash, "per_visitor": per_visitor, "per_address": per_address},
    )
