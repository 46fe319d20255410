"""Sign-in resists guessing (migration 0073, db.people.sign_in): per account and per client address a
growing delay, then a 15-minute lock; the right password is refused meanwhile; failed, throttled and
locked sign-ins are in the audit log; and only so many password hashes are computed at once."""

from __future__ import annotations

import threading
import time

import pytest

import db.people as people
from db.people import SignInBusy, SignInThrottled, sign_in
from tests.support.console import PASSWORD, make_user

WRONG = "not the password at all"


def waited(db, scope: str, key: str, seconds: float) -> None:
    """As if `seconds` had passed since the last failure (and any lock)."""
    db.execute(
        """UPDATE inkwell.sign_in_throttle
              SET last_failure_at = last_failure_at - make_interval(secs => %s),
                  locked_until = locked_until - make_interval(secs => %s)
            WHERE scope = %s AND key = %s""",
        (seconds, seconds, scope, key),
    )


def audit_actions(db) -> list[str]:
    return [a for (a,) in db.execute("SELECT action FROM inkwell.audit_log WHERE action LIKE 'sign_in.%' ORDER BY id")]


def test_25_wrong_passwords_in_a_row_then_the_right_one_is_refused(db):
    make_user(db, "editor", username="eve")
    refusals = 0
    for _ in range(25):
        try:
            assert sign_in(db, "eve", WRONG) is None
        except SignInThrottled:
            refusals += 1
    assert refusals >= 20, "after the third failure, every immediate try is refused"
    with pytest.raises(SignInThrottled, match="Too many failed sign-ins: try again in"):
        sign_in(db, "eve", PASSWORD)


def test_the_delay_grows_then_the_account_locks_for_15_minutes(db):
    make_user(db, "editor", username="eve")
    waits = []
    for failure in range(1, 10):
        assert sign_in(db, "eve", WRONG) is None
        if failure >= 3:
            with pytest.raises(SignInThrottled) as throttled:
                sign_in(db, "eve", PASSWORD)
            waits.append(throttled.value.wait_seconds)
            waited(db, "account", "eve", throttled.value.wait_seconds)
    assert waits == [1, 2, 4, 8, 16, 32, 60], waits
    assert sign_in(db, "eve", WRONG) is None  # the 10th failure
    with pytest.raises(SignInThrottled, match="try again in 15 minutes") as locked:
        sign_in(db, "eve", PASSWORD)
    assert 14 * 60 < locked.value.wait_seconds <= 15 * 60
    actions = audit_actions(db)
    assert actions.count("sign_in.failed") == 9 and "sign_in.locked" in actions and "sign_in.throttled" in actions

    waited(db, "account", "eve", 15 * 60)
    user, token = sign_in(db, "eve", PASSWORD)
    assert user.username == "eve" and token
    assert db.execute("SELECT count(*) FROM inkwell.sign_in_throttle WHERE scope = 'account'").fetchone() == (0,), \
        "a success resets the account's count"


def test_one_address_guessing_many_usernames_is_locked_and_others_are_not(db):
    make_user(db, "editor", username="eve")
    for n in range(50):
        try:
            sign_in(db, f"guess{n}", WRONG, address="203.0.113.9")
        except SignInThrottled as throttled:
            waited(db, "address", "203.0.113.9", throttled.wait_seconds)
            assert sign_in(db, f"guess{n}", WRONG, address="203.0.113.9") is None
    with pytest.raises(SignInThrottled, match="15 minutes"):
        sign_in(db, "eve", PASSWORD, address="203.0.113.9")
    user, _ = sign_in(db, "eve", PASSWORD, address="198.51.100.7")
    assert user.username == "eve", "another address signs in"
    entry = db.execute(
        "SELECT details FROM inkwell.audit_log WHERE action = 'sign_in.locked' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    assert entry["address"] == "203.0.113.9" and entry["reason"] == "unknown username"


def test_failed_sign_ins_are_audited_with_the_username_the_address_and_why(db):
    eve = make_user(db, "editor", username="eve")
    assert sign_in(db, "eve", WRONG, address="192.0.2.1") is None
    assert sign_in(db, "nobody", WRONG, address="192.0.2.1") is None
    rows = db.execute(
        "SELECT actor_name, target_id, details FROM inkwell.audit_log WHERE action = 'sign_in.failed' ORDER BY id"
    ).fetchall()
    assert [(name, target, d["username"], d["address"], d["reason"]) for name, target, d in rows] == [
        ("sign-in", str(eve.id), "eve", "192.0.2.1", "wrong password"),
        ("sign-in", "nobody", "nobody", "192.0.2.1", "unknown username"),
    ]


def test_no_more_than_two_password_hashes_are_computed_at_once(db, monkeypatch):
    make_user(db, "editor", username="eve")
    running, most = 0, 0
    lock = threading.Lock()
    real_hash = people.hash_secret_raw

    def counting_hash(**kwargs):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.2)
            return real_hash(**kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(people, "hash_secret_raw", counting_hash)
    results: list[object] = []

    def attempt(n: int) -> None:
        import psycopg

        with psycopg.connect(db.info.dsn, autocommit=True) as conn:
            try:
                results.append(sign_in(conn, f"user{n}", WRONG))
            except SignInThrottled as refused:
                results.append(refused)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and most == people.MAX_CONCURRENT_PASSWORD_HASHES == 2


def test_a_sign_in_that_finds_no_free_hashing_slot_is_turned_away_uncounted(db, monkeypatch):
    make_user(db, "editor", username="eve")
    monkeypatch.setattr(people, "HASH_WAIT_SECONDS", 0.1)
    held = [people._hashing_slots.acquire(timeout=1) for _ in range(people.MAX_CONCURRENT_PASSWORD_HASHES)]
    try:
        assert all(held)
        with pytest.raises(SignInBusy, match="try again in a moment"):
            sign_in(db, "eve", PASSWORD)
    finally:
        for _ in held:
            people._hashing_slots.release()
    assert db.execute("SELECT count(*) FROM inkwell.sign_in_throttle").fetchone() == (0,)
    assert sign_in(db, "eve", PASSWORD)[0].username == "eve"
