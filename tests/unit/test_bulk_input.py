"""Bulk input: pasted topics and CSV uploads become valid requests and refused lines with line numbers."""

from __future__ import annotations

import pytest

from queue_tasks.bulk_input import (
    MAX_BULK_ROWS,
    BulkInputRefused,
    RefusedLine,
    parse_pasted_topics,
    parse_titles_csv,
)
from queue_tasks.models import TitlesInput


def paste(text: str):
    return parse_pasted_topics(text, audience="city renters", tone=None, count=3)


def test_pasted_lines_become_one_request_each_with_the_shared_fields_and_blank_lines_skipped():
    batch = paste("composting at home\n\n  \nurban beekeeping\r\nwinter gardening\n")
    assert batch.requests == [
        TitlesInput(topic=topic, audience="city renters", count=3)
        for topic in ("composting at home", "urban beekeeping", "winter gardening")
    ]
    assert batch.refused == []


def test_a_too_short_pasted_topic_on_line_3_is_reported_as_line_3():
    batch = paste("composting at home\nurban beekeeping\nab\nwinter gardening")
    assert [r.topic for r in batch.requests] == ["composting at home", "urban beekeeping", "winter gardening"]
    assert batch.refused == [RefusedLine(3, "topic: must be at least 3 characters (after trimming spaces)", "ab")]


def test_refused_pasted_lines_keep_their_text_to_go_back_in_the_box():
    batch = paste("composting at home\n  ab \nurban beekeeping\nx\n")
    assert [(r.line, r.text) for r in batch.refused] == [(2, "  ab "), (4, "x")]
    assert batch.refused_text == "  ab \nx"


def test_line_numbers_of_pasted_topics_count_the_blank_lines_the_user_sees():
    batch = paste("\ncomposting at home\n\nx\n")
    assert [r.line for r in batch.refused] == [4]


def test_pasting_nothing_but_blank_lines_is_refused_with_a_message():
    with pytest.raises(BulkInputRefused, match="No topics found"):
        paste("\n  \n\n")


def test_csv_with_a_byte_order_mark_reads_the_topic_column():
    batch = parse_titles_csv("\ufefftopic,audience\ncomposting at home,city renters\n".encode())
    assert batch.requests == [TitlesInput(topic="composting at home", audience="city renters")]


def test_csv_separated_by_semicolons_is_read_by_its_header():
    data = "Topic;Tone;Count\ncomposting, at home;friendly;7\nurban beekeeping;;\n".encode()
    batch = parse_titles_csv(data)
    assert batch.requests == [
        TitlesInput(topic="composting, at home", tone="friendly", count=7),
        TitlesInput(topic="urban beekeeping"),
    ]


def test_csv_separated_by_tabs_is_read_by_its_header():
    batch = parse_titles_csv(b"audience\ttopic\ncity renters\tcomposting at home\n")
    assert batch.requests == [TitlesInput(topic="composting at home", audience="city renters")]


def test_csv_without_a_topic_column_is_refused_with_a_clear_message():
    with pytest.raises(BulkInputRefused, match="header row naming a “topic” column.*found “subject,audience”"):
        parse_titles_csv(b"subject,audience\ncomposting at home,city renters\n")


def test_csv_with_an_unknown_column_is_refused_naming_it():
    with pytest.raises(BulkInputRefused, match="Unknown column 'audiance'"):
        parse_titles_csv(b"topic,audiance\ncomposting at home,city renters\n")


def test_count_out_of_range_is_reported_on_its_line():
    batch = parse_titles_csv(b"topic,count\ncomposting at home,5\nurban beekeeping,21\nwinter gardening,many\n")
    assert [r.topic for r in batch.requests] == ["composting at home"]
    assert [(r.line, r.reason) for r in batch.refused] == [
        (3, "count: must be at most 20"),
        (4, "count: must be a whole number"),
    ]


def test_a_row_with_more_cells_than_the_header_is_refused_on_its_line():
    batch = parse_titles_csv(b"topic,audience\ncomposting, at home, city renters\n")
    assert batch.refused == [
        RefusedLine(2, "has 3 cells but the header names 2 columns (a topic with a comma needs quotes)",
                    "composting, at home, city renters")
    ]


def test_a_quoted_topic_spanning_two_lines_moves_the_next_rows_line_number_on():
    batch = parse_titles_csv(b'topic\n"composting\nat home"\nab\n')
    assert batch.refused == [RefusedLine(4, "topic: must be at least 3 characters (after trimming spaces)", "ab")]


def test_binary_content_is_refused():
    with pytest.raises(BulkInputRefused, match="not text"):
        parse_titles_csv(b"PK\x03\x04\x14\x00\x06\x00topic\x00")


def test_text_that_is_not_utf8_is_refused_naming_the_line():
    with pytest.raises(BulkInputRefused, match=r"not UTF-8 text \(line 2 has byte 0xe9\)"):
        parse_titles_csv("topic\ncaf\u00e9 culture\n".encode("latin-1"))


def test_utf16_text_is_refused_with_how_to_save_it():
    with pytest.raises(BulkInputRefused, match="UTF-16.*CSV UTF-8"):
        parse_titles_csv("topic\ncomposting at home\n".encode("utf-16"))


def test_more_rows_than_the_cap_are_refused():
    data = ("topic\n" + "composting at home\n" * (MAX_BULK_ROWS + 1)).encode()
    with pytest.raises(BulkInputRefused, match="More than 10,000 rows"):
        parse_titles_csv(data)


def test_exactly_the_cap_is_accepted():
    batch = paste("composting at home\n" * MAX_BULK_ROWS)
    assert len(batch.requests) == MAX_BULK_ROWS


def test_a_header_with_no_rows_is_refused():
    with pytest.raises(BulkInputRefused, match="no rows"):
        parse_titles_csv(b"topic,audience\n\n")


def test_a_200_line_csv_with_3_bad_lines_reports_exactly_those_line_numbers():
    rows = [f"topic number {i},readers,{(i % 20) + 1}" for i in range(199)]
    rows[10] = "ab,readers,5"  # line 12: topic too short
    rows[99] = "topic number 99,readers,0"  # line 101: count below 1
    rows[150] = ",readers,5"  # line 152: no topic
    data = ("topic,audience,count\n" + "\n".join(rows) + "\n").encode()

    batch = parse_titles_csv(data)

    assert [r.line for r in batch.refused] == [12, 101, 152]
    assert len(batch.requests) == 196
