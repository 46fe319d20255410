"""Submit forms after a submit: what was queued leaves the form, what was refused stays in it with
its line number, text and reason, and every count is said in the right number."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from db.requests import list_recent_requests

PAGE = "pages/1_Submit.py"


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


def topics(db) -> list[str]:
    return sorted(r.input["topic"] for r in list_recent_requests(db, limit=100))


def paste(at: AppTest, text: str) -> AppTest:
    at.text_area(key="pasted_topics").input(text)
    return at.button(key="pasted_submit").click().run()


def test_after_a_partial_success_only_the_refused_lines_stay_in_the_box_listed_with_their_text(console_as, db):
    at = console_as("editor", PAGE).run()
    at.text_input(key="pasted_audience").input("beginners")
    at = paste(at, "urban beekeeping\nab\nwinter gardening\n\nx\nsourdough basics")

    assert not at.exception
    assert "Queued 3 requests. 2 lines refused (listed below)." in texts(at.success)
    assert "2 lines refused — they are left in the box: fix them and submit again:" in texts(at.warning)
    assert at.dataframe[0].value.to_dict("records") == [
        {"Line": 2, "Text": "ab", "Reason": "topic: must be at least 3 characters (after trimming spaces)"},
        {"Line": 5, "Text": "x", "Reason": "topic: must be at least 3 characters (after trimming spaces)"},
    ]
    assert at.text_area(key="pasted_topics").value == "ab\nx"
    assert at.text_input(key="pasted_audience").value == "beginners", "the shared fields stay for the refused lines"
    assert topics(db) == ["sourdough basics", "urban beekeeping", "winter gardening"]

    # Fixed in the box and submitted again: the box empties.
    at = paste(at, "abc bees\nxyz hives")
    assert "Queued 2 requests." in texts(at.success) and not at.warning
    assert at.text_area(key="pasted_topics").value == ""
    assert len(topics(db)) == 5


def test_one_request_and_one_refused_line_are_said_in_the_singular(console_as, db):
    at = paste(console_as("editor", PAGE).run(), "urban beekeeping\nab")
    assert "Queued 1 request. 1 line refused (listed below)." in texts(at.success)
    assert "1 line refused — it is left in the box: fix it and submit again:" in texts(at.warning)

    at = paste(at, "ab")
    assert "Nothing was queued: the one line was refused." in texts(at.error)
    assert at.text_area(key="pasted_topics").value == "ab", "nothing queued: the box keeps everything"


def test_a_refused_csv_row_is_listed_with_its_text(console_as, db):
    at = console_as("editor", PAGE).run()
    at.file_uploader(key="csv_file").set_value(("t.csv", b"topic;count\nurban beekeeping;3\nwinter gardening;99\n", "text/csv"))
    at.button(key="csv_submit").click().run()
    assert "Queued 1 request. 1 line refused (listed below)." in texts(at.success)
    assert "1 line refused — fix it and submit it again:" in texts(at.warning)
    assert at.dataframe[0].value.to_dict("records")[0]["Text"] == "winter gardening;99"


def test_the_one_topic_form_clears_after_a_submit_and_keeps_a_refused_topic(console_as, db):
    at = console_as("editor", PAGE).run()
    at.text_area(key="one_topic").input("ab")
    at.text_input(key="one_audience").input("renters")
    at.button(key="one_submit").click().run()
    assert at.text_area(key="one_topic").value == "ab", "refused: the form keeps what was typed"

    at.text_area(key="one_topic").input("composting in small apartments")
    at.button(key="one_submit").click().run()
    assert "Queued 1 request." in texts(at.success)
    assert (at.text_area(key="one_topic").value, at.text_input(key="one_audience").value) == ("", "")
    assert topics(db) == ["composting in small apartments"]


def test_the_blog_post_form_clears_its_text_after_a_submit_and_keeps_its_options(console_as, db):
    at = console_as("editor", PAGE).run()
    at.selectbox(key="submit_kind").select("blog_post").run()
    at.text_input(key="blog_topic").input("composting in small apartments")
    at.text_input(key="blog_organization").input("Green Corner")
    at.checkbox(key="blog_visuals").check()
    at.button(key="blog_submit").click().run()

    assert not at.exception
    assert "Queued 1 request." in texts(at.success)
    assert (at.text_input(key="blog_topic").value, at.text_input(key="blog_organization").value) == ("", "")
    assert at.checkbox(key="blog_visuals").value is True
    assert topics(db) == ["composting in small apartments"]


def test_homes_titles_form_clears_after_a_submit(console_as, db):
    at = console_as("editor").run()
    at.text_area(key="home_topic").input("composting in small apartments")
    at.text_input(key="home_tone").input("friendly")
    at.button(key="FormSubmitter:titles_form-Request titles").click().run()
    assert not at.exception
    assert any("Queued: titles for “composting in small apartments”" in s.value for s in at.success)
    assert (at.text_area(key="home_topic").value, at.text_input(key="home_tone").value) == ("", "")
    assert topics(db) == ["composting in small apartments"]
