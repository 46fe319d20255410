"""Site builds end to end: fan-out in one transaction, real workers against the local test server,
partial failure, retry of the failed sections only, idempotent entities, promote and rollback, cancel."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from db import sites
from db.connection import open_pool
from db.requests import get_request
from queue_tasks.actions import cancel_requests, job_manager_for, retry_requests
from queue_tasks.site_build import (
    BuildRefused,
    SectionRef,
    SiteDefinition,
    entity_id,
    site_definition_from,
    submit_site_build,
)
from queue_tasks.site_promotion import submit_promotion
from tests.conftest import wait_for
from tests.support.llm_server import GARBAGE_CONTENT, default_responder, first_user_text, ok

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def manager(database_url):
    pool = open_pool(database_url)
    yield job_manager_for(pool)
    pool.close()


def site(routes: dict[str, list[str]] | None = None, name: str = "Acme Bakery") -> SiteDefinition:
    routes = routes or {"/": ["hero", "features"], "/pricing": ["pricing"], "/faq": ["faq"]}
    return site_definition_from(
        {
            "site": name,
            "business": {"business_type": "neighbourhood bakery", "target_audience": "young families", "brand_voice": "warm"},
            "routes": [{"path": path, "sections": [{"template": t} for t in templates]} for path, templates in routes.items()],
        }
    )


def batch_done(db: psycopg.Connection, batch_id, timeout: float = 60.0) -> sites.SiteBatchSummary:
    return wait_for(
        lambda: (b := sites.get_batch(db, batch_id)) and not (b.queued or b.running) and b,
        timeout=timeout,
        message=f"batch {batch_id} to finish",
    )


def request_done(db, request_id, timeout: float = 60.0):
    return wait_for(lambda: (r := get_request(db, request_id)) and r.is_finished and r, timeout=timeout)


def count(db, sql: str, *params) -> int:
    return db.execute(sql, params).fetchone()[0]


def fail_route(route: str):
    """A responder whose answer for one route's sections never fits the schema (a permanent failure)."""

    def responder(body):
        if f"Page route: {route}\n" in first_user_text(body):
            return GARBAGE_CONTENT
        return default_responder(body)

    return responder


def test_submitting_a_build_writes_the_batch_and_one_request_and_job_per_section_in_one_transaction(db):
    submitted = submit_site_build(db, site(), requested_by="ana")
    assert len(submitted.request_ids) == 4
    rows = db.execute(
        "SELECT r.kind, r.status, j.status, j.task_name FROM inkwell.site_batch_sections s "
        "JOIN inkwell.requests r ON r.id = s.request_id JOIN procrastinate_jobs j ON j.id = r.job_id "
        "WHERE s.batch_id = %s ORDER BY s.position",
        (submitted.batch_id,),
    ).fetchall()
    assert rows == [("site_section", "queued", "todo", "inkwell.write_site_section")] * 4
    batch = sites.get_batch(db, submitted.batch_id)
    assert (batch.total, batch.queued, batch.state) == (4, 4, "running")
    sections = sites.list_batch_sections(db, submitted.batch_id)
    assert [(s.route, s.section) for s in sections] == [("/", "hero"), ("/", "features"), ("/pricing", "pricing"), ("/faq", "faq")]


def test_a_failure_while_submitting_leaves_no_batch_request_or_job(db):
    # The last insert of the submission (linking sections to the batch) fails after the jobs were deferred.
    db.execute("ALTER TABLE inkwell.site_batch_sections ADD CONSTRAINT no_faq CHECK (section <> 'faq')")
    with pytest.raises(psycopg.errors.CheckViolation):
        submit_site_build(db, site(), requested_by="ana")
    assert count(db, "SELECT count(*) FROM inkwell.site_batches") == 0
    assert count(db, "SELECT count(*) FROM inkwell.requests") == 0
    assert count(db, "SELECT count(*) FROM procrastinate_jobs") == 0


def test_submitting_inside_the_callers_transaction_rolls_back_with_it(db):
    with pytest.raises(RuntimeError), db.transaction():
        submit_site_build(db, site(), requested_by="ana")  # a savepoint inside the caller's transaction
        raise RuntimeError("the caller changes its mind")
    assert count(db, "SELECT count(*) FROM procrastinate_jobs") == 0
    assert count(db, "SELECT count(*) FROM inkwell.site_batches") == 0


def test_all_sections_succeed_and_the_batch_is_succeeded_with_content_entities(db, start_worker, llm_server):
    submitted = submit_site_build(db, site(), requested_by="ana")
    start_worker(concurrency=4)
    batch = batch_done(db, submitted.batch_id)
    assert (batch.succeeded, batch.failed, batch.state) == (4, 0, "succeeded")
    sections = sites.list_batch_sections(db, submitted.batch_id)
    for section in sections:
        assert section.entity_id == entity_id("Acme Bakery", section.route, section.section, "preview")
        assert section.current_version == 1
        assert set(section.current_content) == {"headline", "body", "items"}
    prompts = [first_user_text(r.body) for r in llm_server.chat_requests]
    assert any("Template: pricing" in p and "Business type: neighbourhood bakery" in p for p in prompts)


