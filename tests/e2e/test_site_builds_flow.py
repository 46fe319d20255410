"""A site build in a real browser: upload a YAML definition, watch partial success, retry the failed section."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_console_flows import sign_in
from tests.support.llm_server import GARBAGE_CONTENT, default_responder, first_user_text

pytestmark = pytest.mark.timeout(120)

DEFINITION = """site: Acme Bakery
business:
  business_type: neighbourhood bakery
  target_audience: young families
  brand_voice: warm
routes:
  - path: /
    sections:
      - template: hero
      - template: features
  - path: /pricing
    sections:
      - template: pricing
"""


def test_an_uploaded_build_reports_partial_success_and_retrying_the_failed_section_completes_it(
    console, page: Page, start_worker, llm_server, db
):
    llm_server.responder = lambda body: (
        GARBAGE_CONTENT if "Page route: /pricing\n" in first_user_text(body) else default_responder(body)
    )
    start_worker(concurrency=4)

    page.goto(f"{console}/Submit")
    sign_in(page, db, "editor")
    page.get_by_test_id("stSelectbox").filter(has_text="Kind of request").click()
    page.get_by_role("option", name="Site build").click()
    expect(page.get_by_role("tab", name="Upload a definition")).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": "acme.yaml", "mimeType": "application/yaml", "buffer": DEFINITION.encode()}]
    )
    expect(page.get_by_test_id("stFileUploader")).to_contain_text("acme.yaml")
    page.get_by_role("button", name="Build the site").first.click()
    expect(page.get_by_text("Queued 3 sections.")).to_be_visible()

    page.get_by_role("link", name="Watch the build on the Site builds page").click()
    expect(page.get_by_role("heading", name="Site builds", exact=True)).to_be_visible()
    expect(page.get_by_text("Partial success: 2 of 3 sections succeeded")).to_be_visible(timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "site_build_partial_success.png", full_page=True)

    llm_server.responder = default_responder
    page.get_by_role("button", name="Retry failed sections").click()
    # The build's own badge: "succeeded", not "partially succeeded".
    expect(page.locator(".stMarkdownBadge", has_text=re.compile(r"(?<!partially )succeeded$"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text("3 of 3 sections finished")).to_be_visible()
    expect(page.get_by_text("Partial success")).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "site_build_retried.png", full_page=True)
