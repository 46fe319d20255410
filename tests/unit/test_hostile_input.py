"""Hostile input, the rules without I/O: invisible and control characters, caps on what a refusal
message and model output may hold, CSV and site-definition shapes that must be refused quickly,
and URLs no fetch should start from. (End to end, through the console, the database and real
workers: tests/integration/test_hostile_input.py.)"""

from __future__ import annotations

import json
import time

import pydantic
import pytest

from queue_tasks.bulk_input import BulkInputRefused, parse_titles_csv
from queue_tasks.errors import PermanentJobError
from queue_tasks.models import MAX_TITLE_CHARS, TitleList, TitlesInput, cut_block, cut_text, describe_validation_error
from queue_tasks.site_build import SiteDefinitionError, SiteSectionContent, parse_site_definition, site_definition_from
from queue_tasks.url_safety import split_url
from queue_tasks.website_analysis import WebsiteAnalysisInput


def topic_refusal(topic: str) -> str:
    with pytest.raises(pydantic.ValidationError) as refused:
        TitlesInput(topic=topic)
    return describe_validation_error(refused.value)


# --- Topics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    ["\u200d\u200c\u200d", "\u3164\u3164\u3164", "\u2800\u2800\u2800", "a\u0301\u0301\u0301", "ab\u200d\u200d"],
    ids=["joiners", "hangul-fillers", "braille-blanks", "combining-marks", "two-letters-and-joiners"],
)
def test_a_topic_of_fewer_than_three_visible_characters_is_refused_saying_so(topic):
    assert topic_refusal(topic) == (
        "topic: must have at least 3 visible characters (spaces and invisible characters do not count)"
    )


@pytest.mark.parametrize(
    "typed, kept",
    [
        ("com\u200bpost\u2060ing \ufefftips", "composting tips"),         # zero-width space, word joiner, BOM
        ("invoice \u202egnp.exe\u202c", "invoice gnp.exe"),               # right-to-left override
        ("\u2066isolated\u2069 text \u202a\u202b\u202d", "isolated text"),  # isolates and embeddings
        ("tab\x85next\x9bline", "tabnextline"),                           # C1 control characters
        ("line\u2028separator", "line separator"),
        ("שלום \u200fעולם", "שלום \u200fעולם"),                           # right-to-left text and its mark kept
        ("👩\u200d💻 coding", "👩\u200d💻 coding"),                          # emoji joiner kept
        ("क्षत्रिय इतिहास", "क्षत्रिय इतिहास"),                                # combining marks of a script kept
    ],
)
def test_invisible_and_reordering_characters_are_removed_and_real_text_is_kept(typed, kept):
    assert TitlesInput(topic=typed).topic == kept


def test_a_refusal_lists_at_most_ten_problems_and_counts_the_rest():
    errors = [{"path": f"/p{i}", "sections": []} for i in range(150)]
    with pytest.raises(SiteDefinitionError) as refused:
        site_definition_from({"site": "Acme", "business": {"business_type": "bakery"}, "routes": errors})
    message = str(refused.value)
    assert message.count("routes.") == 10 and message.endswith("; and 140 more problems")
    assert len(message) < 1_500


def test_a_value_error_of_our_own_is_shown_without_pydantics_prefix():
    with pytest.raises(pydantic.ValidationError) as refused:
        WebsiteAnalysisInput(url="gopher://example.com/")
    assert describe_validation_error(refused.value) == "url: Only http and https URLs can be fetched, not gopher:."


# --- Model output ------------------------------------------------------------------------------------


def test_titles_from_the_model_are_cut_cleaned_and_at_most_twenty():
    answer = TitleList(titles=["  A\x00 title\u202e  with\nbreaks ", "", "x" * 10_000] + ["more"] * 40)
    assert answer.titles[0] == "A title with breaks"
    assert len(answer.titles[1]) == MAX_TITLE_CHARS and answer.titles[1].endswith("…")
    assert len(answer.titles) == 20


def test_a_site_section_from_the_model_is_capped_and_keeps_its_line_breaks():
    content = SiteSectionContent(
        headline="H\x00" * 500, body="line one\nline\x00 two\n" * 1_000, items=[{"title": "t", "text": "x" * 5_000}] * 50
    )
    assert len(content.headline) <= 200 and "\x00" not in content.headline
    assert content.body.startswith("line one\nline two\n") and len(content.body) <= 4_000
    assert len(content.items) == 12 and all(len(item.text) <= 1_000 for item in content.items)


def test_cut_text_and_cut_block_remove_what_postgresql_cannot_store():
    assert cut_text("a\x00b\x01 c", 10) == "ab c"
    assert cut_block("a\x00b\n\tc\u200b", 10) == "ab\n\tc"


