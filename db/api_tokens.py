"""API tokens: sessions of kind 'api' (db.people.start_session) that people create, list and revoke
on the console's API tokens page. A token is shown once, when it is made; the database keeps only
its sha256 (migration 0070). Listing and revoking go through 0081's functions, which show and end
only the acting user's own tokens, or anyone's for an admin."""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel

from db.people import User, audit, start_session
from db.queries import QUERIES

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


def token_user(conn: psycopg.Connection) -> User | None:
    """Inside acting_as(conn, token): the token's account, its use recorded; None when the session
    is not live (unknown, revoked, expired, inactive account). One statement, in the caller's
    transaction, so an API call checks its token and does its work in one transaction."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(QUERIES["api_caller"]).fetchone()
