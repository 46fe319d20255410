"""Website analysis end to end: a real worker fetches pages from a local test website (stdlib HTTP
server on 127.0.0.1), and every URL failure ends with a named code, retried only when transient.

A second server on 127.0.0.2 stands for an address that must never be contacted: the tests that
point at it, directly or by a redirect, prove it received no request at all.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from db.requests import get_request
from queue_tasks.errors import JobError
from queue_tasks.submit import submit_requests
from queue_tasks.url_safety import AddressPolicy, fetch_html
from queue_tasks.website_analysis import WebsiteAnalysisInput
from tests.conftest import wait_for
from tests.support.console import make_user, signed_in_app

pytestmark = pytest.mark.timeout(120)

PAGE = """<!doctype html><html><head><title>Green Corner | Plants for small spaces</title>
<meta name="description" content="Herbs, seeds and compost kits for city flats.">
<style>.hero { color: green }</style><script>var trackingSecret = "do-not-send";</script></head>
<body><nav>Home | Shop | Cart</nav>
<main><h1>Grow more in less space</h1>
<p>We help city renters grow herbs and vegetables on balconies and windowsills.</p>
<h2>Compost kits</h2><p>Our bokashi compost kits fit under the sink.</p>
<h2>Seed subscriptions</h2><p>Seasonal seeds, delivered every month.</p></main>
<footer>Copyright Green Corner, 1 Garden Lane</footer></body></html>"""

ALLOW_PRIVATE = {"INKWELL_ALLOW_PRIVATE_URLS": "true"}
QUICK = {"INKWELL_MAX_ATTEMPTS": "2", "INKWELL_URL_TIMEOUT_SECONDS": "2", "INKWELL_URL_MAX_BYTES": "200000"}
OFFLINE = {"INKWELL_LLM_BASE_URL": "", "INKWELL_LLM_API_KEY": "", "INKWELL_OFFLINE_MODEL_SECONDS": "0.1"}


class LocalSite:
    """A small website: each path is one behaviour a real site can have."""

    def __init__(self, host: str):
        self.paths: list[str] = []
        self.hosts: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                site.paths.append(self.path)
                site.hosts.append(self.headers.get("Host", ""))
                route = getattr(site, "route_" + self.path.strip("/").replace("-", "_").split("?")[0] or "route_index", None)
                if route is None:
                    self.send_error(404)
                    return
                route(self)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.redirect_target = ""
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _send(handler, status: int, content_type: str, body: bytes, extra: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def route_page(self, handler) -> None:
        self._send(handler, 200, "text/html; charset=utf-8", PAGE.encode())

    def route_moved(self, handler) -> None:
        self._send(handler, 301, "text/html", b"", {"Location": "/page"})

    def route_data(self, handler) -> None:
        self._send(handler, 200, "application/json", json.dumps({"plants": ["basil"]}).encode())

    def route_huge(self, handler) -> None:
        # No Content-Length: the size is only found out by reading, which must stop at the cap.
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            for _ in range(100):  # 10 MB if nobody stops reading
                handler.wfile.write(b"<p>" + b"x" * 100_000 + b"</p>")
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    def route_drip(self, handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):  # one byte every 0.2 s: the whole page would take 200 s
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route_loop(self, handler) -> None:
        self._send(handler, 302, "text/html", b"", {"Location": "/loop"})

    def route_to_private(self, handler) -> None:
        self._send(handler, 302, "text/html", b"", {"Location": self.redirect_target})

    def route_secret(self, handler) -> None:
        self._send(handler, 200, "text/html", b"<p>internal admin page</p>")


@pytest.fixture
def site() -> Iterator[LocalSite]:
    server = LocalSite("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def internal_site() -> Iterator[LocalSite]:
    """A loopback address other than the test site's own: with private URLs off it must stay untouched."""
    server = LocalSite("127.0.0.2")
    yield server
    server.close()


def submit(db: psycopg.Connection, url: str) -> uuid.UUID:
    return submit_requests(db, "website_analysis", [WebsiteAnalysisInput(url=url)], requested_by="ana")[0]


