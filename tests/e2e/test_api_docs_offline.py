"""The HTTP API's interactive docs page (linked from the console's sidebar) works on an install with
no internet: Swagger UI's files come from the API server itself, and the page asks no other host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, expect

from tests.api.conftest import ApiServer, start_api_server
from tests.e2e.conftest import SCREENSHOTS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def api(inkwell_env: dict[str, str], tmp_path: Path) -> Iterator[ApiServer]:
    server = start_api_server(inkwell_env, tmp_path / "api.log")
    yield server
    server.stop()


def test_the_api_docs_page_loads_its_files_from_the_api_and_asks_no_other_host(api, browser: Browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    try:
        page.goto(f"{api.base_url}/api/docs")
        expect(page.get_by_role("heading", name="Inkwell API")).to_be_visible(timeout=20_000)
        expect(page.get_by_text("/api/v1/jobs/{jobId}/status").first).to_be_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "api_docs.png")
    finally:
        context.close()

    own = urlsplit(api.base_url).netloc
    elsewhere = [url for url in asked if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != own]
    assert elsewhere == []
    assert any(url.endswith("/api/docs-assets/swagger-ui-bundle.js") for url in asked), asked
