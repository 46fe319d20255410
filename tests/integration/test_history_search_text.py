"""The History text filter reads the stored column search_text (migration 0025): it finds the same
requests as the function it replaces, follows the result when one is stored, and costs nothing on
the writes a running job makes many times (progress) or that every job makes (status changes)."""

from __future__ import annotations

import uuid

import pytest
from psycopg.types.json import Jsonb

from db.history import HistoryFilter, history_page
from db.queries import QUERIES
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests


def submit(db, *topics: str) -> list[uuid.UUID]:
    return submit_requests(db, "titles", [TitlesInput(topic=t) for t in topics], requested_by="ana")


def run_jobs(db, request_ids, *statuses: str) -> None:
    job_ids = [get_request(db, r).job_id for r in request_ids]
    for status in statuses:
        db.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = ANY(%s)", (status, job_ids))


def store_titles(db, request_id: uuid.UUID, titles: list[str]) -> None:
    db.execute("UPDATE inkwell.requests SET result = %s WHERE id = %s",
               (Jsonb({"titles": titles, "model": "test-model", "offline_model": False}), request_id))


@pytest.fixture
def varied_history(db) -> None:
    """Finished requests whose topics and titles hold the searched words in different places."""
    cases = [
        ("Sourdough starters", ["Bread you can trust", "Why flour matters"]),
        ("baking at home", ["Why SOURDOUGH wins", "Crumb and crust"]),
        ("gardening", ["Compost for 100% beginners", "Under_scored ideas"]),
        ("tax season", []),
        ("a blog post", None),  # a result without titles: only the topic is searched
    ]
    for topic, titles in cases:
        request_ids = submit(db, topic)
        run_jobs(db, request_ids, "doing")
        if titles is not None:
            store_titles(db, request_ids[0], titles)
        else:
            db.execute("UPDATE inkwell.requests SET result = %s WHERE id = %s",
                       (Jsonb({"title": "Sourdough in the body, not searched", "body": "compost"}), request_ids[0]))
        run_jobs(db, request_ids, "succeeded")


@pytest.mark.parametrize("text", ["sourdough", "WHY", "100%", "under_scored", "crust", "blog", "body", "nothing like it"])
def test_text_filter_finds_the_same_requests_through_the_column_as_through_the_function(db, varied_history, text):
    found = {row.id for row in history_page(db, HistoryFilter(text=text), page_size=100).rows}
    pattern = HistoryFilter(text=text).sql_params()["text_pattern"]
    by_function = {
        row[0] for row in db.execute(
            "SELECT id FROM inkwell.requests WHERE inkwell.request_search_text(input, result) ILIKE %s", (pattern,)
        )
    }
    assert found == by_function


def test_stored_search_text_holds_the_topic_then_the_titles_once_the_result_is_stored(db):
    request_id = submit(db, "balcony gardens")[0]
    assert get_search_text(db, request_id) == "balcony gardens\n"
    run_jobs(db, [request_id], "doing")
    store_titles(db, request_id, ["Grow up, not out", "Pots that last"])
    assert get_search_text(db, request_id) == "balcony gardens\nGrow up, not out\nPots that last"
    assert [r.id for r in history_page(db, HistoryFilter(text="pots that", statuses=("running",))).rows] == [request_id]


def get_search_text(db, request_id: uuid.UUID) -> str:
    return db.execute("SELECT search_text FROM inkwell.requests WHERE id = %s", (request_id,)).fetchone()[0]


def function_calls(db, name: str) -> int:
    row = db.execute("SELECT calls FROM pg_stat_xact_user_functions WHERE schemaname = 'inkwell' AND funcname = %s",
                     (name,)).fetchone()
    return row[0] if row else 0


def test_progress_writes_and_status_changes_do_not_compute_the_search_text_again(db):
    request_ids = submit(db, "compost in small flats", "sourdough on a budget")
    db.execute("SET track_functions = 'all'")  # superuser only: the test connects as the server's owner
    with db.transaction():
        run_jobs(db, request_ids, "doing")
        for request_id in request_ids:
            for step in range(3):
                db.execute(QUERIES["record_progress"], {
                    "request_id": request_id, "job_id": get_request(db, request_id).job_id, "worker_id": None, "progress": 20 * (step + 1), "step": "Generating titles…",
                    "eta_seconds": 3 - step, "partial_text": "Compost " * step,
                })
        run_jobs(db, request_ids, "succeeded")
        assert function_calls(db, "request_search_text") == 0
        store_titles(db, request_ids[0], ["One title"])
        assert function_calls(db, "request_search_text") == 1, "storing a result computes it, once per row"


def updates_so_far(db) -> tuple[int, int]:
    """Updates of inkwell.requests and how many of them were heap-only, not yet flushed to the statistics."""
    return db.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'inkwell.requests'::regclass"
    ).fetchone()


def test_progress_writes_stay_heap_only_updates(db):
    request_ids = submit(db, "compost in small flats")
    run_jobs(db, request_ids, "doing")
    with db.transaction():
        updated_before, hot_before = updates_so_far(db)
        for step in range(5):
            db.execute(QUERIES["record_progress"], {
                "request_id": request_ids[0], "job_id": get_request(db, request_ids[0]).job_id, "worker_id": None, "progress": 10 * (step + 1), "step": "Generating titles…",
                "eta_seconds": 5 - step, "partial_text": "text so far " * step,
            })
        updated, hot = updates_so_far(db)
    assert (updated - updated_before, hot - hot_before) == (5, 5), \
        "no index (the search text's trigram index included) is touched by a progress write"
