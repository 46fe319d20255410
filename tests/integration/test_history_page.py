"""The History page under AppTest, and its queries, against a real database.

Requests are submitted for real (submit_requests) and moved through Procrastinate's statuses with
SQL updates of their jobs: the job-status trigger and Procrastinate's event triggers do the rest,
as they do for a worker.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb
from streamlit.testing.v1 import AppTest

from db.history import HistoryFilter, export_history_csv, history_page, page_query_params
from db.queries import QUERIES
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.support.console import offline_user, signed_in_app

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "3_History.py")




def submit(db, *topics: str, requester: str = "ana") -> list[uuid.UUID]:
    return submit_requests(db, "titles", [TitlesInput(topic=t) for t in topics], requested_by=requester)


def finish(db, request_ids, status: str = "succeeded", *, titles=None, error_code=None, error_message=None) -> None:
    """Run the requests' jobs to an end the way a worker does: todo → doing → status."""
    job_ids = [get_request(db, r).job_id for r in request_ids]
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = ANY(%s)", (job_ids,))
    if titles is not None:
        db.execute("UPDATE inkwell.requests SET result = %s WHERE id = ANY(%s)",
                   (Jsonb({"titles": titles, "model": "test-model", "offline_model": False}), list(request_ids)))
    db.execute("UPDATE procrastinate_jobs SET status = %s, attempts = attempts + 1 WHERE id = ANY(%s)", (status, job_ids))
    if error_code:
        db.execute("UPDATE inkwell.requests SET error_code = %s, error_message = %s WHERE id = ANY(%s)",
                   (error_code, error_message, list(request_ids)))


def open_page(console_as, **query_params) -> AppTest:
    """The page signed in as an operator (who sees and may act on every request), run."""
    at = console_as(script=PAGE)
    at.query_params.update(query_params)
    return at.run()


def table(at: AppTest):
    return next(d.value for d in at.dataframe if "Topic" in d.value.columns)


def shown_topics(at: AppTest) -> list[str]:
    return list(table(at)["Topic"]) if any("Topic" in d.value.columns for d in at.dataframe) else []


def select_rows(at: AppTest, rows: list[int]) -> AppTest:
    key = f"history_table_{at.session_state['history_table_version']}"
    at.session_state[key] = {"selection": {"rows": rows, "columns": []}}
    return at.run()


# --- rendering ---


def test_empty_history_says_what_to_do_next(console_as):
    at = open_page(console_as)
    assert not at.exception
    assert any("No finished requests yet — submit a topic on the home page" in i.value for i in at.info)


def test_history_lists_finished_requests_newest_first_and_not_the_waiting_ones(console_as, db):
    first, second = submit(db, "first topic"), submit(db, "second topic")
    submit(db, "still waiting")
    finish(db, first + second)
    at = open_page(console_as)
    assert not at.exception
    assert shown_topics(at) == ["second topic", "first topic"]


def test_history_shows_queue_unavailable_when_the_database_is_down(database_down):
    at = signed_in_app(offline_user(), script=PAGE).run()
    assert not at.exception
    assert any("Queue unavailable" in e.value for e in at.error)


# --- filters ---


def test_status_filter_narrows_the_rows(console_as, db):
    succeeded, failed = submit(db, "went well"), submit(db, "went badly")
    finish(db, succeeded)
    finish(db, failed, "failed", error_code="bad_request", error_message="400")
    at = open_page(console_as)
    at.multiselect(key="history_status").set_value(["failed"]).run()
    assert shown_topics(at) == ["went badly"]
    assert list(table(at)["Error"]) == ["bad_request"]


def test_requester_filter_narrows_the_rows_ignoring_case(console_as, db):
    finish(db, submit(db, "ana's topic", requester="Ana") + submit(db, "bo's topic", requester="Bo"))
    at = open_page(console_as)
    at.text_input(key="history_requester").input("ana").run()
    assert shown_topics(at) == ["ana's topic"]


