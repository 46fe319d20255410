"""Friendly refusals for every role on every action: whoever reaches an action their role does not allow
(a page they should not see, a stale button, a script) gets a sentence, never PostgreSQL's row-level
security or privilege error with its SQL context."""

from __future__ import annotations

import pytest

from db.connection import open_pool
from db.credits import ROLE_REFUSAL, top_up
from db.people import ActionRefused, acting_as, create_organization, create_user, set_user_role
from db.queues import pause_queue, resume_queue
from queue_tasks.actions import cancel_request, job_manager_for, retry_request
from queue_tasks.models import TitlesInput
from queue_tasks.site_build import BuildRefused, site_definition_from, submit_site_build
from queue_tasks.site_promotion import submit_promotion
from queue_tasks.submit import SubmitError, submit_titles_request
from tests.support.people import make_cast

RAW = ("row-level security", "permission denied", "CONTEXT", "SQL", "policy", "inkwell.")
REFUSALS = (ActionRefused, SubmitError, BuildRefused)


@pytest.fixture
def cast(db):
    return make_cast(db)


@pytest.fixture
def manager(database_url):
    pool = open_pool(database_url)
    yield job_manager_for(pool)
    pool.close()


@pytest.fixture
def carls_request(db, cast):
    with acting_as(db, cast.carl):
        return submit_titles_request(db, TitlesInput(topic="globex launch plan"), requested_by="Carl")


@pytest.fixture
def carls_build(db, cast):
    definition = site_definition_from({
        "site": "Globex", "business": {"business_type": "bakery", "target_audience": "families", "brand_voice": "warm"},
        "routes": [{"path": "/", "sections": [{"template": "hero"}]}],
    })
    with acting_as(db, cast.carl):
        return submit_site_build(db, definition, requested_by="Carl").batch_id


ACTIONS = {
    "submit titles": lambda db, c, m, r, b: submit_titles_request(db, TitlesInput(topic="a new topic"), requested_by="x"),
    "submit a site build": lambda db, c, m, r, b: submit_site_build(db, site_definition_from({
        "site": "Mine", "business": {"business_type": "bakery", "target_audience": "families", "brand_voice": "warm"},
        "routes": [{"path": "/", "sections": [{"template": "faq"}]}]}), requested_by="x"),
    "cancel another's request": lambda db, c, m, r, b: cancel_request(db, m, r),
    "retry another's request": lambda db, c, m, r, b: retry_request(db, m, r),
    "promote another's build": lambda db, c, m, r, b: submit_promotion(db, b, "promote", requested_by="x"),
    "pause a queue": lambda db, c, m, r, b: pause_queue(db, "default", paused_by="x"),
    "resume a queue": lambda db, c, m, r, b: resume_queue(db, "default", resumed_by="x"),
    "top up credits": lambda db, c, m, r, b: top_up(db, c.carl.organization_id, 10),
    "create an organization": lambda db, c, m, r, b: create_organization(db, "Initech"),
    "create an account": lambda db, c, m, r, b: create_user(db, username="zed", display_name="Zed", role="admin",
                                                           organization_id=c.ana.organization_id, password="a long passphrase 9"),
    "change a role": lambda db, c, m, r, b: set_user_role(db, c.ana.id, "admin"),
}
# What each role may not do (editor Ana is of another organization than Carl's request and build).
FORBIDDEN = {
    "analyst": list(ACTIONS),
    "editor": ["cancel another's request", "retry another's request", "promote another's build", "pause a queue",
               "resume a queue", "top up credits", "create an organization", "create an account", "change a role"],
    "operator": ["top up credits", "create an organization", "create an account", "change a role"],
}


@pytest.mark.parametrize("role, action", [(role, action) for role, actions in FORBIDDEN.items() for action in actions])
def test_every_role_refused_an_action_gets_a_sentence(db, cast, manager, carls_request, carls_build, role, action):
    user = {"analyst": cast.ali, "editor": cast.ana, "operator": cast.olga}[role]
    if action == "retry another's request":
        with acting_as(db, cast.carl):
            cancel_request(db, manager, carls_request)
    if action == "resume a queue":
        with acting_as(db, cast.admin):
            pause_queue(db, "default", paused_by="Admin")
    with acting_as(db, user):
        with pytest.raises(REFUSALS) as refused:
            ACTIONS[action](db, cast, manager, carls_request, carls_build)
        assert db.execute("SELECT 1").fetchone() == (1,), "the page's transaction is still usable"
    message = str(refused.value)
    assert message and not any(raw in message for raw in RAW), message


def test_an_analyst_reaching_the_submit_path_is_told_why_in_a_sentence(db, cast):
    with acting_as(db, cast.ali), pytest.raises(SubmitError) as refused:
        submit_titles_request(db, TitlesInput(topic="analysts cannot submit"), requested_by="Ali")
    assert str(refused.value) == ROLE_REFUSAL
    assert db.execute("SELECT count(*) FROM inkwell.requests WHERE user_id = %s", (cast.ali.id,)).fetchone() == (0,)
