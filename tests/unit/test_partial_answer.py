"""A streaming JSON answer read as the document it is becoming."""

from __future__ import annotations

from console_kinds.partial import document_so_far, strings_in


def test_titles_so_far_are_the_complete_ones_and_the_one_being_written():
    assert document_so_far('{"titles": ["How to Get Started", "Compost in a Fl') == {
        "titles": ["How to Get Started", "Compost in a Fl"]
    }
    assert document_so_far('{"titles": ["How to Get Started", ') == {"titles": ["How to Get Started"]}
    assert document_so_far('{"tit') == {}


def test_a_section_being_written_has_its_heading_and_text_so_far():
    assert document_so_far('{"heading": "Why compost", "body": "Because kitchen scraps are') == {
        "heading": "Why compost", "body": "Because kitchen scraps are"
    }


def test_an_escape_cut_in_half_and_an_unfinished_number_are_left_out():
    assert document_so_far('{"count": 1') == {"count": 1}
    assert document_so_far('{"body": "a \\') == {"body": "a "}
    assert document_so_far('{"done": tr') == {}


def test_a_tail_from_the_middle_is_not_a_document_but_its_strings_are_text():
    tail = 'and soil.", "key_points": ["Use a lid", "Add browns"]}'
    assert document_so_far(tail) is None
    assert strings_in(tail) == ["and soil.", "Use a lid", "Add browns"]
    assert strings_in('"body": "Kitchen scraps"') == ["Kitchen scraps"]