def test_one_failing_section_gives_partial_success_and_retrying_only_it_succeeds(db, start_worker, llm_server, manager):
    llm_server.responder = fail_route("/pricing")
    submitted = submit_site_build(db, site(), requested_by="ana")
    start_worker(concurrency=4)
    batch = batch_done(db, submitted.batch_id)
    assert (batch.succeeded, batch.failed, batch.state) == (3, 1, "partially succeeded")
    failed = [s for s in sites.list_batch_sections(db, submitted.batch_id) if s.status == "failed"]
    assert [(s.route, s.error_code) for s in failed] == [("/pricing", "invalid_model_output")]
    assert failed[0].current_content is None
    calls_before = llm_server.request_count

    llm_server.responder = default_responder
    failed_ids = sites.batch_request_ids(db, submitted.batch_id, ["failed"])
    assert failed_ids == [failed[0].request_id]
    outcome = retry_requests(db, manager, failed_ids)
    assert outcome.done == failed_ids
    batch = batch_done(db, submitted.batch_id)
    assert (batch.succeeded, batch.state) == (4, "succeeded")
    assert llm_server.request_count == calls_before + 1, "only the failed section ran again"


def test_running_the_same_build_twice_updates_the_same_entities_with_two_versions_each(db, start_worker):
    first = submit_site_build(db, site(), requested_by="ana")
    start_worker(concurrency=4)
    batch_done(db, first.batch_id)
    second = submit_site_build(db, site(), requested_by="ana")
    batch_done(db, second.batch_id)

    ids_first = [s.entity_id for s in sites.list_batch_sections(db, first.batch_id)]
    ids_second = [s.entity_id for s in sites.list_batch_sections(db, second.batch_id)]
    assert ids_first == ids_second
    assert count(db, "SELECT count(*) FROM inkwell.content_entities") == 4
    versions = db.execute(
        "SELECT entity_id, count(*), max(version) FROM inkwell.content_entity_versions GROUP BY entity_id"
    ).fetchall()
    assert sorted((n, v) for _, n, v in versions) == [(2, 2)] * 4
    assert all(s.current_version == 2 for s in sites.list_batch_sections(db, second.batch_id))


def test_a_rerun_of_the_same_section_request_adds_no_second_version(db, start_worker, llm_server, manager):
    submitted = submit_site_build(db, site({"/": ["hero"]}), requested_by="ana")
    start_worker()
    batch_done(db, submitted.batch_id)
    request_id = submitted.request_ids[0]
    # As after a crash between storing the version and finishing the job: the job runs again.
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (job_id,))
    calls = llm_server.request_count
    assert retry_requests(db, manager, [request_id]).done == [request_id]
    wait_for(lambda: get_request(db, request_id).status == "succeeded", timeout=30)
    assert count(db, "SELECT count(*) FROM inkwell.content_entity_versions") == 1
    assert llm_server.request_count == calls, "the stored version was reused, the model was not asked again"


def test_leave_mode_queues_only_sections_without_content(db, start_worker):
    first = submit_site_build(db, site({"/": ["hero"]}), requested_by="ana")
    start_worker()
    batch_done(db, first.batch_id)
    again = submit_site_build(db, site({"/": ["hero", "cta"]}), requested_by="ana", mode="leave")
    assert (len(again.request_ids), again.skipped) == (1, 1)
    batch_done(db, again.batch_id)
    hero = entity_id("Acme Bakery", "/", "hero", "preview")
    assert len(sites.list_entity_versions(db, hero)) == 1
    with pytest.raises(BuildRefused, match="already has content"):
        submit_site_build(db, site({"/": ["hero", "cta"]}), requested_by="ana", mode="leave")


def test_with_current_mode_gives_the_model_the_current_content(db, start_worker, llm_server):
    first = submit_site_build(db, site({"/": ["hero"]}), requested_by="ana")
    start_worker()
    batch_done(db, first.batch_id)
    current = sites.list_batch_sections(db, first.batch_id)[0].current_content
    again = submit_site_build(db, site({"/": ["hero"]}), requested_by="ana", mode="with_current")
    batch_done(db, again.batch_id)
    prompt = first_user_text(llm_server.chat_requests[-1].body)
    assert "Current content" in prompt and json.dumps(current["headline"]) in prompt
    new_mode_prompt = first_user_text(llm_server.chat_requests[0].body)
    assert "Current content" not in new_mode_prompt


def test_regenerating_one_section_queues_only_that_section(db, start_worker):
    first = submit_site_build(db, site(), requested_by="ana")
    start_worker(concurrency=4)
    batch_done(db, first.batch_id)
    one = submit_site_build(db, site(), requested_by="ana", only=[SectionRef("/pricing", "pricing")])
    assert len(one.request_ids) == 1
    batch_done(db, one.batch_id)
    versions = dict(
        db.execute("SELECT e.section, count(*) FROM inkwell.content_entity_versions v JOIN inkwell.content_entities e ON e.id = v.entity_id GROUP BY e.section").fetchall()
    )
    assert versions == {"hero": 1, "features": 1, "pricing": 2, "faq": 1}


