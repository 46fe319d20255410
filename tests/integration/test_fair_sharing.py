"""Fair sharing: a submission's jobs are deferred with priority -(the submitter's backlog + its size)
- (seconds since 2026-01-01) (migration 0045), and Procrastinate takes jobs by priority, then id. One
person's single request starts within seconds while a colleague's bulk batch is queued; two bulk
submitters stay first come, first served."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from db.people import acting_as
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for
from tests.support.llm_server import ok
from tests.support.people import make_cast

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def cast(db):
    return make_cast(db, credits=100_000)


def topics(count: int, prefix: str) -> list[TitlesInput]:
    return [TitlesInput(topic=f"{prefix} {i}") for i in range(count)]


def submit_as(conn, user, inputs) -> list[uuid.UUID]:
    with acting_as(conn, user):
        return submit_requests(conn, "titles", inputs, requested_by=user.display_name)


def claim_order(db) -> list[str]:
    """Whose request each waiting job belongs to, in the order workers will take them."""
    return [row[0] for row in db.execute(
        "SELECT r.requested_by FROM procrastinate_jobs j JOIN inkwell.requests r ON r.job_id = j.id "
        "WHERE j.status = 'todo' ORDER BY j.priority DESC, j.id ASC"
    )]


def test_a_single_request_is_taken_before_another_user_s_bulk_batch(db, cast):
    submit_as(db, cast.ana, topics(300, "bulk"))
    submit_as(db, cast.carl, topics(1, "single"))
    assert claim_order(db)[0] == "Carl"


def test_two_bulk_submitters_stay_first_come_first_served(db, cast):
    submit_as(db, cast.ana, topics(200, "first bulk"))
    submit_as(db, cast.carl, topics(200, "second bulk"))
    assert claim_order(db) == ["Ana"] * 200 + ["Carl"] * 200


def test_a_submitter_s_own_backlog_puts_their_next_request_after_it(db, cast):
    submit_as(db, cast.ana, topics(100, "bulk"))
    submit_as(db, cast.ana, topics(1, "afterthought"))
    submit_as(db, cast.carl, topics(1, "single"))
    assert claim_order(db) == ["Carl"] + ["Ana"] * 101


def test_without_sign_in_requesters_are_told_apart_by_name(db):
    submit_requests(db, "titles", topics(100, "nightly"), requested_by="nightly script")
    submit_requests(db, "titles", topics(1, "quick"), requested_by="Dana")
    assert claim_order(db)[0] == "Dana"


def test_a_single_request_starts_within_seconds_while_a_bulk_batch_is_queued(db, cast, start_worker, llm_server):
    # Each model answer streams for ~0.2 s: 4 slots drain the batch at ~20 requests a second at best.
    llm_server.default_behaviour = ok(delay_per_chunk=0.025, chunks=8)
    batch = submit_as(db, cast.ana, topics(200, "bulk"))
    start_worker(concurrency=4)
    wait_for(lambda: started(db, batch) >= 8, timeout=60, message="Ana's batch under way")

    (single,) = submit_as(db, cast.carl, topics(1, "single"))
    request = wait_for(lambda: (r := get_request(db, single)).started_at and r, timeout=30, message="Carl's request started")

    wait = request.started_at - request.created_at
    assert wait < dt.timedelta(seconds=3), f"Carl waited {wait}"
    ahead = db.execute(
        "SELECT count(*) FROM inkwell.requests WHERE id = ANY(%s) AND started_at > %s AND started_at < %s",
        (batch, request.created_at, request.started_at),
    ).fetchone()[0]
    assert ahead <= 4, f"{ahead} of Ana's jobs started after Carl's request was queued and before it"
    still_waiting = db.execute(
        "SELECT count(*) FROM inkwell.requests WHERE id = ANY(%s) AND (started_at IS NULL OR started_at > %s)",
        (batch, request.started_at),
    ).fetchone()[0]
    assert still_waiting >= 100, f"only {still_waiting} of Ana's 200 were left: the batch had nearly drained"


def started(db, request_ids) -> int:
    return db.execute(
        "SELECT count(*) FROM inkwell.requests WHERE id = ANY(%s) AND started_at IS NOT NULL", (request_ids,)
    ).fetchone()[0]
