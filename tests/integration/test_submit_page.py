"""The Submit page under Streamlit's AppTest, against a real database."""

from __future__ import annotations

import datetime as dt

from streamlit.testing.v1 import AppTest

from db.requests import list_recent_requests
from inkwell_settings import get_settings
from tests.support.console import offline_user, signed_in_app

PAGE = "pages/1_Submit.py"



def submit_page(console_as) -> AppTest:
    """The Submit page, signed in as an editor named Ana."""
    at = console_as("editor", PAGE).run()
    assert not at.exception
    return at


def submit_one(at: AppTest, topic: str) -> AppTest:
    at.text_area(key="one_topic").input(topic)
    return at.button(key="one_submit").click().run()


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


def queued(db) -> list[tuple[str, str, str]]:
    return sorted((r.input["topic"], r.status, r.requested_by) for r in list_recent_requests(db, limit=500))


def test_submit_page_renders_with_an_empty_database(console_as, db):
    at = submit_page(console_as)
    assert [tab.label for tab in at.tabs] == ["One request", "Paste many topics", "Upload a CSV"]
    assert at.selectbox(key="submit_kind").value == "titles"
    assert at.radio(key="start_choice").value == "Start now"
    assert queued(db) == []


def test_one_request_is_queued_and_the_page_links_to_live(console_as, db):
    at = submit_one(submit_page(console_as), "composting in small apartments")
    assert not at.exception
    assert "Queued 1 request." in texts(at.success)
    assert [link.label for link in at.get("page_link")] == ["Watch progress on the Live page"]
    assert queued(db) == [("composting in small apartments", "queued", "Ana")]


def test_an_invalid_topic_is_refused_with_the_reason(console_as, db):
    at = submit_one(submit_page(console_as), " a ")
    assert "topic: must be at least 3 characters" in texts(at.error)
    assert queued(db) == []


def test_clicking_submit_twice_queues_one_request(console_as, db):
    at = submit_one(submit_page(console_as), "composting in small apartments")
    submit_one(at, "composting in small apartments")  # a double click sends the same form again
    assert "That was just submitted; nothing more was queued." in texts(at.info)
    assert queued(db) == [("composting in small apartments", "queued", "Ana")]


def test_pasting_five_topics_with_one_bad_queues_four_and_names_the_bad_line(console_as, db):
    at = submit_page(console_as)
    at.text_area(key="pasted_topics").input("urban beekeeping\nwinter gardening\n\nab\nsourdough basics\ntiny houses")
    at.text_input(key="pasted_audience").input("beginners")
    at.button(key="pasted_submit").click().run()

    assert not at.exception
    assert "Queued 4 requests. 1 line refused (listed below)." in texts(at.success)
    refused = at.dataframe[0].value
    assert refused.to_dict("records") == [
        {"Line": 4, "Text": "ab", "Reason": "topic: must be at least 3 characters (after trimming spaces)"}
    ]
    assert at.text_area(key="pasted_topics").value == "ab", "only the refused line stays in the box"
    assert queued(db) == sorted(
        (topic, "queued", "Ana") for topic in ("urban beekeeping", "winter gardening", "sourdough basics", "tiny houses")
    )
    assert {r.input["audience"] for r in list_recent_requests(db)} == {"beginners"}


def test_uploading_a_200_line_csv_with_3_bad_lines_queues_the_rest_and_lists_exactly_those_lines(console_as, db):
    rows = [f"topic number {i};readers;{(i % 20) + 1}" for i in range(199)]
    rows[10], rows[99], rows[150] = "ab;readers;5", "topic number 99;readers;0", ";readers;5"
    data = ("\ufefftopic;audience;count\n" + "\n".join(rows) + "\n").encode()
    at = submit_page(console_as)
    at.file_uploader(key="csv_file").set_value(("topics.csv", data, "text/csv"))
    at.button(key="csv_submit").click().run()

    assert not at.exception
    assert "Queued 196 requests. 3 lines refused (listed below)." in texts(at.success)
    assert at.dataframe[0].value["Line"].tolist() == [12, 101, 152]
    assert len(queued(db)) == 196
    assert db.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()[0] == 196


def test_a_binary_upload_is_refused_with_a_message_and_nothing_is_queued(console_as, db):
    at = submit_page(console_as)
    at.file_uploader(key="csv_file").set_value(("topics.csv", b"PK\x03\x04\x00\x00binary", "text/csv"))
    at.button(key="csv_submit").click().run()
    assert "“topics\\.csv” was not queued\\. This file is not text" in texts(at.error)
    assert queued(db) == []


def test_scheduling_in_30_minutes_stores_a_scheduled_request_starting_then(console_as, db):
    at = submit_page(console_as)
    at.radio(key="start_choice").set_value("In N minutes").run()
    assert at.number_input(key="start_in_minutes").value == 30
    before = dt.datetime.now(dt.timezone.utc)
    submit_one(at, "winter gardening")
    after = dt.datetime.now(dt.timezone.utc)

    [request] = list_recent_requests(db)
    assert request.status == "scheduled"
    assert before + dt.timedelta(minutes=30) <= request.scheduled_at <= after + dt.timedelta(minutes=30)
    assert "to start" in texts(at.success)


def test_scheduling_at_a_date_and_time_uses_that_time_in_utc_when_the_browser_gives_no_zone(console_as, db):
    at = submit_page(console_as)
    at.radio(key="start_choice").set_value("At a date and time").run()
    start = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).replace(second=0, microsecond=0)
    at.datetime_input(key="start_at").set_value(start.replace(tzinfo=None))
    submit_one(at, "winter gardening")

    [request] = list_recent_requests(db)
    assert (request.status, request.scheduled_at) == ("scheduled", start)


def test_a_start_time_in_the_past_is_refused(console_as, db):
    at = submit_page(console_as)
    at.radio(key="start_choice").set_value("At a date and time").run()
    at.datetime_input(key="start_at").set_value(dt.datetime.now().replace(tzinfo=None) - dt.timedelta(days=1))
    submit_one(at, "winter gardening")
    assert "is in the past" in texts(at.error)
    assert queued(db) == []


def test_database_down_shows_queue_unavailable_on_submit_instead_of_a_traceback(database_down):
    try:
        at = signed_in_app(offline_user("editor"), PAGE).run()
        at = submit_one(at, "composting in small apartments")
        assert not at.exception
        assert "Queue unavailable" in texts(at.error)
    finally:
        get_settings.cache_clear()
