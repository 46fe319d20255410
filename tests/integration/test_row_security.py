"""Roles enforced by the database: the data layer called directly, acting as each kind of user.

Acme: Ana and Bea (editors), Ali (analyst). Globex: Carl (editor), Olga (operator).
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from procrastinate.exceptions import ConnectorException

from db.connection import open_pool
from db.history import HistoryFilter, history_page, request_events
from db.live import LiveFilters, list_live_requests, list_live_requests_by_id
from db.overview import count_requests_by_status
from db import sites
from db.people import acting_as, audit_entries
from db.posts import get_post, list_posts
from db.queues import pause_queue, queue_summaries, resume_queue
from db.requests import get_request
from queue_tasks.actions import ActionRefused, cancel_request, cancel_requests, job_manager_for, retry_request
from queue_tasks.models import TitlesInput
from queue_tasks.site_build import BuildRefused, site_definition_from, submit_site_build
from queue_tasks.site_promotion import submit_promotion
from queue_tasks.submit import SubmitError, submit_titles_request
from tests.support.people import make_cast

ALL_STATUSES = ("scheduled", "queued", "running", "succeeded", "failed", "cancelled")


@pytest.fixture
def cast(db):
    return make_cast(db)


@pytest.fixture
def manager(database_url):
    pool = open_pool(database_url)
    yield job_manager_for(pool)
    pool.close()


def submit_as(db, user, topic: str) -> uuid.UUID:
    with acting_as(db, user):
        return submit_titles_request(db, TitlesInput(topic=topic), requested_by=user.display_name)


def save_post_for(db, request_id: uuid.UUID) -> uuid.UUID:
    """A saved post, as the blog-post job (the owner) writes it."""
    return db.execute(
        """INSERT INTO inkwell.posts (request_id, title, meta_description, outline, body_markdown, word_count)
           VALUES (%s, 'A post', 'About it', '[]', 'Body', 1) RETURNING id""",
        (request_id,),
    ).fetchone()[0]


def fail_job(db, request_id: uuid.UUID) -> None:
    """The job ran and failed, as a worker would record it (the trigger copies it to the request)."""
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (job_id,))


def actions_on(db, request_id: uuid.UUID) -> list[dict]:
    """Audit entries of cancels and retries of a request, newest first (submissions are audited too)."""
    return [e for e in audit_entries(db, target_id=request_id) if e["action"] in ("request.cancelled", "request.retried")]


def visible_ids(db, user) -> dict[str, set[uuid.UUID]]:
    """What each console read of the data layer shows this user."""
    with acting_as(db, user):
        return {
            "history": {row.id for row in history_page(db, HistoryFilter(statuses=ALL_STATUSES), page_size=100).rows},
            "live": {request.id for request in list_live_requests(db, LiveFilters()).requests},
            "posts": {post.request_id for post in list_posts(db)},
        }


# --- the cross-organization test ---


def test_an_editor_can_neither_read_cancel_nor_retry_another_organizations_request(db, cast, manager):
    globex_request = submit_as(db, cast.carl, "globex launch plan")
    globex_post = save_post_for(db, globex_request)
    acme_request = submit_as(db, cast.ana, "acme spring sale")
    globex_job = get_request(db, globex_request)

    seen = visible_ids(db, cast.ana)
    assert seen["history"] == {acme_request} and seen["live"] == {acme_request}
    assert seen["posts"] == set()
    with acting_as(db, cast.ana):
        assert get_request(db, globex_request) is None
        assert get_post(db, globex_post) is None
        assert list_live_requests_by_id(db, [globex_request]) == []
        assert request_events(db, globex_job) == []
        with pytest.raises(ActionRefused, match=f"No request {globex_request}"):
            cancel_request(db, manager, globex_request)

    # Cancelled by its own editor, it still cannot be retried from the other organization.
    with acting_as(db, cast.carl):
        cancel_request(db, manager, globex_request)
    with acting_as(db, cast.ana), pytest.raises(ActionRefused, match=f"No request {globex_request}"):
        retry_request(db, manager, globex_request)

    after = get_request(db, globex_request)
    assert (after.status, after.job_id) == ("cancelled", globex_job.job_id), "nothing changed"
    assert [e["action"] for e in actions_on(db, globex_request)] == ["request.cancelled"]


def test_an_operator_reads_and_acts_on_every_organizations_requests(db, cast, manager):
    acme_request = submit_as(db, cast.ana, "acme spring sale")
    save_post_for(db, acme_request)
    globex_request = submit_as(db, cast.carl, "globex launch plan")

    seen = visible_ids(db, cast.olga)
    assert seen["history"] == seen["live"] == {acme_request, globex_request}
    assert seen["posts"] == {acme_request}
    with acting_as(db, cast.olga):
        assert request_events(db, get_request(db, acme_request)), "the other organization's timeline too"
        assert cancel_request(db, manager, acme_request) == "cancelled"
        retry_request(db, manager, acme_request)

    assert get_request(db, acme_request).status == "queued"
    entries = actions_on(db, acme_request)
    assert [(e["action"], e["actor_name"]) for e in entries] == [("request.retried", "olga"), ("request.cancelled", "olga")]


def test_an_editor_reads_a_colleagues_request_but_acts_only_on_their_own(db, cast, manager):
    own = submit_as(db, cast.ana, "acme spring sale")
    colleagues = submit_as(db, cast.bea, "acme autumn sale")

    assert visible_ids(db, cast.ana)["history"] == {own, colleagues}
    with acting_as(db, cast.ana):
        assert get_request(db, colleagues) is not None
        with pytest.raises(ActionRefused, match="can see this request but not cancel it"):
            cancel_request(db, manager, colleagues)
        assert cancel_request(db, manager, own) == "cancelled"
        retry_request(db, manager, own)  # a cancelled request runs again on a new job

    assert get_request(db, colleagues).status == "queued"
    request = get_request(db, own)
    assert request.status == "queued" and len(request.previous_job_ids) == 1


def test_an_editor_retries_their_own_failed_request_in_place(db, cast, manager):
    own = submit_as(db, cast.ana, "acme spring sale")
    fail_job(db, own)
    job_id = get_request(db, own).job_id

    with acting_as(db, cast.ana):
        retry_request(db, manager, own)

    assert (get_request(db, own).status, get_request(db, own).job_id) == ("queued", job_id)
    events = [row[0] for row in db.execute("SELECT type FROM procrastinate_events WHERE job_id = %s ORDER BY id", (job_id,))]
    assert "retried" in events, "Procrastinate's own retry, on the acting user's connection"
    assert [(e["action"], e["actor_name"]) for e in actions_on(db, own)] == [("request.retried", "ana")]


def test_bulk_actions_refuse_the_requests_the_user_may_not_act_on_and_do_the_rest(db, cast, manager):
    own = submit_as(db, cast.ana, "acme spring sale")
    colleagues = submit_as(db, cast.bea, "acme autumn sale")
    other_org = submit_as(db, cast.carl, "globex launch plan")

    with acting_as(db, cast.ana):
        outcome = cancel_requests(db, manager, [own, colleagues, other_org])

    assert outcome.done == [own]
    assert set(outcome.refused) == {colleagues, other_org}
    assert "not cancel it" in outcome.refused[colleagues]
    assert outcome.refused[other_org] == f"No request {other_org}."
    assert [get_request(db, r).status for r in (own, colleagues, other_org)] == ["cancelled", "queued", "queued"]


def test_an_analyst_reads_everything_and_changes_nothing(db, cast, manager):
    acme_request = submit_as(db, cast.ana, "acme spring sale")
    globex_request = submit_as(db, cast.carl, "globex launch plan")
    with acting_as(db, cast.olga):
        cancel_request(db, manager, globex_request)

    assert visible_ids(db, cast.ali)["history"] == {acme_request, globex_request}
    with acting_as(db, cast.ali):
        with pytest.raises(ActionRefused, match=r"Your role \(analyst\) can read requests but not cancel them"):
            cancel_request(db, manager, acme_request)
        with pytest.raises(ActionRefused, match=r"not retry them"):
            retry_request(db, manager, globex_request)
        with pytest.raises(ActionRefused, match="Only operators and admins can pause queues; you are signed in as an analyst"):
            pause_queue(db, "default", paused_by="Ali")
        # The console does not offer analysts a Submit form; the database refuses the job's insert
        # too, and the refusal reaches them as a sentence.
        with pytest.raises(SubmitError, match="Your role does not allow this"), db.transaction():
            submit_titles_request(db, TitlesInput(topic="analyst topic"), requested_by="Ali")

    assert get_request(db, acme_request).status == "queued"
    assert get_request(db, globex_request).status == "cancelled"
    assert not any(q.is_paused for q in queue_summaries(db, ["default"]))


def test_only_operators_and_admins_pause_and_resume_queues(db, cast):
    with acting_as(db, cast.ana), pytest.raises(ActionRefused, match="signed in as an editor"):
        pause_queue(db, "default", paused_by="Ana")
    with acting_as(db, cast.olga):
        assert pause_queue(db, "default", paused_by="Olga")
    with acting_as(db, cast.ana):
        assert [q.paused_by for q in queue_summaries(db, ["default"])] == ["Olga"], "everyone sees the pause"
        with pytest.raises(ActionRefused, match="resume"):
            resume_queue(db, "default", resumed_by="Ana")
    with acting_as(db, cast.admin):
        assert resume_queue(db, "default", resumed_by="Admin")

    entries = audit_entries(db, target_type="queue")
    assert [(e["action"], e["actor_name"], e["target_id"]) for e in entries] == [
        ("queue.resumed", "admin", "default"),
        ("queue.paused", "olga", "default"),
    ]


# --- straight SQL under inkwell_console: the policies, not only the data layer ---


def test_an_editor_cannot_cancel_another_organizations_job_with_procrastinates_own_function(db, cast):
    globex_request = submit_as(db, cast.carl, "globex launch plan")
    job_id = get_request(db, globex_request).job_id

    with acting_as(db, cast.ana):
        assert db.execute("SELECT procrastinate_cancel_job_v1(%s, true, false)", (job_id,)).fetchone()[0] is None
        assert db.execute("UPDATE inkwell.requests SET status = 'queued' WHERE id = %s", (globex_request,)).rowcount == 0

    assert get_request(db, globex_request).status == "queued"


def test_an_editor_cannot_set_their_own_requests_status_by_hand(db, cast):
    own = submit_as(db, cast.ana, "acme spring sale")
    with acting_as(db, cast.ana), pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        db.execute("UPDATE inkwell.requests SET status = 'failed' WHERE id = %s", (own,))
    assert get_request(db, own).status == "queued"


def test_a_non_admin_cannot_change_roles_even_with_sql(db, cast):
    with acting_as(db, cast.olga):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"), db.transaction():
            db.execute("UPDATE inkwell.users SET role = 'admin' WHERE id = %s", (cast.olga.id,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Only admins can change roles"), db.transaction():
            db.execute("SELECT inkwell.set_user_role(%s, 'admin')", (cast.olga.id,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"), db.transaction():
            db.execute("INSERT INTO inkwell.audit_log (actor_name, action) VALUES ('olga', 'forged')")
    assert db.execute("SELECT role FROM inkwell.users WHERE id = %s", (cast.olga.id,)).fetchone()[0] == "operator"


def test_no_one_acting_in_the_console_can_read_password_hashes(db, cast):
    with acting_as(db, cast.admin), pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        db.execute("SELECT password_hash FROM inkwell.users")


def test_users_see_only_their_own_account_and_admins_see_all(db, cast):
    with acting_as(db, cast.ana):
        assert [row[0] for row in db.execute("SELECT username FROM inkwell.users")] == ["ana"]
    with acting_as(db, cast.admin):
        assert db.execute("SELECT count(*) FROM inkwell.users").fetchone()[0] == 6


def test_the_console_role_without_an_acting_user_sees_nothing(db, cast):
    submit_as(db, cast.ana, "acme spring sale")
    with db.transaction():
        db.execute("SET LOCAL ROLE inkwell_console")
        for table in ("inkwell.requests", "procrastinate_jobs", "inkwell.organizations", "inkwell.audit_log"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_a_deactivated_user_sees_nothing_at_once(db, cast):
    submit_as(db, cast.ana, "acme spring sale")
    db.execute("UPDATE inkwell.users SET active = false WHERE id = %s", (cast.ana.id,))
    assert visible_ids(db, cast.ana) == {"history": set(), "live": set(), "posts": set()}


def test_a_request_submitted_in_the_console_belongs_to_its_user_and_organization(db, cast):
    request_id = submit_as(db, cast.ana, "acme spring sale")
    row = db.execute("SELECT user_id, organization_id FROM inkwell.requests WHERE id = %s", (request_id,)).fetchone()
    assert row == (cast.ana.id, cast.ana.organization_id)


def test_the_owner_connection_still_sees_and_acts_on_everything(db, cast, manager):
    # Workers, housekeeping and scripts: no acting user, no row-level security.
    unowned = submit_titles_request(db, TitlesInput(topic="system topic"), requested_by="system")
    owned = submit_as(db, cast.carl, "globex launch plan")
    assert get_request(db, unowned).status == get_request(db, owned).status == "queued"
    assert cancel_request(db, manager, owned) == "cancelled"
    assert [(e["action"], e["actor_name"]) for e in actions_on(db, owned)] == [("request.cancelled", "system")]


@pytest.mark.parametrize("end", ["cancelled", "failed"])
def test_a_retry_the_organization_cannot_pay_for_is_refused_with_the_databases_message(db, cast, manager, end):
    own = submit_as(db, cast.ana, "acme spring sale")
    if end == "cancelled":
        with acting_as(db, cast.ana):
            cancel_request(db, manager, own)
    else:
        fail_job(db, own)
    db.execute("UPDATE inkwell.organizations SET credit_balance = 0 WHERE id = %s", (cast.ana.organization_id,))

    with acting_as(db, cast.ana):
        with pytest.raises(ActionRefused, match="Not enough credits: this needs 1, Acme has 0 left"):
            retry_request(db, manager, own)
        assert db.execute("SELECT 1").fetchone() == (1,), "the acting transaction is still usable"

    assert get_request(db, own).status == end
    assert "request.retried" not in [e["action"] for e in actions_on(db, own)]


def test_overview_counts_follow_the_role(db, cast):
    submit_as(db, cast.ana, "acme spring sale")
    submit_as(db, cast.carl, "globex launch plan")
    # Finished two days ago: counted in the per-day rollup (migration 0026), not live.
    db.execute(
        """INSERT INTO inkwell.requests (id, kind, input, status, requested_by, created_at, finished_at, user_id, organization_id)
           VALUES (gen_random_uuid(), 'titles', '{"topic": "old"}', 'succeeded', 'Carl',
                   now() - interval '2 days', now() - interval '2 days', %s, %s)""",
        (cast.carl.id, cast.carl.organization_id),
    )

    rollup = "SELECT count(*) FROM inkwell.request_counts_rollup"
    with acting_as(db, cast.olga):
        assert count_requests_by_status(db) == {"queued": 2, "succeeded": 1}
        assert db.execute(rollup).fetchone() == (1,), "operators' figures come from the rollup (0043)"
    with acting_as(db, cast.ana):
        assert db.execute(rollup).fetchone() == (0,), "it counts every organization: not for editors"
    with acting_as(db, cast.ali):
        assert count_requests_by_status(db) == {"queued": 2, "succeeded": 1}
    with acting_as(db, cast.ana):
        assert count_requests_by_status(db) == {"queued": 1}, "an editor's figures are their organization's"
    with acting_as(db, cast.carl):
        assert count_requests_by_status(db) == {"queued": 1, "succeeded": 1}


def test_a_posts_image_request_queued_by_the_worker_is_read_with_the_post(db, cast):
    blog_post = submit_as(db, cast.ana, "acme spring sale")
    post_id = save_post_for(db, blog_post)
    image_request = db.execute(
        """INSERT INTO inkwell.requests (id, kind, input, requested_by)
           VALUES (gen_random_uuid(), 'post_image', '{}', 'Ana') RETURNING id"""  # as the worker: no user
    ).fetchone()[0]
    db.execute("UPDATE inkwell.posts SET image_request_id = %s WHERE id = %s", (image_request, post_id))

    with acting_as(db, cast.bea):
        assert get_request(db, image_request) is not None
        assert get_post(db, post_id).image_status == "queued"
    with acting_as(db, cast.carl):
        assert get_request(db, image_request) is None
        assert get_post(db, post_id) is None


def test_site_builds_are_submitted_read_and_promoted_by_whom_the_roles_allow(db, cast):
    definition = site_definition_from({
        "site": "Acme Bakery",
        "business": {"business_type": "bakery", "target_audience": "families", "brand_voice": "warm"},
        "routes": [{"path": "/", "sections": [{"template": "hero"}, {"template": "faq"}]}],
    })
    with acting_as(db, cast.ana):
        build = submit_site_build(db, definition, requested_by="Ana")

    with acting_as(db, cast.bea):
        assert [b.id for b in sites.list_batches(db)] == [build.batch_id]
        assert len(sites.list_batch_sections(db, build.batch_id)) == 2
        with pytest.raises(BuildRefused, match="Only who started this build"), db.transaction():
            submit_promotion(db, build.batch_id, "promote", requested_by="Bea")  # a colleague's build
    with acting_as(db, cast.carl):
        assert sites.list_batches(db) == []
        assert sites.list_batch_sections(db, build.batch_id) == []
        with pytest.raises(BuildRefused, match="No site build"):
            submit_promotion(db, build.batch_id, "promote", requested_by="Carl")
    with acting_as(db, cast.ana):
        ana_promotion = submit_promotion(db, build.batch_id, "promote", requested_by="Ana")
    with acting_as(db, cast.olga):
        olga_promotion = submit_promotion(db, build.batch_id, "rollback", requested_by="Olga")
        assert {p.id for p in sites.list_promotions(db, build.batch_id)} == {ana_promotion, olga_promotion}

    owner = db.execute("SELECT user_id, organization_id FROM inkwell.site_batches WHERE id = %s", (build.batch_id,)).fetchone()
    assert owner == (cast.ana.id, cast.ana.organization_id)