def finished(db: psycopg.Connection, request_id, timeout: float = 40.0):
    return wait_for(
        lambda: (r := get_request(db, request_id)) and r.is_finished and r, timeout=timeout,
        message=f"request {request_id} to finish",
    )


def test_a_page_is_fetched_its_readable_text_analysed_and_the_profile_stored(db, start_worker, llm_server, site):
    request_id = submit(db, site.base + "/moved")
    start_worker(extra_env={**ALLOW_PRIVATE, **QUICK})
    request = finished(db, request_id)

    assert request.status == "succeeded", request.error_message
    result = request.result
    assert result["final_url"] == site.base + "/page"
    assert result["page_title"] == "Green Corner | Plants for small spaces"
    assert len(result["suggested_post_topics"]) == 5
    assert all(result[key] for key in ("business_type", "target_audience", "tone_of_voice", "key_products_or_services"))
    assert site.paths == ["/moved", "/page"]
    prompt = json.dumps(llm_server.chat_requests[0].body)
    assert "We help city renters grow herbs" in prompt and "Compost kits | Seed subscriptions" in prompt
    assert "trackingSecret" not in prompt and "Home | Shop | Cart" not in prompt and "1 Garden Lane" not in prompt


def test_offline_model_describes_the_business_from_the_page(db, start_worker, site):
    request_id = submit(db, site.base + "/page")
    start_worker(extra_env={**ALLOW_PRIVATE, **QUICK, **OFFLINE})
    request = finished(db, request_id)

    assert request.status == "succeeded", request.error_message
    result = request.result
    assert result["business_type"] == "garden shop"
    assert "Compost kits" in result["key_products_or_services"]
    assert len(set(result["suggested_post_topics"])) == 5
    assert any("Green Corner" in topic for topic in result["suggested_post_topics"])


@pytest.mark.parametrize(
    "path, code, words",
    [
        ("/data", "url_not_html", "application/json, not an HTML page"),
        ("/huge", "url_too_large", "too large"),
    ],
)
def test_permanent_page_problems_fail_at_once_with_a_named_code(db, start_worker, site, path, code, words):
    request_id = submit(db, site.base + path)
    start_worker(extra_env={**ALLOW_PRIVATE, **QUICK})
    request = finished(db, request_id)

    assert (request.status, request.error_code, request.attempts) == ("failed", code, 1)
    assert words in request.error_message
    assert site.paths == [path]


def test_a_page_still_dripping_in_at_the_time_out_fails_as_url_timeout_after_a_retry(db, start_worker, site):
    request_id = submit(db, site.base + "/drip")
    started = time.monotonic()
    start_worker(extra_env={**ALLOW_PRIVATE, **QUICK})
    request = finished(db, request_id, timeout=60)

    assert (request.status, request.error_code, request.attempts) == ("failed", "url_timeout", 2)
    assert "within 2 s" in request.error_message
    assert time.monotonic() - started < 30, "the total time-out stops the slow body, not a per-read one"


def test_an_unreachable_site_fails_as_url_unreachable_after_a_retry(db, start_worker):
    request_id = submit(db, "http://127.0.0.1:9/")  # the discard port: nothing listens there
    start_worker(extra_env={**ALLOW_PRIVATE, **QUICK})
    request = finished(db, request_id)

    assert (request.status, request.error_code, request.attempts) == ("failed", "url_unreachable", 2)
    assert "could not be reached" in request.error_message


def test_a_private_address_is_refused_without_any_request_when_the_setting_is_off(db, start_worker, internal_site):
    request_id = submit(db, internal_site.base + "/secret")
    start_worker(extra_env=QUICK)
    request = finished(db, request_id)

    assert (request.status, request.error_code, request.attempts) == ("failed", "url_refused", 1)
    assert "loopback" in request.error_message and "INKWELL_ALLOW_PRIVATE_URLS" in request.error_message
    assert internal_site.paths == []


