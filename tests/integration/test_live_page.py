"""The Live page under Streamlit's AppTest, against a real database (and a real worker for cancelling a running job)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from streamlit.testing.v1 import AppTest

from console_time import clock
from db.live import LiveFilters, list_live_requests
from db.queries import QUERIES
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests, submit_titles_request
from tests.conftest import wait_for
from tests.support.console import make_user, offline_user, signed_in_app
from tests.support.llm_server import ok

PAGE = "pages/2_Live.py"


def live_page(at: AppTest) -> AppTest:
    """The Live page of a signed-in console (console_as, signed_in_app), run."""
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def submit(db, topic: str, *, by: str = "ana", schedule_at: dt.datetime | None = None) -> uuid.UUID:
    return submit_titles_request(db, TitlesInput(topic=topic), requested_by=by, schedule_at=schedule_at)


def start_running(db, request_id: uuid.UUID, *, progress: int, step: str, eta: int, partial: str) -> None:
    """What a worker does when it picks a job up and reports progress."""
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute(
        "UPDATE inkwell.requests SET progress = %s, current_step = %s, eta_seconds = %s, partial_text = %s WHERE id = %s",
        (progress, step, eta, partial, request_id),
    )


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


def topics_shown(at: AppTest) -> list[str]:
    return [m.value.split("**")[1] for m in at.markdown if m.value.count("**") == 2]


def test_empty_database_says_what_to_do_next(console_as):
    at = live_page(console_as())
    assert "No jobs waiting or running — submit a topic on the Submit page." in texts(at.info)
    assert [link.label for link in at.get("page_link")] == ["Submit a topic"]


def test_queued_and_running_requests_are_shown_newest_first_with_progress(console_as, db):
    queued = submit(db, "urban beekeeping")
    running = submit(db, "winter gardening")
    finished = submit(db, "finished already")
    db.execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = %s", (get_request(db, finished).job_id,))
    start_running(db, running, progress=40, step="Generating titles…", eta=12, partial='{"titles": ["Frost <b>proof</b>')

    at = live_page(console_as())

    assert topics_shown(at) == ["winter gardening", "urban beekeeping"]
    assert [(p.value, p.text) for p in at.get("progress")] == [
        (40, "Generating titles… · about 12 s left"),
        (0, "Queued"),
    ]
    # The answer as it is becoming: a list of titles, escaped, no JSON.
    assert "1. Frost \\<b\\>proof\\</b\\>" in texts(at.markdown)
    assert '"titles"' not in texts(at.markdown) + texts(at.caption)
    assert get_request(db, queued).status == "queued"


def test_a_finished_request_is_not_shown(console_as, db):
    request_id = submit(db, "urban beekeeping")
    db.execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = %s", (get_request(db, request_id).job_id,))
    at = live_page(console_as())
    assert "No jobs waiting or running" in texts(at.info)


def test_a_scheduled_request_shows_its_start_time_and_a_countdown(console_as, db):
    starts = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=4, seconds=15)
    submit(db, "winter gardening", schedule_at=starts)
    at = live_page(console_as())
    captions = texts(at.caption)
    assert f"Starts at {clock(starts, dt.timezone.utc, dt.datetime.now(dt.timezone.utc))} (in 4 min)" in captions
    assert not at.get("progress")


@pytest.mark.parametrize("job_status", ["doing", "todo"], ids=["running again", "waiting to retry"])
def test_a_request_past_its_first_attempt_shows_attempt_2_of_3(console_as, db, job_status):
    job_id = get_request(db, submit(db, "urban beekeeping")).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'todo', attempts = 1 WHERE id = %s", (job_id,))  # a retry
    if job_status == "doing":
        db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    at = live_page(console_as())
    assert "Attempt 2 of 3" in texts(at.caption)


def test_cancel_on_a_queued_request_cancels_it_and_the_next_refresh_shows_it_cancelled(console_as, db):
    request_id = submit(db, "urban beekeeping")
    at = live_page(console_as())
    at.button(key=f"cancel_{request_id}").click().run()

    assert not at.exception
    assert get_request(db, request_id).status == "cancelled"
    assert texts(at.toast) == "Cancelled “urban beekeeping”."
    at.run()  # fragments do not tick under AppTest: this is the next refresh
    assert ":orange-badge[:material/cancel: cancelled] **urban beekeeping**" in texts(at.markdown)
    assert not at.main.button  # nothing left to cancel


def test_cancelling_a_request_that_already_ended_says_so(console_as, db):
    request_id = submit(db, "urban beekeeping")
    at = live_page(console_as())
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (get_request(db, request_id).job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (get_request(db, request_id).job_id,))
    at.button(key=f"cancel_{request_id}").click().run()
    assert not at.exception
    assert "already succeeded" in texts(at.toast)


def test_cancel_on_a_running_request_shows_cancelling_until_the_worker_stops_it(console_as, db):
    request_id = submit(db, "tiny house living")
    start_running(db, request_id, progress=30, step="Generating titles…", eta=8, partial="")
    at = live_page(console_as())
    at.button(key=f"cancel_{request_id}").click().run()

    assert texts(at.toast) == "Cancelling “tiny house living”: the worker is stopping it."
    assert [p.text.split(" · ")[0] for p in at.get("progress")] == ["Cancelling…"]
    assert get_request(db, request_id).status == "running"

    # The worker stops the task and ends the job as Procrastinate does on abort.
    db.execute("UPDATE procrastinate_jobs SET status = 'aborted' WHERE id = %s", (get_request(db, request_id).job_id,))
    time.sleep(1.1)  # the next tick: the change counters are read at most once a second
    at.run()
    assert ":orange-badge[:material/cancel: cancelled] **tiny house living**" in texts(at.markdown)
    assert "Cancelled while running" in texts(at.caption)


@pytest.mark.timeout(120)
def test_cancel_on_a_request_a_real_worker_is_running_ends_it_cancelled(inkwell_env, db, start_worker, llm_server):
    llm_server.push(ok(delay_per_chunk=0.5, chunks=40))  # 20 s if left alone
    request_id = submit(db, "tiny house living")
    start_worker()
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=20)

    at = live_page(signed_in_app(make_user(db, "operator")))
    at.button(key=f"cancel_{request_id}").click().run()
    assert texts(at.toast) == "Cancelling “tiny house living”: the worker is stopping it."

    wait_for(lambda: get_request(db, request_id).status == "cancelled", timeout=5)
    # The page learns of the change from the change counters, read at most every 0.5 s per console
    # process: within a second or two, as the list's own check does, not on the very next run.
    wait_for(lambda: ":orange-badge[:material/cancel: cancelled] **tiny house living**" in texts(at.run().markdown),
             timeout=5, interval=0.5, message="the card to show the request cancelled")
    assert llm_server.wait_for_disconnect(timeout=5), "the model request was closed"


def test_filters_narrow_the_list_and_survive_a_refresh(console_as, db):
    submit(db, "urban beekeeping", by="Ana")
    submit(db, "winter gardening", by="Ben")
    at = live_page(console_as())
    at.toggle(key="live_only_mine").set_value(True).run()
    assert topics_shown(at) == ["urban beekeeping"]
    at.run()
    assert at.toggle(key="live_only_mine").value is True
    assert topics_shown(at) == ["urban beekeeping"]


def test_a_status_filter_with_no_matches_says_so(console_as, db):
    submit(db, "urban beekeeping")
    at = live_page(console_as())
    at.multiselect(key="live_statuses").set_value(["running"]).run()
    assert "No waiting or running jobs match these filters." in texts(at.info)


def test_more_requests_than_the_page_shows_says_how_many_in_all(console_as, db):
    submit_requests(db, "titles", [TitlesInput(topic=f"topic number {i}") for i in range(205)], requested_by="bulk")
    at = live_page(console_as())
    assert "Showing the newest 200 of 205." in texts(at.caption)
    assert len(at.get("progress")) == 200


def test_database_down_shows_queue_unavailable_instead_of_a_traceback(database_down):
    at = live_page(signed_in_app(offline_user()))
    assert not at.exception
    assert "Queue unavailable" in texts(at.error)


def test_the_live_query_reads_the_unfinished_index_not_the_history(db):
    # A long history of finished requests and a few waiting ones.
    submit_requests(db, "titles", [TitlesInput(topic=f"old topic {i}") for i in range(3000)], requested_by="bulk")
    db.execute("UPDATE procrastinate_jobs SET status = 'cancelled'")
    submit(db, "urban beekeeping")
    db.execute("ANALYZE inkwell.requests")

    plan = "\n".join(
        row[0]
        for row in db.execute(
            "EXPLAIN " + QUERIES["list_live_requests"],
            {"statuses": ["scheduled", "queued", "running"], "kinds": None, "requested_by": None, "limit": 200},
        )
    )
    assert "requests_unfinished_idx" in plan
    assert [r.input["topic"] for r in list_live_requests(db, LiveFilters()).requests] == ["urban beekeeping"]