def test_text_filter_finds_words_in_the_topic_or_the_titles(console_as, db):
    finish(db, submit(db, "sourdough starters"), titles=["Bread you can trust"])
    finish(db, submit(db, "baking at home"), titles=["Why sourdough wins"])
    finish(db, submit(db, "gardening"), titles=["Bread you can trust"])
    at = open_page(console_as)
    at.text_input(key="history_text").input("SOURDOUGH").run()
    assert sorted(shown_topics(at)) == ["baking at home", "sourdough starters"]


def test_text_filter_searches_the_titles_not_the_rest_of_the_result(db):
    finish(db, submit(db, "gardening"), titles=["Bread you can trust"])  # the result also names "test-model"
    assert history_page(db, HistoryFilter(text="test-model")).rows == []


def test_text_filter_takes_percent_and_underscore_literally(db):
    finish(db, submit(db, "growth of 100% organic"), titles=[])
    finish(db, submit(db, "growth of 1000 organic"), titles=[])
    rows = history_page(db, HistoryFilter(text="100%")).rows
    assert [r.topic for r in rows] == ["growth of 100% organic"]


def test_date_range_keeps_requests_submitted_within_it(db):
    before, inside, after = (submit(db, topic)[0] for topic in ("before", "inside", "after"))
    finish(db, [before, inside, after])
    for request_id, day in [(before, "2030-03-01"), (inside, "2030-03-02"), (after, "2030-03-03")]:
        db.execute("UPDATE inkwell.requests SET created_at = %s::date + interval '23 hours' WHERE id = %s", (day, request_id))
    day_start = dt.datetime(2030, 3, 2, tzinfo=dt.timezone.utc)
    rows = history_page(db, HistoryFilter(submitted_from=day_start, submitted_before=day_start + dt.timedelta(days=1))).rows
    assert [r.topic for r in rows] == ["inside"]


def test_no_match_says_how_to_widen_the_filter(console_as, db):
    finish(db, submit(db, "something"))
    at = open_page(console_as)
    at.text_input(key="history_text").input("nothing like it").run()
    assert any("No requests match these filters" in i.value for i in at.info)


# --- keyset pagination ---


def test_older_and_newer_walk_120_rows_in_pages_of_50_without_duplicates_or_gaps(console_as, db):
    # One batch: all 120 share created_at, so the pages rely on the id tie-breaker.
    topics = [f"topic {n:03d}" for n in range(120)]
    finish(db, submit(db, *topics))
    at = open_page(console_as)
    pages = [shown_topics(at)]
    at.button(key="history_older").click().run()
    pages.append(shown_topics(at))
    at.button(key="history_older").click().run()
    pages.append(shown_topics(at))

    assert [len(p) for p in pages] == [50, 50, 20]
    walked = [t for p in pages for t in p]
    assert len(set(walked)) == 120 and sorted(walked) == topics
    assert at.button(key="history_older").disabled

    at.button(key="history_newer").click().run()
    assert shown_topics(at) == pages[1]
    at.button(key="history_newer").click().run()
    assert shown_topics(at) == pages[0]
    assert at.button(key="history_newer").disabled


def test_new_requests_finishing_meanwhile_do_not_shift_the_older_pages(db):
    finish(db, submit(db, *[f"topic {n:03d}" for n in range(60)]))
    first = history_page(db, HistoryFilter())
    finish(db, submit(db, "finished meanwhile"))
    second = history_page(db, HistoryFilter(), after=first.rows[-1].page_key)
    assert len(second.rows) == 10 and not second.has_older
    assert {r.id for r in first.rows}.isdisjoint(r.id for r in second.rows)


# --- the detail view ---


def test_detail_shows_model_output_and_topic_as_text_not_markup(console_as, db):
    request_id = submit(db, "<script>alert('topic')</script>")[0]
    finish(db, [request_id], titles=["<img src=https://evil.example/x.png onerror=alert(1)>", "**loud** [link](https://evil.example)"])
    at = open_page(console_as, request=str(request_id))
    assert not at.exception
    markdown = [m for m in at.markdown]
    text = "\n".join(m.value for m in markdown)
    assert r"\<script\>alert\('topic'\)\</script\>" in text
    # An invisible word joiner after "https:" keeps the browser from making a link of the address.
    assert r"\<img src=https\:" + "\u2060" + r"//evil\.example/x\.png onerror=alert\(1\)\>" in text
    assert r"\*\*loud\*\* \[link\]\(https\:" + "\u2060" + r"//evil\.example\)" in text
    assert not re.search(r"(?<!\\)<", text), "every < reaches the page escaped"
    assert not any(m.proto.allow_html for m in markdown)


