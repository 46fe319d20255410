"""The identity the database trusts is a secret (a live session's token), not a number.

Each test attacks the session design as SQL running on the console's connection would, and is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import psycopg
import pytest

from db.people import (
    ActionRefused,
    acting_as,
    end_session,
    set_password,
    set_user_active,
    set_user_role,
    start_session,
    user_for_session,
)
from tests.support.people import make_cast


@pytest.fixture
def cast(db):
    return make_cast(db)


def acting(db, token: str) -> tuple:
    with acting_as(db, token):
        return db.execute("SELECT inkwell.acting_user_id(), inkwell.acting_role()").fetchone()


def test_a_session_token_acts_as_its_user_and_is_stored_only_hashed(db, cast):
    token = start_session(db, cast.ana.id)
    assert acting(db, token) == (cast.ana.id, "editor")
    stored = db.execute("SELECT token_hash, kind FROM inkwell.sessions WHERE user_id = %s", (cast.ana.id,)).fetchall()
    assert stored == [(hashlib.sha256(token.encode()).digest(), "console")]
    assert token.encode() not in stored[0][0]
    assert user_for_session(db, token) == cast.ana


def test_a_made_up_token_is_nobody(db, cast):
    start_session(db, cast.admin.id)
    assert acting(db, secrets.token_urlsafe(32)) == (None, None)
    assert user_for_session(db, secrets.token_urlsafe(32)) is None
    assert user_for_session(db, "") is None


def test_setting_the_old_user_id_does_nothing(db, cast):
    ana = start_session(db, cast.ana.id)
    with acting_as(db, ana):
        db.execute("SELECT set_config('inkwell.user_id', %s, true)", (str(cast.admin.id),))
        assert db.execute("SELECT inkwell.acting_user_id(), inkwell.acting_role()").fetchone() == (cast.ana.id, "editor")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Only admins"), db.transaction():
            db.execute("SELECT inkwell.set_user_role(%s, 'admin')", (cast.ana.id,))
    with db.transaction():
        db.execute("SET LOCAL ROLE inkwell_console")
        db.execute("SELECT set_config('inkwell.user_id', %s, true)", (str(cast.admin.id),))
        assert db.execute("SELECT inkwell.acting_role(), count(*) FROM inkwell.users").fetchone() == (None, 0)


def test_the_console_role_cannot_read_or_write_sessions_nor_start_one_for_someone_else(db, cast):
    ana = start_session(db, cast.ana.id)
    with acting_as(db, ana):
        for statement in (
            "SELECT * FROM inkwell.sessions",
            "UPDATE inkwell.sessions SET revoked_at = NULL",
            "INSERT INTO inkwell.sessions (user_id, token_hash, kind) VALUES (1, 'x', 'console')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"), db.transaction():
                db.execute(statement)
        with pytest.raises(ActionRefused, match="only by signing in"):
            start_session(db, cast.admin.id)
        # For herself (an API token made while signed in) it is allowed.
        api_token = start_session(db, cast.ana.id, kind="api", name="ci")
    assert acting(db, api_token) == (cast.ana.id, "editor")


def test_nobody_cannot_start_a_session_for_anyone(db, cast):
    with acting_as(db, secrets.token_urlsafe(32)), pytest.raises(ActionRefused, match="only by signing in"):
        start_session(db, cast.admin.id)
    assert db.execute("SELECT count(*) FROM inkwell.sessions WHERE user_id = %s AND revoked_at IS NULL",
                      (cast.admin.id,)).fetchone() == (0,)


def test_sign_out_ends_the_session_at_once(db, cast):
    token = start_session(db, cast.ana.id)
    other = start_session(db, cast.ana.id)
    end_session(db, token)
    assert acting(db, token) == (None, None)
    assert user_for_session(db, token) is None
    assert user_for_session(db, other) == cast.ana, "only the session signed out of ends"


def test_an_expired_session_is_nobody(db, cast):
    token = start_session(db, cast.ana.id, expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    assert acting(db, token) == (cast.ana.id, "editor")
    db.execute("UPDATE inkwell.sessions SET expires_at = now() - interval '1 second'")
    assert acting(db, token) == (None, None)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda db, user: set_password(db, user.id, "a brand new passphrase"), id="password reset"),
        pytest.param(lambda db, user: set_user_role(db, user.id, "analyst"), id="role change"),
        pytest.param(lambda db, user: set_user_active(db, user.id, False), id="deactivation"),
    ],
)
def test_a_password_reset_role_change_or_deactivation_ends_every_session_of_the_account(db, cast, change):
    console = start_session(db, cast.ana.id)
    api = start_session(db, cast.ana.id, kind="api", name="ci")
    bea = start_session(db, cast.bea.id)
    with acting_as(db, cast.admin):
        change(db, cast.ana)
    assert acting(db, console) == (None, None)
    assert acting(db, api) == (None, None)
    assert db.execute("SELECT count(*) FROM inkwell.sessions WHERE user_id = %s AND revoked_at IS NULL",
                      (cast.ana.id,)).fetchone() == (0,)
    assert acting(db, bea) == (cast.bea.id, "editor"), "other accounts keep theirs"
    if "active" not in str(change):
        with acting_as(db, cast.admin):
            set_user_active(db, cast.ana.id, True)
        assert acting(db, console) == (None, None), "an ended session stays ended"


def test_an_admin_changing_their_own_password_is_audited_as_themselves_and_signed_out(db, cast):
    token = start_session(db, cast.admin.id)
    with acting_as(db, token):
        set_password(db, cast.admin.id, "a brand new passphrase")
    actor = db.execute("SELECT actor_name FROM inkwell.audit_log WHERE action = 'user.password_set'").fetchone()
    assert actor == ("admin",)
    assert user_for_session(db, token) is None


def test_the_session_records_its_last_use(db, cast):
    token = start_session(db, cast.ana.id)
    used = "SELECT last_used_at IS NOT NULL FROM inkwell.sessions WHERE user_id = %s"
    assert db.execute(used, (cast.ana.id,)).fetchone() == (False,)
    user_for_session(db, token)
    assert db.execute(used, (cast.ana.id,)).fetchone() == (True,)
