"""Lists stay current by themselves: a change counter (migration 0090) moves when rows change, and
each list's one-second check reads its rows again only then, keeping filters and selections.

AppTest does not run fragments on their timer; each `at.run()` here stands for the next tick, after
the counters' one-second cache has expired, with no click in between.
"""

from __future__ import annotations

import re
import time

import psycopg

from db.changes import read_change_counters
from db.requests import get_request
from tests.integration.test_history_page import finish, open_page, select_rows, shown_topics, submit

TICK = 1.1  # the counters are read at most once a second per console process


def next_tick(at):
    time.sleep(TICK)
    return at.run()


def test_counters_move_with_their_rows_and_status_only_with_a_status_change(db):
    before = read_change_counters(db)
    (request_id,) = submit(db, "a topic")
    submitted = read_change_counters(db)
    assert submitted.requests > before.requests and submitted.request_status > before.request_status

    db.execute("UPDATE inkwell.requests SET progress = 40 WHERE id = %s", (request_id,))
    progressed = read_change_counters(db)
    assert progressed.requests > submitted.requests
    assert progressed.request_status == submitted.request_status  # History does not re-read for progress

    finish(db, [request_id])
    assert read_change_counters(db).request_status > progressed.request_status
    assert read_change_counters(db).posts == before.posts


def test_a_change_is_counted_at_commit_not_before(db, database_url):
    (request_id,) = submit(db, "a topic")
    before = read_change_counters(db)
    with psycopg.connect(database_url) as writer:
        writer.execute("UPDATE inkwell.requests SET progress = 10 WHERE id = %s", (request_id,))
        assert read_change_counters(db).requests == before.requests  # not yet visible, not yet counted
        writer.commit()
    assert read_change_counters(db).requests > before.requests


def test_the_console_may_read_the_counters(console_database_url):
    with psycopg.connect(console_database_url) as conn:
        assert read_change_counters(conn).requests >= 1


def test_history_shows_a_request_that_ends_after_the_page_opened_without_a_click(console_as, db):
    request_id = submit(db, "ends later")
    at = open_page(console_as)
    assert shown_topics(at) == []

    finish(db, request_id)
    at = next_tick(at)
    assert not at.exception
    assert shown_topics(at) == ["ends later"]


def test_history_empty_view_offers_refresh(console_as, db):
    at = open_page(console_as)
    assert at.button(key="history_refresh_empty").label == "Refresh"
    request_id = submit(db, "finished meanwhile")
    finish(db, request_id)
    at.button(key="history_refresh_empty").click().run()
    assert shown_topics(at) == ["finished meanwhile"]


def test_history_keeps_filters_and_selection_when_rows_are_added_below(console_as, db):
    oldest = submit(db, "oldest, still running")
    finish(db, submit(db, "middle") + submit(db, "newest"))
    at = open_page(console_as)
    at.text_input(key="history_requester").input("ana").run()
    at = select_rows(at, [0])
    version = at.session_state["history_table_version"]

    finish(db, oldest)
    at = next_tick(at)
    assert shown_topics(at) == ["newest", "middle", "oldest, still running"]
    assert at.text_input(key="history_requester").value == "ana"
    assert at.session_state["history_table_version"] == version  # the same table: the selection stays
    assert at.session_state[f"history_table_{version}"]["selection"]["rows"] == [0]


def test_history_holds_the_rows_while_a_selected_row_would_move(console_as, db):
    finish(db, submit(db, "first"))
    newer = submit(db, "second")
    at = select_rows(open_page(console_as), [0])

    finish(db, newer)
    at = next_tick(at)
    assert shown_topics(at) == ["first"]
    assert any("Newer changes are waiting" in c.value for c in at.caption)

    at.button(key="history_refresh").click().run()
    assert shown_topics(at) == ["second", "first"]


def test_after_retry_all_matching_the_list_shows_the_requests_failing_again(console_as, db):
    failed = submit(db, "fails twice")
    finish(db, failed, "failed", error_code="server_error", error_message="500")
    at = open_page(console_as)
    at.button(key="bulk_retry_matching").click().run()
    at.button(key="bulk_confirm").click().run()
    assert get_request(db, failed[0]).status == "queued"
    assert shown_topics(at) == []  # retried: not finished any more

    finish(db, failed, "failed", error_code="server_error", error_message="500 again")
    at = next_tick(at)
    at = next_tick(at)
    assert shown_topics(at) == ["fails twice"]


# --- Live, Posts, Site builds ---


def test_live_reads_its_rows_again_only_when_a_request_changed(console_as, db):
    from tests.integration.test_live_page import live_page, start_running, topics_shown
    from tests.integration.test_live_page import submit as submit_live

    first = submit_live(db, "first")
    at = live_page(console_as())
    read_at = at.session_state["live_rows"][0]
    at = next_tick(at)
    assert at.session_state["live_rows"][0] == read_at, "nothing changed: the rows were not read again"

    submit_live(db, "second")
    start_running(db, first, progress=50, step="Writing…", eta=3, partial="")
    at = next_tick(at)
    assert at.session_state["live_rows"][0] > read_at
    assert topics_shown(at) == ["second", "first"]
    assert [p.text.split(" · ")[0] for p in at.get("progress")][-1] == "Writing…"


