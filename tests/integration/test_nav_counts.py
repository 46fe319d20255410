"""Counts beside Live and History in the navigation: requests queued and running, failed in the last
hour; of the requests the viewer may see, and current after the next run when a status changed."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from streamlit.testing.v1 import AppTest

from db.people import User, acting_as
from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.support.console import make_user, signed_in_app

ROOT = Path(__file__).resolve().parents[2]


def submit_as(db, user: User, topic: str) -> uuid.UUID:
    with acting_as(db, user):
        [request_id] = submit_requests(db, "titles", [TitlesInput(topic=topic)], requested_by=user.display_name)
    return request_id


def set_job(db, request_id: uuid.UUID, *statuses: str) -> None:
    for status in statuses:
        db.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = %s", (status, get_request(db, request_id).job_id))


def nav_titles(at: AppTest) -> dict[str, str]:
    """The navigation's entries as the browser gets them: page file → title."""
    return {
        str(Path(info["script_path"]).relative_to(ROOT)): info["page_name"]
        for info in at._registered_pages.values()
        if info.get("script_path")
    }


def test_live_and_history_show_queued_running_and_recent_failures(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    first, second, third, fourth = (submit_as(db, ana, topic) for topic in ("aaa", "bbb", "ccc", "ddd"))
    set_job(db, first, "doing")
    set_job(db, fourth, "doing", "failed")

    at = signed_in_app(ana).run()

    assert not at.exception
    titles = nav_titles(at)
    assert titles["pages/2_Live.py"] == "Live · 1 running · 2 queued"
    assert titles["pages/3_History.py"] == "History · 1 failed in 1 h"
    assert titles["pages/5_Posts.py"] == "Posts"
    at.switch_page("pages/2_Live.py").run()  # the page's own address is unchanged by its title
    assert not at.exception and [t.value for t in at.title] == ["Live"]


def test_the_counts_follow_a_status_change_on_the_next_run(console_env, db):
    ana = make_user(db, "editor", display_name="Ana")
    request_id = submit_as(db, ana, "aaa")
    at = signed_in_app(ana).run()
    assert nav_titles(at)["pages/2_Live.py"] == "Live · 1 queued"

    set_job(db, request_id, "doing")
    time.sleep(0.6)  # the change counters are read at most twice a second per console process
    at.run()
    assert nav_titles(at)["pages/2_Live.py"] == "Live · 1 running"

    set_job(db, request_id, "succeeded")
    time.sleep(0.6)
    at.run()
    assert nav_titles(at)["pages/2_Live.py"] == "Live"


def test_an_editor_counts_only_the_requests_they_may_see(console_env, db):
    submit_as(db, make_user(db, "editor", organization="Globex"), "theirs")
    at = signed_in_app(make_user(db, "editor", organization="Acme")).run()
    assert nav_titles(at)["pages/2_Live.py"] == "Live"
    operator = signed_in_app(make_user(db, "operator")).run()
    assert nav_titles(operator)["pages/2_Live.py"] == "Live · 1 queued"
