"""A fresh install works at once: the first organization starts with a stated balance
(INKWELL_STARTING_CREDITS), the price and the balance show before submitting, and a refusal says
where an admin tops up."""

from __future__ import annotations

from db import credits
from db.people import ensure_first_admin
from inkwell_settings import InkwellSettings
from tests.support.console import PASSWORD, signed_in_app


def test_the_first_organization_starts_with_the_stated_balance_in_its_ledger(db):
    admin, _ = ensure_first_admin(db, password=PASSWORD, starting_credits=1000)
    assert credits.balance(db, admin.organization_id) == 1000
    entries = credits.ledger(db, admin.organization_id)
    assert [(e.delta, e.reason, e.note) for e in entries] == [(1000, "top_up", "Starting balance of a new install")]


def test_starting_credits_are_granted_once_not_on_every_start(db):
    admin, _ = ensure_first_admin(db, password=PASSWORD, starting_credits=1000)
    ensure_first_admin(db, password=PASSWORD, starting_credits=1000)
    assert credits.balance(db, admin.organization_id) == 1000


def test_the_default_starting_balance_is_stated_in_the_settings():
    assert InkwellSettings().starting_credits == 1000


def test_a_fresh_install_takes_its_first_request_without_a_top_up(console_env, db):
    admin, _ = ensure_first_admin(db, password=PASSWORD, starting_credits=InkwellSettings().starting_credits)
    at = signed_in_app(admin).run()
    assert any("Each request costs 1 credit · Default has 1,000 credits left." in c.value for c in at.caption)
    at.text_area[0].input("composting in small apartments")
    at.button[0].click().run()
    assert not at.exception
    assert not at.error
    assert any("Queued: titles" in s.value for s in at.success)
    assert credits.balance(db, admin.organization_id) == 999


def test_the_submit_page_warns_before_submitting_when_the_balance_is_short(console_as, db):
    at = console_as("editor", "pages/1_Submit.py").run()
    user = at.session_state["signed_in_user"]
    db.execute("UPDATE inkwell.organizations SET credit_balance = 0 WHERE id = %s", (user.organization_id,))
    at.run()
    assert any("Each request costs 1 credit · Acme has 0 credits left." in c.value for c in at.caption)
    assert any("not enough for this. An admin adds credits on the Admin page, Organizations tab" in w.value for w in at.warning)
