"""How many requests match, on the History page: counted after the table is drawn, once per filter
set (not again for each page), and only as far as a person needs ("more than N")."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from db.history import COUNT_LIMIT, TEXT_COUNT_LIMIT, HistoryFilter, count_limit

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "3_History.py")


def insert_finished(db, count: int, topic: str) -> None:
    db.execute(
        """
        INSERT INTO inkwell.requests (id, kind, input, status, requested_by, created_at, finished_at)
        SELECT gen_random_uuid(), 'titles', jsonb_build_object('topic', %s || ' ' || g), 'succeeded', 'ana',
               now() - make_interval(secs => g), now() - make_interval(secs => g) + interval '3 seconds'
          FROM generate_series(1, %s) AS g
        """,
        (topic, count),
    )


def pager_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Requests "))


def open_page(console_as) -> AppTest:
    return console_as(script=PAGE).run()


def test_a_text_search_is_counted_up_to_a_thousand(console_as, db):
    insert_finished(db, TEXT_COUNT_LIMIT + 5, "compost")
    at = open_page(console_as)
    at.text_input(key="history_text").input("compost").run()
    assert not at.exception
    assert pager_caption(at) == "Requests 1–50 of more than 1,000 matching, newest first. Select rows to act on them."


def test_without_a_text_search_the_count_goes_to_ten_thousand(console_as, db):
    insert_finished(db, TEXT_COUNT_LIMIT + 5, "compost")
    at = open_page(console_as)
    assert pager_caption(at) == "Requests 1–50 of 1,005 matching, newest first. Select rows to act on them."
    assert count_limit(HistoryFilter()) == COUNT_LIMIT and count_limit(HistoryFilter(text="compost")) == TEXT_COUNT_LIMIT


def test_older_pages_keep_the_count_and_refresh_counts_again(console_as, db):
    insert_finished(db, 120, "compost")
    at = open_page(console_as)
    at.button(key="history_older").click().run()
    insert_finished(db, 3, "newer")  # not in the count until the user asks for fresh figures
    assert pager_caption(at) == "Requests 51–100 of 120 matching, newest first. Select rows to act on them."
    at.button(key="history_older").click().run()
    assert pager_caption(at) == "Requests 101–120 of 120 matching, newest first. Select rows to act on them."
    at.button(key="history_refresh").click().run()
    assert pager_caption(at) == "Requests 101–120 of 123 matching, newest first. Select rows to act on them."
