"""One time convention across the console's pages (console_time), under AppTest with a browser in
Kolkata (UTC+05:30, a half-hour offset no UTC-based slip can hide): text reads relative with the
exact time in the tooltip, tables hold the viewer's times and name the zone, the Overview's chart
axes are 24-hour, and a scheduled start is read in the viewer's zone."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pyarrow

from streamlit.testing.v1 import AppTest

from db.api_tokens import create_token
from db.people import acting_as
from db.requests import get_request, list_recent_requests
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.integration.test_blog_posts import saved_post
from tests.integration.test_overview import finished

KOLKATA = "Asia/Kolkata"
IST = ZoneInfo(KOLKATA)
UTC = dt.timezone.utc


def in_kolkata(at: AppTest) -> AppTest:
    at.context["timezone"] = KOLKATA
    return at


def exact_ist(at: dt.datetime) -> str:
    return f"{at.astimezone(IST):%Y-%m-%d %H:%M:%S} IST"


def column_help(at: AppTest, frame_column: str) -> str:
    """The header tooltip of a table's column, as the page configured it."""
    for frame in at.dataframe:
        if frame_column in frame.value.columns:
            columns = json.loads(frame.proto.columns)
            return columns[frame_column].get("help", "")
    raise AssertionError(f"no table has a column {frame_column!r}")


def column_values(at: AppTest, frame_column: str) -> list:
    return list(next(d.value for d in at.dataframe if frame_column in d.value.columns)[frame_column])


def test_home_says_how_long_ago_a_request_came_with_the_exact_time_in_the_viewers_zone_on_hover(console_as, db):
    [request_id] = submit_requests(db, "titles", [TitlesInput(topic="winter gardening")], requested_by="Ana")
    created = get_request(db, request_id).created_at

    at = in_kolkata(console_as()).run()

    assert not at.exception
    [caption] = [c for c in at.caption if c.value.startswith("Ana · ")]
    assert re.fullmatch(r"Ana · (just now|\d+ s ago)", caption.value), caption.value
    assert caption.proto.help == exact_ist(created)


def test_historys_table_holds_the_viewers_times_and_its_header_names_the_zone(console_as, db):
    [request_id] = submit_requests(db, "titles", [TitlesInput(topic="winter gardening")], requested_by="ana")
    job_id = get_request(db, request_id).job_id
    db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,))
    db.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (job_id,))
    created = get_request(db, request_id).created_at

    at = in_kolkata(console_as(page="pages/3_History.py")).run()

    assert not at.exception
    [submitted] = column_values(at, "Submitted")
    assert str(submitted.tz) == KOLKATA and submitted == created
    assert "Asia/Kolkata (IST)" in column_help(at, "Submitted")


def test_the_audit_log_and_the_posts_list_are_in_the_viewers_zone(console_as, db, database_url):
    post_id = saved_post(db, database_url)
    saved = db.execute("SELECT created_at FROM inkwell.posts WHERE id = %s", (post_id,)).fetchone()[0]
    admin = in_kolkata(console_as("admin", "pages/7_Admin.py")).run()
    posts = in_kolkata(console_as(page="pages/5_Posts.py"))
    posts.query_params["post"] = str(post_id)
    posts.run()

    assert not admin.exception and not posts.exception
    assert {str(when.tz) for when in column_values(admin, "When")} == {KOLKATA}
    assert "Asia/Kolkata (IST)" in column_help(admin, "When")
    assert {str(saved.tz) for saved in column_values(posts, "Saved")} == {KOLKATA}
    assert "Asia/Kolkata (IST)" in column_help(posts, "Saved")
    assert any(f"saved {saved.astimezone(IST):%H:%M} (" in c.value for c in posts.caption), [c.value for c in posts.caption]


