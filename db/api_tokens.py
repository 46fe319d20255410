"""API tokens: sessions of kind 'api' (db.people.start_session) that people create, list and revoke
on the console's API tokens page. A token is shown once, when it is made; the database keeps only
its sha256 (migration 0070). Listing and revoking go through 0081's functions, which show and end
only the acting user's own tokens, or anyone's for an admin. An API call acts through its token
with act_with_token, or reads a request in one statement with read_request_as_api_caller
(migration 0110)."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.people import User, audit, start_session
from db.queries import QUERIES
from db.requests import GenerationRequest

MAX_NAME_CHARS = 100


class ApiToken(BaseModel):
    id: int
    user_id: int
    username: str
    name: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def is_live(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def create_token(conn: psycopg.Connection, user: User, name: str, expires_at: dt.datetime | None = None) -> str:
    """A new API token of `user` (the acting user); returns the raw token, to be shown once.

    ValueError names what is wrong with the name or the expiry.
    """
    clean = (name or "").strip()
    if not clean:
        raise ValueError("Name the token after what will use it (a site, an app), so you know which to revoke.")
    if len(clean) > MAX_NAME_CHARS:
        raise ValueError(f"The token's name is longer than {MAX_NAME_CHARS} characters.")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValueError("The expiry needs a time zone.")
        if expires_at <= dt.datetime.now(dt.timezone.utc):
            raise ValueError("The expiry is in the past: choose a later date, or none.")
    with conn.transaction():
        token = start_session(conn, user.id, kind="api", name=clean, expires_at=expires_at)
        audit(conn, "api_token.created", "user", user.id, {"name": clean, "expires_at": expires_at.isoformat() if expires_at else None})
    return token


def list_tokens(conn: psycopg.Connection) -> list[ApiToken]:
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        return cur.execute(QUERIES["list_api_tokens"]).fetchall()


def revoke_token(conn: psycopg.Connection, token_id: int) -> bool:
    """End a token at once; False when the acting user may not, or it had ended already."""
    return bool(conn.execute(QUERIES["revoke_api_token"], {"token_id": token_id}).fetchone()[0])


class TokenRefused(Exception):
    """The API token names no live session (unknown, revoked, expired, inactive account)."""


def act_with_token(conn: psycopg.Connection, token: str) -> User | None:
    """First thing in a transaction on `conn`: act through the session of this API token until the
    transaction ends (as db.people.acting_as does), its use recorded (at most once a minute); the
    token's account, or None when the session is not live. One statement (migration 0110) where
    acting_as and a separate token check took two."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(QUERIES["act_with_api_token"], {"token": token}).fetchone()


async def read_request_as_api_caller(
    conn: psycopg.AsyncConnection, request_id: uuid.UUID, *, token: str | None = None, visitor_hash: str | None = None
) -> GenerationRequest | None:
    """A status poll in one statement on an idle autocommit connection (migration 0110): the request
    as the API token's user, or the anonymous visitor of `visitor_hash`, may see it under row-level
    security; None when they may not, or there is none. TokenRefused when the token is not live
    (checked, and its use recorded, in the same statement)."""
    try:
        async with conn.cursor(row_factory=class_row(GenerationRequest)) as cur:
            await cur.execute(
                QUERIES["read_request_as_api_caller"],
                {"token": token, "visitor_hash": visitor_hash, "request_id": request_id},
            )
            return await cur.fetchone()
    except psycopg.errors.InvalidAuthorizationSpecification:
        raise TokenRefused from None