def production_content(db, section: str):
    row = db.execute(
        "SELECT v.content, v.version FROM inkwell.content_entities e JOIN inkwell.content_entity_versions v ON v.id = e.current_version_id "
        "WHERE e.environment = 'production' AND e.section = %s",
        (section,),
    ).fetchone()
    return row


def test_promote_then_rollback_restores_the_exact_previous_production_content(db, start_worker, llm_server):
    routes = {"/": ["hero"], "/faq": ["faq"]}
    first = submit_site_build(db, site(routes), requested_by="ana")
    start_worker(concurrency=4)
    batch_done(db, first.batch_id)
    promotion = submit_promotion(db, first.batch_id, "promote", requested_by="ana")
    request_done(db, _promotion_request(db, promotion))
    v1_hero = production_content(db, "hero")
    assert v1_hero[0] == sites.list_batch_sections(db, first.batch_id)[0].current_content

    # A second build writes different preview content; promote it, then roll it back.
    llm_server.responder = lambda body: json.dumps(
        {"headline": "Second headline", "body": "Second body", "items": [{"title": "t", "text": "x"}]}
    )
    second = submit_site_build(db, site(routes), requested_by="ana")
    batch_done(db, second.batch_id)
    request_done(db, _promotion_request(db, submit_promotion(db, second.batch_id, "promote", requested_by="ana")))
    assert production_content(db, "hero")[0]["headline"] == "Second headline"

    rollback = submit_promotion(db, second.batch_id, "rollback", requested_by="ana")
    request = request_done(db, _promotion_request(db, rollback))
    assert request.status == "succeeded" and request.result["done"] == 2
    assert production_content(db, "hero") == v1_hero
    statuses = [e.status for e in sites.list_promotion_entities(db, rollback)]
    assert statuses == ["done", "done"]
    # Preview keeps its newest content; nothing was deleted.
    assert count(db, "SELECT count(*) FROM inkwell.content_entity_versions WHERE source = 'promoted'") == 4


def _promotion_request(db, promotion_id) -> uuid.UUID:
    return db.execute("SELECT request_id FROM inkwell.site_promotions WHERE id = %s", (promotion_id,)).fetchone()[0]


def test_cancel_batch_leaves_finished_sections_alone(db, start_worker, llm_server, manager):
    submitted = submit_site_build(db, site(), requested_by="ana")
    llm_server.set_script([ok(), ok(delay_per_chunk=0.5, chunks=40)])  # the first section quick, the second slow
    start_worker(concurrency=1)
    wait_for(lambda: sites.get_batch(db, submitted.batch_id).succeeded == 1 and sites.get_batch(db, submitted.batch_id).running == 1, timeout=30)

    unfinished = sites.batch_request_ids(db, submitted.batch_id, ["scheduled", "queued", "running"])
    assert len(unfinished) == 3
    outcome = cancel_requests(db, manager, unfinished)
    assert sorted(outcome.done) == sorted(unfinished)
    batch = batch_done(db, submitted.batch_id, timeout=20)
    assert (batch.succeeded, batch.cancelled, batch.state) == (1, 3, "partially succeeded")
    assert sites.list_batch_sections(db, submitted.batch_id)[0].status == "succeeded"


def test_the_offline_model_writes_every_template_from_the_business_info(db, start_worker):
    templates = ["hero", "features", "faq", "cta", "testimonials", "pricing", "about", "contact"]
    submitted = submit_site_build(db, site({"/": templates}), requested_by="ana")
    start_worker(concurrency=8, extra_env={"INKWELL_LLM_BASE_URL": "", "INKWELL_LLM_API_KEY": "", "INKWELL_OFFLINE_MODEL_SECONDS": "0"})
    batch = batch_done(db, submitted.batch_id)
    assert batch.state == "succeeded"
    for section in sites.list_batch_sections(db, submitted.batch_id):
        assert "Acme Bakery" in json.dumps(section.current_content), section.section
        assert section.result["offline_model"] is True


def test_a_build_can_be_scheduled_for_later(db):
    import datetime as dt

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    submitted = submit_site_build(db, site({"/": ["hero"]}), requested_by="ana", schedule_at=later)
    request = get_request(db, submitted.request_ids[0])
    assert (request.status, request.scheduled_at) == ("scheduled", later)
    assert sites.get_batch(db, submitted.batch_id).queued == 1


def test_a_build_the_organization_cannot_pay_for_is_refused_with_the_figures_and_queues_nothing(db):
    from db.people import acting_as
    from tests.support.people import make_cast

    cast = make_cast(db, credits=3)  # a section costs 2; this build has 4 sections
    with pytest.raises(BuildRefused, match=r"Not enough credits: this needs 8, Acme has 3 left"):
        with acting_as(db, cast.ana):
            submit_site_build(db, site(), requested_by=cast.ana.display_name)
    assert count(db, "SELECT count(*) FROM inkwell.site_batches") == 0
    assert count(db, "SELECT count(*) FROM inkwell.requests") == 0
    assert count(db, "SELECT count(*) FROM procrastinate_jobs") == 0
    assert count(db, "SELECT credit_balance FROM inkwell.organizations WHERE name = 'Acme'") == 3
