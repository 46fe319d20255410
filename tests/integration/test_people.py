"""Accounts, passwords, sign-in, the first admin, acting as a user, and the audit log of people changes."""

from __future__ import annotations

import threading

import psycopg
import pytest
from argon2 import PasswordHasher

from db.connection import open_pool
from db.people import (
    ROLES,
    ActionRefused,
    User,
    acting_as,
    acting_as_session,
    audit_entries,
    authenticate,
    create_organization,
    create_user,
    ensure_first_admin,
    find_oidc_user,
    get_user,
    list_organizations,
    list_users,
    set_password,
    set_user_active,
    set_user_role,
)
from tests.support.people import ADMIN_PASSWORD, make_cast

PASSWORD = "plum orchard 42 sunrise"


@pytest.fixture
def cast(db):
    return make_cast(db)


def new_editor(db, admin: User, *, username: str = "dora", password: str | None = PASSWORD) -> User:
    with acting_as(db, admin):
        return create_user(
            db, username=username, display_name="Dora", role="editor", organization_id=admin.organization_id, password=password
        )


def stored_hash(db, user: User) -> str:
    return db.execute("SELECT password_hash FROM inkwell.users WHERE id = %s", (user.id,)).fetchone()[0]


# --- passwords and sign-in ---


def test_a_password_is_stored_as_an_argon2id_hash_and_signs_in(db, cast):
    dora = new_editor(db, cast.admin)
    assert stored_hash(db, dora).startswith("$argon2id$")
    assert PASSWORD not in stored_hash(db, dora)
    assert authenticate(db, "dora", PASSWORD) == dora
    assert authenticate(db, "  DORA ", PASSWORD) == dora, "usernames are not case-sensitive"


@pytest.mark.parametrize("username, password", [
    ("dora", "plum orchard 42 sunrisE"),
    ("dora", ""),
    ("nobody", PASSWORD),
    ("", PASSWORD),
])
def test_a_wrong_password_or_unknown_username_signs_in_no_one(db, cast, username, password):
    new_editor(db, cast.admin)
    assert authenticate(db, username, password) is None


def test_an_account_without_a_password_cannot_sign_in_with_one(db, cast):
    assert find_oidc_user(db, "https://idp.example", "ana") == cast.ana
    assert authenticate(db, "ana", "") is None
    assert authenticate(db, "ana", PASSWORD) is None


def test_a_deactivated_account_cannot_sign_in(db, cast):
    dora = new_editor(db, cast.admin)
    with acting_as(db, cast.admin):
        set_user_active(db, dora.id, False)
    assert authenticate(db, "dora", PASSWORD) is None
    assert get_user(db, dora.id).active is False
    with acting_as(db, cast.admin):
        set_user_active(db, dora.id, True)
    assert authenticate(db, "dora", PASSWORD) == dora


def test_a_hash_made_with_older_parameters_is_replaced_at_sign_in(db, cast):
    dora = new_editor(db, cast.admin)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    db.execute("UPDATE inkwell.users SET password_hash = %s WHERE id = %s", (weak, dora.id))

    assert authenticate(db, "dora", PASSWORD) == dora
    assert stored_hash(db, dora) != weak
    assert not PasswordHasher().check_needs_rehash(stored_hash(db, dora))
    assert authenticate(db, "dora", PASSWORD) == dora


def test_an_admin_sets_a_new_password(db, cast):
    dora = new_editor(db, cast.admin)
    with acting_as(db, cast.admin):
        set_password(db, dora.id, "a brand new passphrase")
    assert authenticate(db, "dora", PASSWORD) is None
    assert authenticate(db, "dora", "a brand new passphrase") == dora


# --- input checks ---


@pytest.mark.parametrize("changes, message", [
    ({"username": "  "}, "The username is empty"),
    ({"username": "x" * 101}, "longer than 100 characters"),
    ({"username": "dora smith"}, "only letters, digits"),
    ({"display_name": ""}, "The display name is empty"),
    ({"display_name": "d" * 101}, "display name is longer than 100"),
    ({"role": "boss"}, "Unknown role 'boss'; the roles are editor, operator, analyst, admin"),
    ({"password": "short1"}, "too short: at least 10 characters"),
    ({"password": "aaaaaaaaaaaa"}, "too easy to guess"),
    ({"password": "password123"}, "too easy to guess"),
    ({"password": "dora-is-the-best"}, "must not contain the username"),
    ({"password": None}, "Give the account a password"),
    ({"organization_id": 999_999}, "No organization 999999"),
    ({"username": "ana"}, "The username 'ana' is taken"),
])
def test_invalid_accounts_are_refused_saying_what_is_wrong(db, cast, changes, message):
    fields = {"username": "dora", "display_name": "Dora", "role": "editor",
              "organization_id": cast.admin.organization_id, "password": PASSWORD, **changes}
    with acting_as(db, cast.admin):
        with pytest.raises(ValueError, match=message):
            create_user(db, **fields)
        assert [u.username for u in list_users(db)].count("dora") == 0


