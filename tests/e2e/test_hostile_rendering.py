"""Hostile model output in a real browser: shown as text, no script or onerror handler runs, no
remote image is requested and no javascript: link is made.

The "remote" host is a local listener that records every connection: any image the page tried to
load from it would show up there.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from db.requests import get_request
from queue_tasks.blog_posts import BlogPostInput
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for
from tests.support.console import SLOW_VIEW_MS, make_user, sign_in_in_browser
from tests.support.llm_server import example_for_schema

pytestmark = pytest.mark.timeout(150)


class ImageHost:
    """An HTTP listener on 127.0.0.1 that records each connection and answers with a 1x1 GIF."""

    GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"

    def __init__(self) -> None:
        self.connections: list[str] = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.connections.append(conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace"))
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nConnection: close\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(self.GIF), self.GIF))
                except OSError:
                    pass

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    host = ImageHost()
    yield host
    host.close()


def hostile_text(port: int) -> str:
    return (
        f'<img src="http://127.0.0.1:{port}/onerror.png" onerror="window.pwned = 1"> '
        "<script>window.pwned = 2</script> "
        f"![pixel](http://127.0.0.1:{port}/pixel.png) "
        "[click me](javascript:window.pwned=3) "
        f"<http://127.0.0.1:{port}/autolink> :red[alarm] PWNED-MARKER"
    )


def answering_with(text: str):
    def responder(request_json: dict) -> str:
        schema = (request_json.get("response_format") or {}).get("json_schema", {}).get("schema", {})

        def poison(value):
            if isinstance(value, str):
                return text
            if isinstance(value, list):
                return [poison(v) for v in value]
            if isinstance(value, dict):
                return {k: poison(v) for k, v in value.items()}
            return value

        return json.dumps(poison(example_for_schema(schema)))

    return responder


def assert_inert(page: Page, image_host: ImageHost, text: str) -> None:
    expect(page.get_by_text("PWNED-MARKER").first).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    time.sleep(1.0)  # time for any image or handler to fire
    assert page.evaluate("window.pwned") is None, "no script or event handler from the text ran"
    sources = page.evaluate("Array.from(document.images, image => image.src)")
    assert not [src for src in sources if str(image_host.port) in src], sources
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator(f'a[href*="127.0.0.1:{image_host.port}"]').count() == 0
    assert image_host.connections == [], "the browser requested nothing from the remote host"
    assert "<script>window.pwned = 2</script>" in page.inner_text("body"), "the markup is shown as text"


def test_hostile_titles_are_shown_as_text_on_the_home_page(console, page, start_worker, llm_server, db, image_host):
    text = hostile_text(image_host.port)
    llm_server.responder = answering_with(text)
    (request_id,) = submit_requests(db, "titles", [TitlesInput(topic="composting", count=2)], requested_by="Ana")
    worker = start_worker()
    wait_for(lambda: get_request(db, request_id).status == "succeeded", timeout=40)
    worker.stop()

    page.goto(console)
    sign_in_in_browser(page, make_user(db, "operator").username)
    assert_inert(page, image_host, text)


def test_a_hostile_blog_post_is_shown_as_text_in_history(console, page, start_worker, llm_server, db, image_host):
    text = hostile_text(image_host.port)
    llm_server.responder = answering_with(text)
    (request_id,) = submit_requests(db, "blog_post", [BlogPostInput(topic="composting")], requested_by="Ana")
    worker = start_worker()
    wait_for(lambda: get_request(db, request_id).status == "succeeded", timeout=90)
    worker.stop()

    page.goto(f"{console}/History?request={request_id}")
    sign_in_in_browser(page, make_user(db, "operator").username)
    assert_inert(page, image_host, text)