# --- CSV ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [b"topic|audience", b"topic audience", b"Topic:Audience"])
def test_a_csv_with_an_unknown_delimiter_is_refused_saying_which_ones_work(header):
    with pytest.raises(BulkInputRefused, match="Separate the cells with commas, semicolons or tabs"):
        parse_titles_csv(header + b"\ncomposting|renters\n")


def test_a_csv_cell_over_the_field_limit_is_refused_naming_the_line_and_a_likely_unclosed_quote():
    with pytest.raises(BulkInputRefused, match=r"Line 3 has a cell longer than 131,072 characters.*never closed"):
        parse_titles_csv(b'topic\ncomposting\n"never closed\n' + b"x" * 140_000)


def test_a_100_kb_topic_in_a_csv_is_refused_on_its_line():
    batch = parse_titles_csv(b"topic\ncomposting at home\n" + b"x" * 100_000 + b"\n")
    assert [(r.line, r.reason) for r in batch.refused] == [(3, "topic: must be at most 500 characters")]


# --- Site definitions ----------------------------------------------------------------------------------


def test_thirty_thousand_routes_in_yaml_are_refused_before_they_are_parsed():
    text = "site: Acme\nbusiness: {business_type: bakery}\nroutes:\n" + "".join(f"- {{path: /{i}}}\n" for i in range(30_000))
    started = time.monotonic()
    with pytest.raises(SiteDefinitionError, match=r"more than 200 routes; a build may have at most 200 sections"):
        parse_site_definition(text, filename="routes.yaml")
    assert time.monotonic() - started < 0.5


def test_a_json_list_of_100000_routes_is_refused_before_validation():
    text = json.dumps({"site": "Acme", "business": {"business_type": "bakery"}, "routes": [1] * 100_000})
    started = time.monotonic()
    with pytest.raises(SiteDefinitionError, match=r"has 100,000 routes"):
        parse_site_definition(text, filename="routes.json")
    assert time.monotonic() - started < 1.0


def test_a_mapping_with_thousands_of_keys_is_refused_naming_its_line():
    text = "site: Acme\njunk:\n" + "".join(f"  k{i}: v\n" for i in range(40_000))
    started = time.monotonic()
    with pytest.raises(SiteDefinitionError, match=r"more than 20 keys \(line 23\)"):
        parse_site_definition(text, filename="junk.yaml")
    assert time.monotonic() - started < 0.5


def test_control_characters_in_a_section_brief_are_removed():
    site = site_definition_from({"site": "Acme", "business": {"business_type": "bakery"},
                                 "routes": [{"path": "/", "sections": [{"template": "hero", "brief": "fresh\x00 \u202ebread"}]}]})
    assert site.routes[0].sections[0].brief == "fresh bread"


# --- URLs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://example.com/\x00", "http://example.com/a\r\nHost: evil", "http://exa\u200bmple.com/", "http://exa mple.com/",
     "http://example.com/\u202egpj.exe"],
    ids=["NUL", "CRLF", "zero-width", "space", "direction-override"],
)
def test_a_url_with_a_control_space_or_invisible_character_is_refused_naming_its_position(url):
    with pytest.raises(pydantic.ValidationError) as refused:
        WebsiteAnalysisInput(url=url)
    assert "The URL has a space, control or invisible character at position" in describe_validation_error(refused.value)


@pytest.mark.parametrize("url", ["http://a..b/", "http://-/", "http://exa%00mple.com/", "http://<script>/"])
def test_a_host_that_is_no_domain_name_is_refused_as_invalid(url):
    with pytest.raises(PermanentJobError) as refused:
        split_url(url)
    assert refused.value.code == "url_invalid"


@pytest.mark.parametrize("url", ["https://bücher.example/", "http://my_host.intranet/", "http://[::1]:8080/", "http://127.1/"])
def test_real_host_names_and_address_forms_still_parse(url):
    assert split_url(url)[0] in ("http", "https")


# --- Showing model output ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["see https://evil.example/x", "HTTP://EVIL.EXAMPLE", "www.evil.example", "mail bob@evil.example"])
def test_model_output_shown_as_text_has_no_url_a_browser_would_make_a_link_of(text):
    from console_kinds.plain_text import WORD_JOINER, as_text

    shown = as_text(text)
    assert WORD_JOINER in shown
    assert shown.replace(WORD_JOINER, "").replace("\\", "") == text, "it reads the same"


def test_words_that_only_look_like_schemes_are_left_alone():
    from console_kinds.plain_text import unlinked

    assert unlinked("httpd: the daemon; shttp: no; awww. cute; a @ sign") == "httpd: the daemon; shttp: no; awww. cute; a @ sign"
