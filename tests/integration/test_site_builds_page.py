"""The Site builds page under Streamlit's AppTest, against a real database (jobs moved by SQL, no worker)."""

from __future__ import annotations

import json
from streamlit.testing.v1 import AppTest

from db import sites
from queue_tasks.site_build import entity_id, site_definition_from, submit_site_build

PAGE = "pages/6_Site_builds.py"


def site_builds_page(console_as) -> AppTest:
    """The page signed in as an operator named Ana."""
    at = console_as("operator", PAGE).run()
    assert not at.exception, at.exception
    return at


def build(db):
    definition = site_definition_from(
        {
            "site": "Acme Bakery",
            "business": {"business_type": "bakery"},
            "routes": [{"path": "/", "sections": [{"template": "hero"}, {"template": "faq"}, {"template": "cta"}]}],
        }
    )
    return submit_site_build(db, definition, requested_by="Ana")


def set_job_status(db, request_id, status: str) -> None:
    db.execute(
        "UPDATE procrastinate_jobs SET status = %s WHERE id = (SELECT job_id FROM inkwell.requests WHERE id = %s)",
        (status, request_id),
    )


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def test_page_without_builds_says_so(console_as, db):
    at = site_builds_page(console_as)
    assert "No site builds yet." in texts(at.info)


def test_partial_success_is_reported_and_retry_requeues_only_the_failed_section(console_as, db):
    submitted = build(db)
    hero, faq, cta = submitted.request_ids
    set_job_status(db, hero, "doing")
    set_job_status(db, hero, "succeeded")
    set_job_status(db, faq, "doing")
    set_job_status(db, faq, "failed")
    set_job_status(db, cta, "doing")
    set_job_status(db, cta, "succeeded")
    at = site_builds_page(console_as)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Total"], metrics["Succeeded"], metrics["Failed"]) == ("3", "2", "1")
    assert "Partial success: 2 of 3 sections succeeded" in texts(at.warning)

    at.button(key=f"retry_{submitted.batch_id}").click().run()
    assert not at.exception, at.exception
    statuses = [s.status for s in sites.list_batch_sections(db, submitted.batch_id)]
    assert statuses == ["succeeded", "queued", "succeeded"]


def test_cancel_batch_cancels_the_unfinished_sections_only(console_as, db):
    submitted = build(db)
    set_job_status(db, submitted.request_ids[0], "doing")
    set_job_status(db, submitted.request_ids[0], "succeeded")
    at = site_builds_page(console_as)
    at.button(key=f"cancel_{submitted.batch_id}").click().run()
    assert not at.exception, at.exception
    statuses = [s.status for s in sites.list_batch_sections(db, submitted.batch_id)]
    assert statuses == ["succeeded", "cancelled", "cancelled"]


def test_section_content_is_shown_as_text_never_markup(console_as, db):
    submitted = build(db)
    hero = entity_id("Acme Bakery", "/", "hero", "preview")
    content = {"headline": "<img src=x onerror=alert(1)>", "body": "**bold** [link](http://evil)", "items": []}
    db.execute(
        "INSERT INTO inkwell.content_entities (id, site_name, route, section, environment, template) "
        "VALUES (%s, 'Acme Bakery', '/', 'hero', 'preview', 'hero')",
        (hero,),
    )
    version_id = db.execute(
        "INSERT INTO inkwell.content_entity_versions (entity_id, version, content, source, request_id) "
        "VALUES (%s, 1, %s, 'generated', %s) RETURNING id",
        (hero, json.dumps(content), submitted.request_ids[0]),
    ).fetchone()[0]
    db.execute("UPDATE inkwell.content_entities SET current_version_id = %s WHERE id = %s", (version_id, hero))
    at = site_builds_page(console_as)
    shown = texts(at.markdown)
    assert "\\<img src=x onerror=alert\\(1\\)\\>" in shown
    assert "\\*\\*bold\\*\\* \\[link\\]\\(http\\:" in shown
    assert "<img" not in shown.replace("\\<img", "")


def test_regenerating_one_section_queues_a_new_build_of_that_section(console_as, db):
    submitted = build(db)
    at = site_builds_page(console_as)
    at.selectbox(key="regenerate_target").select("/ · faq")
    at.radio(key="regenerate_mode").set_value("new")
    at.button(key=f"FormSubmitter:regenerate_{submitted.batch_id}-Regenerate").click().run()
    assert not at.exception, at.exception
    assert "Queued 1 section." in texts(at.success)
    batches = sites.list_batches(db)
    assert [b.total for b in batches] == [1, 3]


def submit_page_for(console_as, kind: str) -> AppTest:
    at = console_as("editor", "pages/1_Submit.py").run()
    at.selectbox(key="submit_kind").select(kind).run()
    assert not at.exception, at.exception
    return at


def test_the_submit_page_builds_a_site_from_its_small_form(console_as, db):
    at = submit_page_for(console_as, "site_section")
    assert [tab.label for tab in at.tabs] == ["Upload a definition", "Build with a form"]
    at.text_input(key="site_form_name").input("Acme Bakery")
    at.text_input(key="form_business_type").input("bakery")
    at.button(key="site_form_submit").click().run()
    assert not at.exception, at.exception
    assert "Queued 1 section." in texts(at.success)
    [batch] = sites.list_batches(db)
    assert (batch.site_name, batch.total, batch.mode, batch.requested_by) == ("Acme Bakery", 1, "new", "Ana")


def test_the_submit_page_refuses_a_form_build_without_business_type(console_as, db):
    at = submit_page_for(console_as, "site_section")
    at.text_input(key="site_form_name").input("Acme Bakery")
    at.button(key="site_form_submit").click().run()
    assert "business\\.business\\_type\\: must be at least 2 characters" in texts(at.error)
    assert sites.list_batches(db) == []


def test_kinds_queued_by_other_jobs_are_not_offered_on_the_submit_page(console_as, db):
    at = console_as("editor", "pages/1_Submit.py").run()
    offered = at.selectbox(key="submit_kind").options
    assert "Site build" in offered and "Titles" in offered
    assert "Site promotion" not in offered and "Post image" not in offered


def test_promote_button_queues_a_promotion_shown_with_its_entities(console_as, db):
    submitted = build(db)
    for request_id in submitted.request_ids:
        set_job_status(db, request_id, "doing")
        set_job_status(db, request_id, "succeeded")
    at = site_builds_page(console_as)
    at.button(key=f"promote_{submitted.batch_id}").click().run()
    assert not at.exception, at.exception
    [promotion] = sites.list_promotions(db, submitted.batch_id)
    assert (promotion.action, promotion.status, promotion.total) == ("promote", "queued", 3)
    assert any(e.label.startswith("Promote to production · queued") for e in at.expander)
