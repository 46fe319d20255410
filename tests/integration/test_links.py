"""Every request, post and site build has its own address, which opens it directly."""

from __future__ import annotations

import time

from tests.integration.test_history_page import finish, open_page, select_rows, submit
from tests.integration.test_site_builds_page import build

SITE_BUILDS = "pages/6_Site_builds.py"


def query(at, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_selecting_a_request_puts_its_link_in_the_address_and_unselecting_closes_it(console_as, db):
    (request_id,) = submit(db, "linked topic")
    finish(db, [request_id])
    at = select_rows(open_page(console_as), [0])
    assert query(at, "request") == str(request_id)
    assert any("Event timeline" in m.value for m in at.markdown)

    at = select_rows(at, [])
    assert query(at, "request") is None


def test_a_site_build_link_opens_that_build(console_as, db):
    older, _ = build(db).batch_id, build(db)
    at = console_as("operator", SITE_BUILDS)
    at.query_params["build"] = str(older)
    at.run()
    assert not at.exception
    assert at.selectbox(key="site_batch").value == str(older)
    assert query(at, "build") == str(older)


def test_a_site_build_link_of_another_organization_says_so(console_as, db):
    build(db)
    at = console_as("operator", SITE_BUILDS)
    at.query_params["build"] = "00000000-0000-0000-0000-000000000000"
    at.run()
    assert any("The linked site build is not one you can see" in w.value for w in at.warning)


def test_the_site_builds_list_shows_a_new_build_by_itself(console_as, db):
    build(db)
    at = console_as("operator", SITE_BUILDS).run()
    chosen = at.selectbox(key="site_batch").value
    assert len(at.selectbox(key="site_batch").options) == 1
    build(db)
    time.sleep(1.1)
    at.run()
    assert len(at.selectbox(key="site_batch").options) == 2
    assert at.selectbox(key="site_batch").value == chosen, "the chosen build stays chosen"


def test_roll_back_is_refused_with_a_sentence_while_nothing_was_promoted(console_as, db):
    batch_id = build(db).batch_id
    at = console_as("operator", SITE_BUILDS).run()
    assert at.button(key=f"rollback_{batch_id}_disabled").disabled
    assert any("there is nothing to roll back" in c.value for c in at.caption)
    assert not any(b.key == f"rollback_{batch_id}" for b in at.button)