def test_a_redirect_to_a_refused_address_is_not_followed(db, start_worker, site, internal_site):
    site.redirect_target = internal_site.base + "/secret"
    request_id = submit(db, site.base + "/to-private")
    # Private URLs off; only the test site's own address is let through, as an operator would
    # allow one intranet host.
    start_worker(extra_env={**QUICK, "INKWELL_URL_ALLOWED_NETWORKS": "127.0.0.1/32"})
    request = finished(db, request_id)

    assert (request.status, request.error_code, request.attempts) == ("failed", "url_refused", 1)
    assert "127.0.0.2" in request.error_message
    assert site.paths == ["/to-private"]
    assert internal_site.paths == [], "no request may reach the refused address"


def test_write_a_blog_post_from_an_analysis_queues_it_with_the_business_info(db, start_worker, site, console_env):
    request_id = submit(db, site.base + "/page")
    worker = start_worker(extra_env={**ALLOW_PRIVATE, **QUICK, **OFFLINE})
    analysis = finished(db, request_id)
    assert analysis.status == "succeeded", worker.log
    worker.stop()

    operator = make_user(db, "operator", display_name="Bo")
    at = signed_in_app(operator, "pages/3_History.py")
    at.query_params["request"] = str(request_id)
    at.run()
    assert not at.exception
    topic = at.selectbox(key=f"analysis_topic_{request_id}").value
    at.button(key=f"analysis_write_{request_id}").click().run()
    assert not at.exception

    rows = db.execute("SELECT input, requested_by, user_id FROM inkwell.requests WHERE kind = 'blog_post'").fetchall()
    assert len(rows) == 1
    data, requester, user_id = rows[0]
    assert data["topic"] == topic
    assert data["business"] == {
        "business_type": analysis.result["business_type"],
        "target_audience": analysis.result["target_audience"],
        "brand_voice": analysis.result["tone_of_voice"],
    }
    assert data["organization"] == "Green Corner"
    assert (requester, user_id) == ("Bo", operator.id), "queued as the signed-in user"


def test_submit_page_queues_an_analysis_and_refuses_a_non_web_url(console_as, db):
    at = console_as("editor", "pages/1_Submit.py").run()
    at.selectbox(key="submit_kind").select("website_analysis").run()
    at.text_input(key="analysis_url").input("file:///etc/passwd")
    at.button(key="analysis_submit").click().run()
    assert "Only http and https URLs can be fetched" in "\n".join(e.value for e in at.error)

    at.text_input(key="analysis_url").input("greencorner.example/about")
    at.button(key="analysis_submit").click().run()
    assert not at.exception
    (stored,) = db.execute("SELECT input FROM inkwell.requests WHERE kind = 'website_analysis'").fetchone()
    assert stored["url"] == "https://greencorner.example/about"


def test_a_host_name_is_fetched_from_its_checked_address_with_its_host_header_kept(site):
    port = site.server.server_address[1]
    page = asyncio.run(fetch_html(f"http://localhost:{port}/page", policy=AddressPolicy(allow_private=True),
                                  max_bytes=100_000, timeout_seconds=5))
    assert page.url == f"http://localhost:{port}/page" and "Grow more in less space" in page.html
    assert site.hosts == [f"localhost:{port}"]
    with pytest.raises(JobError) as refused:
        asyncio.run(fetch_html(f"http://localhost:{port}/page", policy=AddressPolicy(), max_bytes=100_000, timeout_seconds=5))
    assert refused.value.code == "url_refused" and "Refused to fetch localhost (" in refused.value.message
    assert len(site.paths) == 1, "the refused fetch sent nothing"


def test_more_than_five_redirects_are_not_followed(site):
    with pytest.raises(JobError) as refused:
        asyncio.run(fetch_html(site.base + "/loop", policy=AddressPolicy(allow_private=True), max_bytes=100_000, timeout_seconds=5))
    assert refused.value.code == "url_too_many_redirects"
    assert site.paths == ["/loop"] * 6, "the first request and 5 redirects, then it stops"
