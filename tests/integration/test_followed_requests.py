"""Changes are announced (NOTIFY inkwell_request_changes) only for requests an event hub follows
(migration 0150), without a stream that starts following ever missing one. Against a real database."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request

pytestmark = pytest.mark.timeout(60)

CHANNEL = "inkwell_request_changes"


def announced(listener: psycopg.Connection, seconds: float = 0.5) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=seconds, stop_after=None)]


def step(db: psycopg.Connection, request_id, text: str) -> None:
    """What a progress write changes."""
    db.execute("UPDATE inkwell.requests SET current_step = %s WHERE id = %s", (text, request_id))


@pytest.fixture
def listener(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


@pytest.fixture
def two_requests(db):
    return [submit_titles_request(db, TitlesInput(topic=f"bread number {i}"), requested_by="ana") for i in range(2)]


def test_only_the_followed_request_is_announced(db, listener, two_requests):
    followed, unfollowed = two_requests
    db.execute("SELECT inkwell.follow_requests(%s::uuid[], pg_backend_pid())", ([followed],))
    step(db, followed, "Writing")
    step(db, unfollowed, "Writing")
    assert announced(listener) == [str(followed)]

    db.execute("SELECT inkwell.unfollow_request(%s, pg_backend_pid())", (followed,))
    step(db, followed, "Still writing")
    assert announced(listener) == []


def test_a_status_change_made_by_the_queue_is_announced_when_followed(db, listener, two_requests):
    request_id = two_requests[0]
    db.execute("SELECT inkwell.follow_requests(%s::uuid[], pg_backend_pid())", ([request_id],))
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (get_request(db, request_id).job_id,))
    assert get_request(db, request_id).status == "running"
    assert announced(listener) == [str(request_id)]


def test_following_waits_for_a_change_in_flight_so_a_read_after_it_sees_the_change(database_url, db, listener, two_requests):
    request_id = two_requests[0]
    with psycopg.connect(database_url) as writer:  # a worker's progress write, not committed yet
        step(writer, request_id, "Half way")
        followed_at: list[float] = []

        def follow():
            with psycopg.connect(database_url, autocommit=True) as hub:
                hub.execute("SELECT inkwell.follow_requests(%s::uuid[], pg_backend_pid())", ([request_id],))
                followed_at.append(time.monotonic())

        follower = threading.Thread(target=follow)
        follower.start()
        time.sleep(0.5)
        assert followed_at == []  # still waiting for the writer
        committed_at = time.monotonic()
        writer.commit()
        follower.join(10)
    assert followed_at and followed_at[0] >= committed_at
    assert get_request(db, request_id).current_step == "Half way"  # what the hub's first read sees


def test_rows_of_listeners_that_are_gone_and_of_long_ended_requests_are_forgotten(database_url, db, two_requests):
    live, ended = two_requests
    with psycopg.connect(database_url, autocommit=True) as gone:
        gone_pid = gone.info.backend_pid
        gone.execute("SELECT inkwell.follow_requests(%s::uuid[], pg_backend_pid())", ([live],))
    db.execute("SELECT inkwell.follow_requests(%s::uuid[], pg_backend_pid())", (two_requests,))
    db.execute("UPDATE inkwell.requests SET finished_at = now() - interval '2 hours' WHERE id = %s", (ended,))

    deadline = time.monotonic() + 10
    while db.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (gone_pid,)).fetchone()[0]:
        assert time.monotonic() < deadline, "the closed connection's backend did not go"
        time.sleep(0.05)
    assert db.execute("SELECT inkwell.forget_gone_listeners()").fetchone()[0] == 2
    assert db.execute("SELECT request_id, listener_pid = pg_backend_pid() FROM inkwell.followed_requests").fetchall() == [
        (live, True)
    ]


def test_both_roles_may_follow_and_the_console_may_not_read_the_table(database_url, two_requests):
    # The API's hub follows through the workers' login when ./run gives it one, else the console's.
    from db import roles

    for role in (roles.CONSOLE, roles.WORKER):
        with psycopg.connect(roles.url_for(database_url, user=role), autocommit=True) as conn:
            conn.execute("SELECT inkwell.follow_requests(%s::uuid[], pg_backend_pid())", ([two_requests[0]],))
            conn.execute("SELECT inkwell.unfollow_request(%s, pg_backend_pid())", (two_requests[0],))
    with psycopg.connect(roles.url_for(database_url, user=roles.CONSOLE), autocommit=True) as console:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            console.execute("SELECT * FROM inkwell.followed_requests")