def test_organization_names_are_checked(db, cast):
    with acting_as(db, cast.admin):
        with pytest.raises(ValueError, match="The organization name is empty"):
            create_organization(db, "  ")
        with pytest.raises(ValueError, match="'Acme' exists already"):
            create_organization(db, "Acme")
        initech = create_organization(db, "  Initech ")
        assert [(o["id"], o["name"], o["users"]) for o in list_organizations(db) if o["name"] == "Initech"] == [(initech, "Initech", 0)]


def test_roles_are_the_four_of_the_issue():
    assert ROLES == ("editor", "operator", "analyst", "admin")


# --- admin-only changes ---


ADMIN_CHANGES = {
    "set_user_role": lambda db, cast: set_user_role(db, cast.ana.id, "admin"),
    "set_user_active": lambda db, cast: set_user_active(db, cast.bea.id, False),
    "set_password": lambda db, cast: set_password(db, cast.bea.id, "someone else's new password"),
    "create_organization": lambda db, cast: create_organization(db, "Initech"),
    "create_user": lambda db, cast: create_user(db, username="eve", display_name="Eve", role="admin",
                                                organization_id=cast.ana.organization_id, password=PASSWORD),
}


@pytest.mark.parametrize("who", ["ana", "olga", "ali"])
def test_only_an_admin_changes_accounts(db, cast, who):
    before = (list_users(db), list_organizations(db))
    with acting_as(db, getattr(cast, who)):
        for name, change in ADMIN_CHANGES.items():
            with pytest.raises(ActionRefused, match="Only admins can"):
                change(db, cast)
            # The refusal left the transaction usable for what comes next.
            assert db.execute("SELECT 1").fetchone() == (1,), name
    assert (list_users(db), list_organizations(db)) == before


def test_the_owner_connection_without_an_acting_admin_changes_no_account_either(db, cast):
    with pytest.raises(ActionRefused, match="Only admins can change roles"):
        set_user_role(db, cast.ana.id, "operator")


def test_role_changes_apply_at_once_and_are_audited(db, cast):
    with acting_as(db, cast.admin):
        set_user_role(db, cast.ana.id, "operator")
        set_user_active(db, cast.bea.id, False)
        set_password(db, cast.carl.id, "carl's new passphrase")

    assert get_user(db, cast.ana.id).role == "operator"
    with acting_as(db, cast.ana):
        assert db.execute("SELECT inkwell.acting_role()").fetchone()[0] == "operator"
    entries = [(e["action"], e["actor_name"], e["target_id"], e["details"]) for e in audit_entries(db, target_type="user", limit=3)]
    assert entries == [
        ("user.password_set", "admin", str(cast.carl.id), {}),
        ("user.deactivated", "admin", str(cast.bea.id), {}),
        ("user.role_changed", "admin", str(cast.ana.id), {"from": "editor", "to": "operator"}),
    ]
    assert "passphrase" not in str(audit_entries(db))


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(db, cast):
    with acting_as(db, cast.admin):
        with pytest.raises(ActionRefused, match="would leave no active admin"):
            set_user_role(db, cast.admin.id, "editor")
        with pytest.raises(ActionRefused, match="would leave no active admin"):
            set_user_active(db, cast.admin.id, False)
        set_user_role(db, cast.olga.id, "admin")
        set_user_role(db, cast.admin.id, "editor")  # another admin remains
    assert get_user(db, cast.admin.id).role == "editor"


def test_changing_an_unknown_account_says_so(db, cast):
    with acting_as(db, cast.admin), pytest.raises(ValueError, match="No account 999999"):
        set_user_role(db, 999_999, "editor")