def test_posts_page_lists_a_new_post_by_itself_and_keeps_the_open_one(console_as, db, database_url):
    from tests.integration.test_blog_posts import saved_post

    first = saved_post(db, database_url)
    at = console_as(page="pages/5_Posts.py")
    at.session_state["posts_table_0"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert at.query_params["post"] == [str(first)] or at.query_params["post"] == str(first)

    saved_post(db, database_url)
    at = next_tick(at)
    assert not at.exception
    assert len(next(d.value for d in at.dataframe if "Title" in d.value.columns)) == 2
    opened = at.query_params["post"]
    assert (opened[0] if isinstance(opened, list) else opened) == str(first), "the open post stays open"


# --- time left, learned from recent runs of the same kind ---


def test_live_time_left_counts_the_steps_still_to_come_from_recent_runs_of_the_kind(console_as, db):
    from tests.integration.test_live_page import live_page, start_running
    from tests.integration.test_live_page import submit as submit_live

    done = [submit_live(db, f"earlier {i}") for i in range(3)]
    finish(db, done)
    db.execute("UPDATE inkwell.requests SET started_at = now() - interval '200 s', finished_at = now() - interval '100 s' "
               "WHERE id = ANY(%s)", (done,))
    running = submit_live(db, "running now")
    start_running(db, running, progress=15, step="Outline: planning the sections…", eta=0, partial="")
    db.execute("UPDATE inkwell.requests SET started_at = now() - interval '10 s' WHERE id = %s", (running,))

    at = live_page(console_as())
    [bar] = [p for p in at.get("progress") if p.value == 15]
    # Recent runs took 100 s and this one has run 10 s (plus the time the page took to open), though
    # its current step alone would say 0 s.
    left = re.fullmatch(r"Outline\\: planning the sections… · about 1 min (\d+) s left", bar.text)
    assert left and 15 <= int(left.group(1)) <= 30, bar.text


# --- plain words, and only actions that can work ---


def test_history_offers_cancel_selected_only_for_rows_that_can_be_cancelled(console_as, db):
    failed = submit(db, "went badly")
    finish(db, failed, "failed", error_code="url_refused", error_message="That address is private.")
    at = select_rows(open_page(console_as), [0])
    assert at.button(key="bulk_cancel_selected").disabled
    assert at.button(key="bulk_cancel_selected").label == "Cancel selected (0)"
    assert not at.button(key="bulk_retry_selected").disabled
    assert any("Retrying will not help" in c.value for c in at.caption)


def test_history_shows_a_request_input_in_words_not_as_a_python_dict(console_as, db):
    from psycopg.types.json import Jsonb

    (request_id,) = submit(db, "composting")
    db.execute("UPDATE inkwell.requests SET input = %s WHERE id = %s",
               (Jsonb({"topic": "composting", "business": {"business_type": "shop", "brand_voice": None}, "include_visuals": False}), request_id))
    finish(db, [request_id])
    at = open_page(console_as, request=str(request_id))
    shown = "\n".join(m.value for m in at.markdown)
    assert "Business: Business type\\: shop" in shown and "Include visuals: no" in shown
    assert "{" not in shown and "None" not in shown


def test_an_empty_overview_reads_as_empty(console_as):
    at = console_as("operator").run()
    captions = "\n".join(c.value for c in at.caption)
    assert "No request has finished in the last hour." in captions
    assert "No request has succeeded or failed in the last 24 hours yet" in captions
    assert "Over 0" not in captions
    assert not at.get("arrow_vega_lite_chart")


def test_a_request_waiting_in_a_paused_queue_says_so_on_home_and_live(console_as, db):
    from tests.integration.test_live_page import live_page
    from tests.integration.test_live_page import submit as submit_live

    submit_live(db, "held back")
    db.execute("INSERT INTO inkwell.queue_pauses (queue_name, paused_by) VALUES ('default', 'ops')")
    at = console_as("operator").run()
    assert any("Queue default paused by ops at" in w.value for w in at.warning), "Home"
    at = live_page(at)
    assert any("Queue default paused by ops at" in w.value and "once the queue is resumed" in w.value for w in at.warning), "Live"


def test_home_shows_a_blog_post_as_one_line_with_a_link_not_its_body(console_as, db):
    from psycopg.types.json import Jsonb

    (request_id,) = submit(db, "composting")
    db.execute("UPDATE inkwell.requests SET kind = 'blog_post' WHERE id = %s", (request_id,))
    finish(db, [request_id])
    db.execute("UPDATE inkwell.requests SET result = %s WHERE id = %s",
               (Jsonb({"title": "Compost in a flat", "body_markdown": "A very long body " * 200}), request_id))
    at = console_as("operator").run()
    shown = "\n".join(m.value for m in at.markdown)
    assert "Compost in a flat" in shown and "A very long body" not in shown
    [link] = [link for link in at.get("page_link") if link.label == "Open this request"]