def test_detail_shows_the_error_attempts_and_the_event_timeline(console_as, db):
    request_id = submit(db, "will fail")[0]
    finish(db, [request_id], "failed", error_code="rate_limited", error_message="429 from the model")
    at = open_page(console_as, request=str(request_id))
    assert any("rate\\_limited" in e.value and "429 from the model" in e.value for e in at.error)
    assert next(m.value for m in at.metric if m.label == "Attempts") == "1"
    timeline = next(d.value for d in at.dataframe if "Event" in d.value.columns)
    assert list(timeline["Event"]) == ["deferred", "started", "failed"]


def test_selecting_one_row_opens_its_detail(console_as, db):
    finish(db, submit(db, "older one"))
    finish(db, submit(db, "newer one"), titles=["A title worth reading"])
    at = select_rows(open_page(console_as), [0])
    assert any("A title worth reading" in m.value for m in at.markdown)


def test_retrying_a_failed_request_from_its_detail_queues_it_again(console_as, db):
    request_id = submit(db, "failed once")[0]
    finish(db, [request_id], "failed", error_code="server_error", error_message="500")
    at = open_page(console_as, request=str(request_id))
    at.button(key="detail_retry").click().run()

    assert not at.exception
    request = get_request(db, request_id)
    assert request.status == "queued"
    assert any("Queued again" in s.value for s in at.success)
    events = [row[0] for row in db.execute("SELECT type FROM procrastinate_events WHERE job_id = %s ORDER BY id", (request.job_id,))]
    assert events.index("failed") < events.index("retried")
    assert shown_topics(at) == []  # no longer finished, so no longer in the history


# --- bulk actions ---


def test_bulk_cancel_of_everything_matching_asks_with_the_count_then_cancels(console_as, db):
    waiting = submit(db, "wait one", "wait two", "wait three")
    finish(db, submit(db, "already done"))
    at = open_page(console_as)
    at.multiselect(key="history_status").set_value(["queued", "succeeded"]).run()
    at.button(key="bulk_cancel_matching").click().run()

    assert any("Cancel 3 queued requests?" in w.value for w in at.warning)
    assert {get_request(db, r).status for r in waiting} == {"queued"}  # nothing happens before Confirm

    at.button(key="bulk_confirm").click().run()
    assert {get_request(db, r).status for r in waiting} == {"cancelled"}
    assert any("Cancelled 3 of 3 requests." in s.value for s in at.success)


def test_bulk_retry_of_the_selected_rows_retries_only_those_that_can_be(console_as, db):
    failed = submit(db, "failed a", "failed b")
    finish(db, failed, "failed", error_code="server_error", error_message="500")
    finish(db, submit(db, "succeeded c"))
    at = select_rows(open_page(console_as), [0, 1, 2])
    at.button(key="bulk_retry_selected").click().run()
    assert any("Retry 2 failed requests?" in w.value for w in at.warning)

    at.button(key="bulk_confirm").click().run()
    assert {get_request(db, r).status for r in failed} == {"queued"}
    assert any("Retried 2 of 2 requests." in s.value for s in at.success)