def test_lists_of_users_follow_the_role(db, cast):
    with acting_as(db, cast.admin):
        assert {u.username for u in list_users(db)} == {"admin", "ana", "bea", "carl", "olga", "ali"}
    with acting_as(db, cast.carl):
        assert list_users(db) == [cast.carl]
        assert [o["name"] for o in list_organizations(db)] == ["Globex"]


# --- the first admin ---


def test_the_first_admin_is_created_once_with_a_generated_password(db):
    admin, password = ensure_first_admin(db)
    assert (admin.username, admin.role, admin.organization_name, admin.active) == ("admin", "admin", "Default", True)
    assert password and len(password) >= 16
    assert authenticate(db, "admin", password) == admin

    again, no_password = ensure_first_admin(db)
    assert (again, no_password) == (admin, None)
    assert len(list_users(db)) == 1
    assert [e["action"] for e in audit_entries(db)] == ["user.created", "organization.created"]


def test_the_first_admin_takes_a_given_name_and_password(db):
    admin, shown = ensure_first_admin(db, username="Root", password=ADMIN_PASSWORD)
    assert (admin.username, shown) == ("root", None)
    assert authenticate(db, "root", ADMIN_PASSWORD) == admin


def test_two_run_commands_starting_at_once_make_one_first_admin(database_url):
    admins: list[tuple[User, str | None]] = []

    def start() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            admins.append(ensure_first_admin(conn))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admins[0][0] == admins[1][0]
    assert sorted(password is None for _, password in admins) == [False, True], "one password to show"


def test_the_first_account_made_otherwise_must_be_an_admin(db):
    organization = create_organization(db, "Default")
    with pytest.raises(ActionRefused, match="The first account must be an admin"):
        create_user(db, username="ed", display_name="Ed", role="editor", organization_id=organization, password=PASSWORD)


# --- acting as a user ---


def test_acting_ends_with_its_transaction(db, cast):
    with acting_as(db, cast.ana):
        assert db.execute("SELECT current_user, inkwell.acting_user_id()").fetchone() == ("inkwell_console", cast.ana.id)
    assert db.execute("SELECT current_user, inkwell.acting_user_id()").fetchone() == ("postgres", None)

    with pytest.raises(RuntimeError), acting_as(db, cast.ana):
        raise RuntimeError("the page failed")
    assert db.execute("SELECT current_user, inkwell.acting_user_id()").fetchone() == ("postgres", None)


def test_acting_refuses_a_connection_inside_a_transaction(db, cast):
    with db.transaction(), pytest.raises(RuntimeError, match="no transaction open"):
        with acting_as(db, cast.ana):
            pass


def test_a_pooled_connection_acting_for_a_session_goes_back_to_the_pool_as_the_owner(database_url, db, cast):
    pool = open_pool(database_url, max_size=1)
    try:
        with pool.connection() as conn, acting_as_session(conn, cast.ana):
            with conn.transaction():
                assert conn.execute("SELECT current_user").fetchone() == ("inkwell_console",)
            assert conn.execute("SELECT inkwell.acting_user_id()").fetchone() == (cast.ana.id,), "across transactions"
            conn.execute("BEGIN")  # a transaction left open is rolled back on the way out
        with pool.connection() as conn:
            assert conn.execute("SELECT current_user, inkwell.acting_user_id()").fetchone() == ("postgres", None)
    finally:
        pool.close()


# --- the audit log ---


def test_the_audit_log_is_for_admins_and_operators_and_others_see_their_own(db, cast):
    with acting_as(db, cast.admin):
        set_user_role(db, cast.bea.id, "analyst")
    with acting_as(db, cast.olga):
        assert any(e["action"] == "user.role_changed" for e in audit_entries(db))
    with acting_as(db, cast.ana):
        assert audit_entries(db) == []
    with acting_as(db, cast.bea):
        assert audit_entries(db) == []  # she was the target, not the actor


def test_audit_entries_narrow_and_page(db, cast):
    for role in ("operator", "analyst", "editor"):
        with acting_as(db, cast.admin):  # one transaction each: entries of one transaction share their time
            set_user_role(db, cast.ana.id, role)
    newest = audit_entries(db, action="user.role_changed", limit=2)
    assert [e["details"]["to"] for e in newest] == ["editor", "analyst"]
    older = audit_entries(db, action="user.role_changed", before=newest[-1]["at"])
    assert [e["details"]["to"] for e in older] == ["operator"]
    assert audit_entries(db, actor_user_id=cast.admin.id, action="user.role_changed", limit=10) == newest + older
