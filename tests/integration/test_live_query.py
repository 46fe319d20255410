"""The Live page's queries read only what a card shows: refreshed every second for up to 200 cards,
they leave out the result and the other columns no card shows."""

from __future__ import annotations

from db.live import LiveFilters, LiveRequest, list_live_requests, list_live_requests_by_id
from db.queries import QUERIES
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request


def submit(db, topic: str):
    return submit_titles_request(db, TitlesInput(topic=topic), requested_by="ana")


def test_live_cards_carry_the_partial_text_and_no_result(db):
    request_id = submit(db, "winter gardening")
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (get_request(db, request_id).job_id,))
    partial = "".join(f"{i:04d}" for i in range(500))  # 2,000 characters, as a worker keeps
    db.execute("UPDATE inkwell.requests SET partial_text = %s, result = '{\"titles\": [\"x\"]}' WHERE id = %s", (partial, request_id))

    [card] = list_live_requests(db, LiveFilters()).requests

    assert card.id == request_id and card.status == "running"
    assert card.input["topic"] == "winter gardening"
    assert card.partial_text == partial
    assert "result" not in LiveRequest.model_fields


def test_both_live_queries_select_exactly_the_card_fields(db):
    request_id = submit(db, "urban beekeeping")
    params = {"statuses": ["scheduled", "queued", "running"], "kinds": None, "requested_by": None, "limit": 200}
    for name, query_params in (("list_live_requests", params), ("list_live_requests_by_id", {"ids": [request_id]})):
        with db.cursor() as cur:
            cur.execute(QUERIES[name], query_params)
            assert [column.name for column in cur.description] == list(LiveRequest.model_fields), name


def test_a_cancelled_request_is_still_read_by_id_with_when_it_ended(db):
    request_id = submit(db, "finished already")
    db.execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = %s", (get_request(db, request_id).job_id,))

    assert list_live_requests(db, LiveFilters()).requests == []
    [card] = list_live_requests_by_id(db, [request_id])
    assert (card.status, card.current_step) == ("cancelled", "Cancelled")
    assert card.finished_at is not None
