"""Who is calling: a Bearer token (an API session of a user) or an anonymous visitor's session id.

The one adapter between HTTP headers and the database's identity. A Bearer token is the raw token
of a session of kind 'api' (db.people: start_session / user_for_session / acting_as): every query
of the call runs as its user, under the same row-level security as the console, so another
organization's job answers 404 like an unknown one. An anonymous visitor (x-session-id, website
analyses only) acts through db.visitors.acting_as_visitor: the database keeps only the id's sha256
on the requests it makes and shows it only those.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import psycopg_pool

from api.errors import ApiError
from db.connection import console_connection
from db.people import User, acting_as, user_for_session
from db.visitors import acting_as_visitor, check_session_id

BEARER_HELP = "Send your API token as `Authorization: Bearer <token>` (create one on the console's API tokens page)."


@dataclass(frozen=True)
class Caller:
    user: User | None
    token: str | None = None
    session_id: str | None = None
    address: str = ""

    @property
    def is_visitor(self) -> bool:
        return self.user is None


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def identify(
    pool: psycopg_pool.ConnectionPool,
    *,
    authorization: str | None,
    session_id: str | None,
    address: str,
    visitors_allowed: bool,
) -> Caller:
    """The caller of this request, or ApiError 401 (no credentials, an unknown, revoked or expired token)."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("unauthorized", "The Authorization header is not `Bearer <token>`. " + BEARER_HELP)
        with console_connection(pool) as conn:
            user = user_for_session(conn, token)
        if user is None:
            raise _unauthorized("invalid_token", "This API token is unknown, revoked or expired. " + BEARER_HELP)
        return Caller(user=user, token=token, address=address)
    if session_id and visitors_allowed:
        try:
            return Caller(user=None, session_id=check_session_id(session_id), address=address)
        except ValueError as error:
            raise _unauthorized("invalid_session_id", str(error)) from None
    if visitors_allowed:
        raise _unauthorized("unauthorized", "Send an API token, or an x-session-id header for an anonymous analysis. " + BEARER_HELP)
    raise _unauthorized("unauthorized", BEARER_HELP)


@contextlib.contextmanager
def acting(pool: psycopg_pool.ConnectionPool, caller: Caller) -> Iterator[psycopg.Connection]:
    """A pooled connection in a transaction acting as the caller; QueueUnavailable when the database is out of reach."""
    with console_connection(pool) as conn:
        if caller.token is not None:
            with acting_as(conn, caller.token):
                yield conn
        else:
            with acting_as_visitor(conn, caller.session_id):
                yield conn