def test_the_outcome_of_a_bulk_action_stays_when_the_list_refreshes_for_its_own_change(console_as, db, monkeypatch):
    # The retry is itself a change of the list: when the change check sees it in the same run, the page
    # runs again by itself, and the outcome must still be on screen (it flashed and vanished before).
    import console_ui

    failed = submit(db, "failed a", "failed b")
    finish(db, failed, "failed", error_code="server_error", error_message="500")
    at = select_rows(open_page(console_as), [0, 1])
    at.button(key="bulk_retry_selected").click().run()
    checks = []
    real_rows_changed = console_ui.rows_changed

    def changed_on_the_first_look(list_name, topics):
        checks.append(list_name)
        return True if len(checks) == 1 else real_rows_changed(list_name, topics)

    monkeypatch.setattr(console_ui, "rows_changed", changed_on_the_first_look)
    at.button(key="bulk_confirm").click().run()

    assert len(checks) >= 2  # the change check ran the page again
    assert {get_request(db, r).status for r in failed} == {"queued"}
    assert any("Retried 2 of 2 requests." in s.value for s in at.success)

    monkeypatch.setattr(console_ui, "rows_changed", lambda list_name, topics: False)
    at.button(key="history_refresh_empty").click().run()  # the user's next action: the outcome is old news
    assert not any("Retried" in s.value for s in at.success)


def test_dismissing_a_bulk_action_changes_nothing(console_as, db):
    failed = submit(db, "failed a")
    finish(db, failed, "failed")
    at = open_page(console_as)
    at.button(key="bulk_retry_matching").click().run()
    at.button(key="bulk_dismiss").click().run()
    assert not any("Retry" in w.value for w in at.warning)
    assert get_request(db, failed[0]).status == "failed"


# --- export ---


def test_export_writes_the_filtered_history_as_csv_with_formulas_defused(db):
    finish(db, submit(db, "=HYPERLINK(\"https://evil.example\")", requester="Ana"), titles=["+1 great title"])
    finish(db, submit(db, "someone else's", requester="Bo"))
    rows = list(csv.DictReader(io.StringIO(export_history_csv(db, HistoryFilter(requester="ana"), max_rows=100))))
    assert len(rows) == 1
    assert rows[0]["topic"] == "'=HYPERLINK(\"https://evil.example\")"
    assert rows[0]["titles"] == "'+1 great title"
    assert (rows[0]["status"], rows[0]["requested_by"]) == ("succeeded", "Ana")


def test_export_stops_at_the_row_limit(db):
    finish(db, submit(db, *[f"topic {n}" for n in range(7)]))
    rows = list(csv.DictReader(io.StringIO(export_history_csv(db, HistoryFilter(), max_rows=5))))
    assert len(rows) == 5


# --- the indexes the queries are meant to use ---


@pytest.fixture
def thousands_of_requests(db):
    db.execute(
        """
        INSERT INTO inkwell.requests (id, kind, input, status, requested_by, created_at, finished_at, result)
        SELECT gen_random_uuid(), 'titles',
               jsonb_build_object('topic', 'topic ' || g || CASE WHEN g % 500 = 0 THEN ' sourdough' ELSE '' END),
               CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END,
               'user' || (g % 100),
               now() - make_interval(secs => g),
               now() - make_interval(secs => g) + interval '3 seconds',
               jsonb_build_object('titles', jsonb_build_array('Title ' || g))
          FROM generate_series(1, 5000) AS g
        """
    )
    db.execute("ANALYZE inkwell.requests")


def plan_for(db, filters: HistoryFilter) -> str:
    """The plan of the query inside inkwell.history_rows (0074), as auto_explain reports nested statements."""
    plans: list[str] = []
    db.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
    with db.transaction():
        db.execute("LOAD 'auto_explain'")
        db.execute("SET LOCAL auto_explain.log_min_duration = 0")
        db.execute("SET LOCAL auto_explain.log_nested_statements = on")
        db.execute("SET LOCAL client_min_messages = log")
        db.execute(QUERIES["history_page"], page_query_params(filters, None, 51), prepare=False).fetchall()
    return "\n".join(plans)


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (HistoryFilter(), "requests_created_at_idx"),
        (HistoryFilter(requester="USER7"), "requests_requester_created_idx"),
        (HistoryFilter(text="sourdough"), "requests_search_trgm_idx"),
    ],
    ids=["first page", "requester", "text"],
)
def test_history_queries_use_the_index_meant_for_their_filter(db, thousands_of_requests, filters, index):
    assert index in plan_for(db, filters)
