"""The site build forms on the Submit page: one size cap, stated where the file is chosen and the
same the validator enforces; "Use this example" fills the form with the example definition."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from db import sites
from inkwell_settings import get_settings

PAGE = "pages/1_Submit.py"


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


def site_build_forms(console_as) -> AppTest:
    at = console_as("editor", PAGE).run()
    at.selectbox(key="submit_kind").select("site_section").run()
    assert not at.exception, at.exception
    return at


def test_both_forms_state_one_size_cap_and_the_uploader_and_the_validator_hold_to_it(console_as, db):
    at = site_build_forms(console_as)
    cap = f"At most 1 MB and {get_settings().max_site_sections:,} sections"
    assert sum(cap in c.value for c in at.caption) == 2, [c.value for c in at.caption]
    [uploader] = at.get("file_uploader")
    assert uploader.proto.max_upload_size_mb == 1

    at.file_uploader(key="site_file").set_value(("big.yaml", b"#" * 1_000_001, "application/yaml"))
    at.button(key="site_upload_submit").click().run()
    assert "larger than 1 MB \\(1,000,001 bytes; at most 1,000,000\\)" in texts(at.error)
    assert sites.list_batches(db) == []


def test_use_this_example_fills_the_form_and_builds_the_example_site(console_as, db):
    at = site_build_forms(console_as)
    at.button(key="site_form_example").click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="site_form_name").value == "Acme Bakery"
    assert (at.text_input(key="form_business_type").value, at.text_input(key="form_audience").value,
            at.text_input(key="form_voice").value) == ("neighbourhood bakery", "young families", "warm and playful")
    rows = at.dataframe[0].value
    assert rows[["route", "template"]].values.tolist() == [
        ["/", "hero"], ["/", "features"], ["/pricing", "pricing"], ["/pricing", "faq"]
    ]

    at.button(key="site_form_submit").click().run()
    assert not at.exception, at.exception
    assert "Queued 4 sections." in texts(at.success)
    [batch] = sites.list_batches(db)
    assert (batch.site_name, batch.total) == ("Acme Bakery", 4)
    assert (at.text_input(key="site_form_name").value, at.text_input(key="form_business_type").value) == ("", ""), \
        "queued: the form empties"
    assert at.dataframe[0].value[["route", "template"]].values.tolist() == [["/", "hero"]]


def test_a_refused_form_build_keeps_what_was_typed(console_as, db):
    at = site_build_forms(console_as)
    at.text_input(key="site_form_name").input("Acme Bakery")
    at.button(key="site_form_submit").click().run()
    assert "must be at least 2 characters" in texts(at.error)
    assert at.text_input(key="site_form_name").value == "Acme Bakery"
