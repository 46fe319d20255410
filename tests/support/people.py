"""A small cast of accounts in two organizations, made through db.people as an admin would."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from db.people import User, acting_as, create_organization, create_user, ensure_first_admin

ADMIN_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Cast:
    admin: User
    ana: User  # editor, Acme
    bea: User  # editor, Acme (Ana's colleague)
    carl: User  # editor, Globex (the other organization)
    olga: User  # operator, Globex
    ali: User  # analyst, Acme


def make_cast(conn: psycopg.Connection, *, credits: int = 1_000) -> Cast:
    """Organizations Acme and Globex and their accounts, on an owner (autocommit) connection.

    Accounts other than the admin sign in through an identity provider (no password hash to make:
    hashing is deliberately slow). Each organization gets `credits` to submit with.
    """
    admin, _ = ensure_first_admin(conn, password=ADMIN_PASSWORD)
    with acting_as(conn, admin):
        acme = create_organization(conn, "Acme")
        globex = create_organization(conn, "Globex")

        def account(username: str, role: str, organization_id: int) -> User:
            return create_user(
                conn, username=username, display_name=username.title(), role=role, organization_id=organization_id,
                password=None, oidc_issuer="https://idp.example", oidc_subject=username,
            )

        cast = Cast(
            admin=admin,
            ana=account("ana", "editor", acme),
            bea=account("bea", "editor", acme),
            carl=account("carl", "editor", globex),
            olga=account("olga", "operator", globex),
            ali=account("ali", "analyst", acme),
        )
    # Set directly as the owner: how credits are topped up is not what these tests are about.
    conn.execute("UPDATE inkwell.organizations SET credit_balance = %s", (credits,))
    return cast
