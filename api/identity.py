"""Who is calling: a Bearer token (an API session of a user) or an anonymous visitor's session id.

The one adapter between HTTP headers and the database's identity. A Bearer token is the raw token
of a session of kind 'api' (db.people.start_session): every query of the call runs as its user
(db.api_tokens.act_with_token, the same settings as db.people.acting_as), under the same row-level
security as the console, so another organization's job answers 404 like an unknown one. A status
poll checks the token and reads in one statement (read_request). An anonymous visitor (x-session-id, website
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
from db.api_tokens import TokenRefused, act_with_token, read_request_as_api_caller
from db.connection import checked_async_connection, checked_connection
from db.people import User
from db.requests import GenerationRequest
from db.visitors import acting_as_visitor, check_session_id, visitor_hash

BEARER_HELP = "Send your API token as `Authorization: Bearer <token>` (create one on the console's API tokens page)."


@dataclass
class Caller:
    """Who is calling, from the headers; `user` is filled in by `acting` (the token checked there)."""

    token: str | None = None
    session_id: str | None = None
    address: str = ""
    user: User | None = None

    @property
    def is_visitor(self) -> bool:
        return self.token is None


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def _token_refused() -> ApiError:
    return _unauthorized("invalid_token", "This API token is unknown, revoked or expired. " + BEARER_HELP)


def identify(*, authorization: str | None, session_id: str | None, address: str, visitors_allowed: bool) -> Caller:
    """The caller these headers name, or ApiError 401 when they name none. The token itself is
    checked by `acting`, in the transaction that does the call's work."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("unauthorized", "The Authorization header is not `Bearer <token>`. " + BEARER_HELP)
        return Caller(token=token, address=address)
    if session_id and visitors_allowed:
        try:
            return Caller(session_id=check_session_id(session_id), address=address)
        except ValueError as error:
            raise _unauthorized("invalid_session_id", str(error)) from None
    if visitors_allowed:
        raise _unauthorized("unauthorized", "Send an API token, or an x-session-id header for an anonymous analysis. " + BEARER_HELP)
    raise _unauthorized("unauthorized", BEARER_HELP)


@contextlib.contextmanager
def acting(pool: psycopg_pool.ConnectionPool, caller: Caller) -> Iterator[psycopg.Connection]:
    """A pooled connection in one transaction acting as the caller, its token checked first (401 for
    an unknown, revoked or expired one: a revoked token is refused at its next call). QueueUnavailable
    when the database is out of reach."""
    with checked_connection(pool) as conn:
        if caller.token is not None:
            with conn.transaction():
                caller.user = act_with_token(conn, caller.token)
                if caller.user is None:
                    raise _token_refused()
                yield conn
        else:
            with acting_as_visitor(conn, caller.session_id):
                yield conn


async def read_request(pool: psycopg_pool.AsyncConnectionPool, caller: Caller, request_id) -> GenerationRequest | None:
    """The request as the caller may see it (None: hidden or unknown, alike), in one statement: the
    token's check and the read under row-level security together (a status poll's one round trip)."""
    async with checked_async_connection(pool) as conn:
        try:
            return await read_request_as_api_caller(
                conn, request_id, token=caller.token,
                visitor_hash=None if caller.token is not None else visitor_hash(caller.session_id),
            )
        except TokenRefused:
            raise _token_refused() from None