def test_live_gives_a_scheduled_start_as_the_viewers_clock_time_and_how_soon(console_as, db):
    starts = (dt.datetime.now(UTC) + dt.timedelta(minutes=90)).replace(second=0, microsecond=0)
    submit_requests(db, "titles", [TitlesInput(topic="winter gardening")], requested_by="ana", schedule_at=starts)

    at = in_kolkata(console_as(page="pages/2_Live.py")).run()

    assert not at.exception
    local = starts.astimezone(IST)
    clock = f"{local:%H:%M}" if local.date() == dt.datetime.now(IST).date() else f"{local.day} {local:%b} {local:%H:%M}"
    assert any(f"Starts at {clock} (in 1 h 30 min)" in c.value or f"Starts at {clock} (in 1 h 29 min)" in c.value
               for c in at.caption), [c.value for c in at.caption]


def test_an_api_tokens_times_are_relative_with_the_exact_time_in_the_viewers_zone_on_hover(console_as, db):
    at = in_kolkata(console_as("editor", "pages/8_API_tokens.py"))
    user = at.session_state["signed_in_user"]
    with acting_as(db, user):
        create_token(db, user, "shop blog")
    at.run()

    assert not at.exception
    [created] = [c for c in at.caption if c.value.startswith("created ")]
    assert re.fullmatch(r"created (just now|\d+ s ago)", created.value), created.value
    assert created.proto.help.endswith(" IST")


def test_the_overviews_chart_axes_are_24_hour_in_the_viewers_wall_clock(console_as, db):
    ended = db.execute("SELECT date_trunc('minute', now()) - interval '5 minutes' + interval '20 seconds'").fetchone()[0]
    finished(db, "succeeded", ended)

    at = in_kolkata(console_as()).run()

    assert not at.exception
    per_minute, per_hour = at.get("vega_lite_chart")
    axes = [json.loads(chart.proto.spec)["encoding"]["x"] for chart in (per_minute, per_hour)]
    assert [x["axis"]["format"] for x in axes] == ["%H:%M", "%d %b %H:%M"]
    assert [x["timeUnit"] for x in axes] == ["yearmonthdatehoursminutes", "yearmonthdatehours"]
    [dataset] = per_minute.proto.datasets
    frame = pyarrow.ipc.open_stream(dataset.data.data).read_all().to_pandas()
    wall_clock = ended.astimezone(IST).replace(second=0, tzinfo=None)
    assert list(frame.loc[frame["Requests"] > 0, "Finished"]) == [wall_clock]


def test_a_start_chosen_as_a_date_and_time_is_read_in_the_viewers_zone(console_as, db):
    at = in_kolkata(console_as("editor", "pages/1_Submit.py")).run()
    at.radio(key="start_choice").set_value("At a date and time").run()
    assert "Asia/Kolkata (IST)" in at.datetime_input(key="start_at").label
    wall = (dt.datetime.now(IST) + dt.timedelta(days=1)).replace(hour=20, minute=0, second=0, microsecond=0, tzinfo=None)
    at.datetime_input(key="start_at").set_value(wall)
    at.text_area(key="one_topic").input("winter gardening")
    at.button(key="one_submit").click().run()

    assert not at.exception
    [request] = list_recent_requests(db)
    assert request.scheduled_at == wall.replace(tzinfo=IST)
    assert any(f"to start at {wall.day} {wall:%b} 20:00 (in " in s.value for s in at.success), [s.value for s in at.success]


def test_a_start_the_clocks_skip_is_refused_in_words(console_as, db):
    at = console_as("editor", "pages/1_Submit.py")
    at.context["timezone"] = "Europe/Berlin"
    at.run()
    at.radio(key="start_choice").set_value("At a date and time").run()
    at.datetime_input(key="start_at").set_value(dt.datetime(2027, 3, 28, 2, 30))
    at.text_area(key="one_topic").input("winter gardening")
    at.button(key="one_submit").click().run()

    assert any("2027-03-28 02:30 does not exist in Europe/Berlin" in e.value for e in at.error), [e.value for e in at.error]
    assert list_recent_requests(db) == []
