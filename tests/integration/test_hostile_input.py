"""Hostile input through the real paths: the Submit page (AppTest, signed in), the database, real
workers, the local model server and local listeners standing for remote sites.

For each input: the message names the problem, nothing is half-written (no request, job or batch
row after a refusal), text is stored and shown as plain text, and no connection ever reaches a
refused address. Pure parsing rules are in tests/unit/test_hostile_input.py. Huge, slow-drip and
non-HTML pages are proven in test_website_analysis.py; address forms and redirects, proven there by
what the HTTP servers saw, are proven here again by a listener that records every TCP connection.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from console_kinds.plain_text import as_text
from console_ui import escape_markdown
from db.requests import get_request
from queue_tasks.blog_posts import BlogPostInput
from queue_tasks.errors import JobError
from queue_tasks.models import MAX_TITLE_CHARS, TitlesInput
from queue_tasks.site_build import site_definition_from, submit_site_build
from queue_tasks.submit import submit_requests
from queue_tasks.url_safety import AddressPolicy, fetch_html
from queue_tasks.website_analysis import WebsiteAnalysisInput
from tests.conftest import wait_for
from tests.integration.test_website_analysis import ALLOW_PRIVATE, PAGE, QUICK, LocalSite
from tests.support.llm_server import example_for_schema

pytestmark = pytest.mark.timeout(180)

SUBMIT = "pages/1_Submit.py"
HISTORY = "pages/3_History.py"


# --- Helpers ---------------------------------------------------------------------------------------


def written(db: psycopg.Connection) -> tuple[int, int, int]:
    """(requests, Procrastinate jobs of Inkwell tasks, site batches): all 0 after a refusal."""
    return (
        db.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0],
        db.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name NOT IN "
                   "('inkwell.requeue_stalled_jobs', 'inkwell.clean_up_queue')").fetchone()[0],
        db.execute("SELECT count(*) FROM inkwell.site_batches").fetchone()[0],
    )


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def shown(at: AppTest) -> list[str]:
    """Every piece of Markdown the page sent to the browser: markdown, captions, alerts, headings."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "subheader", "header", "title")
    return [str(element.value) for kind in kinds for element in at.get(kind)]


def unescaped(token: str, markdown: str) -> bool:
    """True when `token` occurs in `markdown` with its first character not backslash-escaped,
    i.e. where a Markdown renderer would read it as markup."""
    start = markdown.find(token)
    while start != -1:
        backslashes = 0
        while start - backslashes - 1 >= 0 and markdown[start - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return True
        start = markdown.find(token, start + 1)
    return False


# Markup that would run, load or link something if it reached the browser as Markdown.
ACTIVE_MARKUP = ("<script", "<img", "<iframe", "![", "](", "]:", "<http", "javascript:", ":red[", ":material/warning", "$E")


# Bare URLs GFM would turn into links even when escaped (console_kinds/plain_text.py).
AUTOLINKABLE = re.compile(r"(?i)(?<![a-z0-9])(https?\\?://|www\\?\.)")


def assert_rendered_as_text(at: AppTest, *, no_links: bool = False) -> None:
    assert not at.exception, at.exception
    assert not at.get("html"), "no st.html element"
    assert not [m for m in at.get("markdown") if m.proto.allow_html], "no Markdown with unsafe_allow_html"
    for markdown in shown(at):
        active = [token for token in ACTIVE_MARKUP if unescaped(token, markdown)]
        assert not active, f"live markup {active} in {markdown[:300]!r}"
        if no_links and "window.pwned" in markdown:
            assert not AUTOLINKABLE.search(markdown), f"a URL that would become a link in {markdown[:300]!r}"


def test_the_live_markup_check_finds_raw_markup_and_passes_escaped_text():
    from console_kinds.blog_post import safe_markdown

    assert [token for token in ACTIVE_MARKUP if unescaped(token, HOSTILE)] == [
        "<script", "<img", "![", "](", "<http", "javascript:", ":red[", ":material/warning", "$E"
    ]
    assert not [token for token in ACTIVE_MARKUP if unescaped(token, escape_markdown(HOSTILE))]
    assert not [token for token in ACTIVE_MARKUP if unescaped(token, safe_markdown(HOSTILE))]
    # Bare URLs, which a browser's GFM renderer makes links of even when escaped, are broken up too.
    assert AUTOLINKABLE.search(HOSTILE)
    assert not AUTOLINKABLE.search(escape_markdown(HOSTILE))
    assert not AUTOLINKABLE.search(as_text(HOSTILE)) and not AUTOLINKABLE.search(safe_markdown(HOSTILE))


def one_request(at: AppTest, topic: str) -> AppTest:
    # set_value, not input: the browser stops typing at the field's 500 characters, a crafted
    # client does not, so the server's own check is what is tested.
    at.text_area(key="one_topic").set_value(topic)
    return at.button(key="one_submit").click().run()


# --- Topics ----------------------------------------------------------------------------------------

TOO_SHORT = "topic: must be at least 3 characters (after trimming spaces)"
INVISIBLE = "topic: must have at least 3 visible characters (spaces and invisible characters do not count)"


@pytest.mark.parametrize(
    "topic, message",
    [
        pytest.param("", TOO_SHORT, id="empty"),
        pytest.param(" \t \n  ", TOO_SHORT, id="whitespace"),
        pytest.param("x", TOO_SHORT, id="one-character"),
        pytest.param("\x00\x01\x07\x1b\x7f", TOO_SHORT, id="only-NUL-and-control-characters"),
        pytest.param("\u200b\u2060\ufeff\u200b", TOO_SHORT, id="only-zero-width-spaces"),
        pytest.param("\u200d\u200c\u200d", INVISIBLE, id="only-zero-width-joiners"),
        pytest.param("\u3164\u3164\u3164\u3164", INVISIBLE, id="only-blank-hangul-fillers"),
        pytest.param("\u202e\u202d\u2066x", TOO_SHORT, id="only-direction-overrides"),
    ],
)
def test_a_topic_with_nothing_to_say_or_far_too_much_is_refused_naming_the_problem_and_nothing_is_written(
    console_as, db, topic, message
):
    at = one_request(console_as("editor", SUBMIT).run(), topic)
    assert not at.exception
    assert f"Nothing was queued. {message}" in texts(at.error)
    assert not at.success
    assert written(db) == (0, 0, 0)


@pytest.mark.parametrize(
    "typed, stored",
    [
        pytest.param("bee\x00keep\x07ing\x1b in \x85cities", "beekeeping in cities", id="NUL-and-control-characters-removed"),
        pytest.param("com\u200bpost\u2060ing \ufefftips", "composting tips", id="zero-width-spaces-removed"),
        pytest.param("invoice \u202egnp.exe\u202c review", "invoice gnp.exe review", id="direction-override-removed"),
        pytest.param("مرحبا بالعالم: كتابة المدونات", "مرحبا بالعالم: كتابة المدونات", id="right-to-left-kept"),
        pytest.param("שלום \u200fעולם (2026)", "שלום \u200fעולם (2026)", id="right-to-left-mark-kept"),
        pytest.param("👩\u200d💻 coding for writers", "👩\u200d💻 coding for writers", id="emoji-joiner-kept"),
        pytest.param("<script>alert('pwned')</script> compost", "<script>alert('pwned')</script> compost", id="script-tag"),
        pytest.param('<img src=x onerror="alert(1)"> gardens', '<img src=x onerror="alert(1)"> gardens', id="img-onerror"),
        pytest.param("![pixel](http://127.0.0.1:9/p.png) bread", "![pixel](http://127.0.0.1:9/p.png) bread", id="remote-image"),
        pytest.param("[click](javascript:alert(1)) bees", "[click](javascript:alert(1)) bees", id="javascript-link"),
        pytest.param(":red[alarm] :material/warning: $E=mc^2$", ":red[alarm] :material/warning: $E=mc^2$", id="directives-and-maths"),
        pytest.param("Robert'); DROP TABLE inkwell.requests; --", "Robert'); DROP TABLE inkwell.requests; --", id="sql-drop-table"),
        pytest.param("' OR '1'='1' --", "' OR '1'='1' --", id="sql-boolean"),
        pytest.param("x'; DELETE FROM procrastinate_jobs; /*", "x'; DELETE FROM procrastinate_jobs; /*", id="sql-delete"),
    ],
)
def test_a_hostile_topic_is_stored_and_shown_as_plain_text(console_as, db, typed, stored):
    at = one_request(console_as("editor", SUBMIT).run(), typed)
    assert "Queued 1 request." in texts(at.success), texts(at.error)

    # Stored as the text itself (cleaned of control and invisible characters), and nothing ran:
    # the tables a SQL string names are still there, with exactly the one request and its job.
    ((topic,),) = db.execute("SELECT input->>'topic' FROM inkwell.requests").fetchall()
    assert topic == stored
    assert written(db) == (1, 1, 0)

    home = console_as("editor").run()
    assert_rendered_as_text(home)
    assert any(escape_markdown(stored) in markdown for markdown in shown(home)), "the topic is listed, escaped"


def test_a_100_kb_topic_in_the_one_request_form_is_cut_to_the_fields_500_characters(console_as, db):
    # The field holds 500 characters: the browser stops there, and Streamlit's server cuts a longer
    # value from a crafted client, so what is queued is what the field showed.
    at = one_request(console_as("editor", SUBMIT).run(), "composting " * 9_310)
    assert "Queued 1 request." in texts(at.success)
    ((topic,),) = db.execute("SELECT input->>'topic' FROM inkwell.requests").fetchall()
    assert topic == ("composting " * 46)[:500].strip()


def test_pasted_topics_refuse_a_100_kb_line_by_its_number_and_queue_the_others(console_as, db):
    at = console_as("editor", SUBMIT).run()
    at.text_area(key="pasted_topics").input("urban beekeeping\n" + "x" * 100_000 + "\n<b>winter</b> gardening\n")
    at.button(key="pasted_submit").click().run()

    assert not at.exception
    assert "Queued 2 requests. 1 line refused (listed below)." in texts(at.success)
    assert at.dataframe[0].value.to_dict("records") == [
        {"Line": 2, "Text": "x" * 80 + "… (100,000 characters)", "Reason": "topic: must be at most 500 characters"}
    ]
    topics = [row[0] for row in db.execute("SELECT input->>'topic' FROM inkwell.requests ORDER BY input->>'topic'")]
    assert topics == ["<b>winter</b> gardening", "urban beekeeping"]


def test_pasting_100000_topics_is_refused_with_the_cap_and_nothing_is_written(console_as, db):
    at = console_as("editor", SUBMIT).run()
    at.text_area(key="pasted_topics").input("\n".join(f"topic number {i}" for i in range(100_000)))
    at.button(key="pasted_submit").click().run()

    assert not at.exception
    assert "More than 10,000 rows: nothing was queued. Split them" in texts(at.error).replace("\\", "")
    assert written(db) == (0, 0, 0)


# --- CSV uploads -----------------------------------------------------------------------------------


def upload_csv(console_as, name: str, data: bytes) -> AppTest:
    at = console_as("editor", SUBMIT).run()
    at.file_uploader(key="csv_file").set_value((name, data, "text/csv"))
    return at.button(key="csv_submit").click().run()


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(
            b"topic|audience\ncomposting|renters\n",
            "found “topic|audience”. Separate the cells with commas, semicolons or tabs.",
            id="wrong-delimiter",
        ),
        pytest.param(
            ("topic,audience\n" + "".join(f"topic number {i},readers\n" for i in range(100_000))).encode(),
            "More than 10,000 rows: nothing was queued. Split them into batches of at most 10,000.",
            id="100000-rows",
        ),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file is not text", id="binary-png"),
        pytest.param(b"topic\n" + bytes(range(0x80, 0x100)), "This file is not UTF-8 text (line 2 has byte 0x80)", id="binary-not-utf8"),
        pytest.param("topic\ncomposting\n".encode("utf-16"), "This file is UTF-16 text, not UTF-8", id="utf16"),
        pytest.param(
            b'topic\n"never closed\n' + b"composting\n" * 15_000,
            "Line 2 has a cell longer than 131,072 characters",
            id="unclosed-quote-huge-cell",
        ),
    ],
)
def test_a_hostile_csv_is_refused_with_a_message_naming_the_problem_and_nothing_is_written(console_as, db, data, message):
    at = upload_csv(console_as, "topics.csv", data)
    assert not at.exception
    errors = texts(at.error).replace("\\", "")  # the message is escaped Markdown
    assert "“topics.csv” was not queued." in errors and message in errors, errors
    assert written(db) == (0, 0, 0)


def test_a_csv_with_a_byte_order_mark_and_hostile_cells_is_stored_as_plain_text(console_as, db):
    data = "\ufefftopic;audience\n<script>alert(1)</script> bread;\"x'); DROP TABLE inkwell.requests; --\"\n".encode()
    at = upload_csv(console_as, "<b>topics</b>.csv", data)
    assert "Queued 1 request." in texts(at.success), texts(at.error)
    ((stored,),) = db.execute("SELECT input FROM inkwell.requests").fetchall()
    assert stored["topic"] == "<script>alert(1)</script> bread"
    assert stored["audience"] == "x'); DROP TABLE inkwell.requests; --"


# --- Site definitions --------------------------------------------------------------------------------


def _bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\nsite: x\n"


def _sections(count_routes: int, per_route: int) -> str:
    return "site: Acme\nbusiness: {business_type: bakery}\nroutes:\n" + "".join(
        f"  - path: /p{r}\n    sections:\n" + "".join(f"      - {{template: faq, name: f{s}}}\n" for s in range(per_route))
        for r in range(count_routes)
    )


@pytest.mark.parametrize(
    "name, text, message",
    [
        pytest.param("bomb.yaml", _bomb(), "uses a YAML anchor (&name); aliases and anchors are not allowed here", id="yaml-alias-bomb"),
        pytest.param("deep.yaml", "site:\n  x: " + "[" * 10_000 + "]" * 10_000, "nested more than 20 levels deep", id="10000-deep-yaml"),
        pytest.param("deep.json", "[" * 10_000 + "]" * 10_000, "nested more than 20 levels deep", id="10000-deep-json"),
        pytest.param(
            "big.yaml", _sections(100, 100),
            "has more than 200 sections; a build may have at most 200 (setting INKWELL_MAX_SITE_SECTIONS)", id="10000-sections",
        ),
        pytest.param(
            "routes.yaml", "site: Acme\nbusiness: {business_type: bakery}\nroutes:\n" + "".join(f"- {{path: /{i}}}\n" for i in range(30_000)),
            "has more than 200 routes; a build may have at most 200 sections", id="30000-routes",
        ),
        pytest.param(
            "junk.yaml", "site: Acme\njunk:\n" + "".join(f"  k{i}: v\n" for i in range(40_000)),
            "has a mapping with more than 20 keys (line 23)", id="40000-keys",
        ),
        pytest.param("python.yaml", "site: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "not a usable YAML site definition", id="python-tag"),
        pytest.param("binary.yaml", "\x00\x01binary", "not valid YAML", id="binary"),
    ],
)
def test_a_hostile_site_definition_is_refused_quickly_naming_the_problem_and_nothing_is_written(console_as, db, name, text, message):
    at = console_as("editor", SUBMIT).run()
    at.selectbox(key="submit_kind").select("site_section").run()
    at.file_uploader(key="site_file").set_value((name, text.encode(), "application/octet-stream"))
    at.button(key="site_upload_submit").click().run()

    assert not at.exception
    errors = texts(at.error).replace("\\", "")
    assert f"“{name}” was not queued." in errors and message in errors, errors
    assert written(db) == (0, 0, 0)


def test_nul_and_direction_overrides_in_a_site_definition_are_removed_before_it_is_stored(console_as, db):
    definition = {
        "site": "Acme\u0000 <b>Bakery</b>",
        "business": {"business_type": "bakery\u202e"},
        "routes": [{"path": "/", "sections": [{"template": "hero", "brief": "fresh\u0000 bread\u200b daily"}]}],
    }
    at = console_as("editor", SUBMIT).run()
    at.selectbox(key="submit_kind").select("site_section").run()
    at.file_uploader(key="site_file").set_value(("site.json", json.dumps(definition).encode(), "application/json"))
    at.button(key="site_upload_submit").click().run()

    assert "Queued 1 section." in texts(at.success), texts(at.error)
    ((stored,),) = db.execute("SELECT input FROM inkwell.requests").fetchall()
    assert (stored["site"], stored["business"]["business_type"], stored["brief"]) == ("Acme <b>Bakery</b>", "bakery", "fresh bread daily")


# --- URLs: nothing ever reaches a refused address --------------------------------------------------


class ConnectionRecorder:
    """TCP listeners on 127.0.0.1, 127.0.0.2 and [::1], one port, recording every connection they
    accept (and answering a small HTML page, so a fetch that wrongly got through would succeed)."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, str]] = []  # (listening address, peer address)
        self._sockets: list[socket.socket] = []
        for _ in range(20):
            try:
                self._listen_on_one_port()
                break
            except OSError:
                self.close()
                self._sockets = []
        else:
            raise RuntimeError("no port free on 127.0.0.1, 127.0.0.2 and ::1 at once")
        self.port = self._sockets[0].getsockname()[1]
        for sock in self._sockets:
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _listen_on_one_port(self) -> None:
        first = socket.create_server(("127.0.0.2", 0))
        self._sockets.append(first)
        port = first.getsockname()[1]
        self._sockets.append(socket.create_server(("127.0.0.1", port)))
        self._sockets.append(socket.create_server(("::1", port), family=socket.AF_INET6))

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            self.connections.append((sock.getsockname()[0], peer[0]))
            with conn:
                conn.settimeout(2)
                body = b"<title>internal</title><p>secret</p>"
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                except OSError:
                    pass

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def recorder() -> Iterator[ConnectionRecorder]:
    listener = ConnectionRecorder()
    yield listener
    listener.close()


@pytest.fixture
def site() -> Iterator[LocalSite]:
    server = LocalSite("127.0.0.1")
    yield server
    server.close()


def test_every_form_of_a_refused_address_is_refused_by_the_worker_without_a_connection(db, start_worker, recorder):
    port = recorder.port
    urls = {
        f"http://127.0.0.2:{port}/": "127.0.0.2",
        f"http://2130706434:{port}/": "2130706434 (127.0.0.2)",        # decimal
        f"http://0x7f000002:{port}/": "0x7f000002 (127.0.0.2)",        # hex
        f"http://0177.0.0.02:{port}/": "0177.0.0.02 (127.0.0.2)",      # octal
        f"http://127.2:{port}/": "127.2 (127.0.0.2)",                  # short form
        f"http://[::1]:{port}/": "::1",                                # IPv6 loopback
        f"http://[::ffff:127.0.0.2]:{port}/": "an IPv6 form of 127.0.0.2",  # IPv4-mapped IPv6
        f"http://localhost:{port}/": "localhost (127.0.0.1)",          # a name that resolves to loopback
    }
    request_ids = submit_requests(db, "website_analysis", [WebsiteAnalysisInput(url=url) for url in urls], requested_by="ana")
    start_worker(extra_env=QUICK)  # private addresses not allowed: the default

    for request_id, words in zip(request_ids, urls.values()):
        request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=40)
        assert (request.status, request.error_code, request.attempts) == ("failed", "url_refused", 1), request.error_message
        assert words in request.error_message and "Only public web addresses can be analysed" in request.error_message
    assert recorder.connections == [], "no connection reached a refused address"

    # The listener does record connections: the same address, allowed, is reached.
    page = asyncio.run(fetch_html(f"http://127.0.0.2:{port}/", policy=AddressPolicy(allow_private=True), max_bytes=10_000, timeout_seconds=5))
    assert "secret" in page.html and [address for address, _ in recorder.connections] == ["127.0.0.2"]


@pytest.mark.parametrize(
    "target, code, words",
    [
        pytest.param("http://127.0.0.2:{port}/admin", "url_refused", "127.0.0.2: the address is a loopback address", id="loopback"),
        pytest.param("http://[::1]:{port}/", "url_refused", "::1: the address is a loopback address", id="ipv6-loopback"),
        pytest.param("http://0x7f000002:{port}/", "url_refused", "(127.0.0.2): the address is a loopback", id="hex"),
        pytest.param("file:///etc/passwd", "url_refused", "Only http and https URLs can be fetched, not file:", id="file-scheme"),
        pytest.param("gopher://127.0.0.2:{port}/_GET", "url_refused", "not gopher:", id="gopher-scheme"),
    ],
)
def test_a_redirect_to_a_refused_address_or_scheme_is_not_followed(site, recorder, target, code, words):
    site.redirect_target = target.format(port=recorder.port)
    # Only the test site's own address is allowed, as an operator would allow one intranet host.
    policy = AddressPolicy.from_settings(False, "127.0.0.1/32")
    with pytest.raises(JobError) as refused:
        asyncio.run(fetch_html(site.base + "/to-private", policy=policy, max_bytes=100_000, timeout_seconds=5))
    assert (refused.value.code, words in refused.value.message) == (code, True), refused.value.message
    assert site.paths == ["/to-private"]
    assert recorder.connections == []


@pytest.mark.parametrize(
    "url, message",
    [
        pytest.param("file:///etc/passwd", "Only http and https URLs can be fetched, not file:", id="file"),
        pytest.param("gopher://127.0.0.2:70/_GET", "Only http and https URLs can be fetched, not gopher:", id="gopher"),
        pytest.param("http://example.com/a\r\nHost: evil", "control or invisible character at position 21", id="CRLF"),
        pytest.param("http://exa\u202emple.com/", "control or invisible character at position 11", id="direction-override"),
        pytest.param("http://user:pw@example.com/", "URLs with a user name or password in them are not fetched", id="credentials"),
        pytest.param("http://a..b/", "The host name 'a..b' is not a valid domain name", id="bad-host"),
    ],
)
def test_a_url_that_cannot_be_fetched_is_refused_on_the_submit_page_and_nothing_is_written(console_as, db, url, message):
    at = console_as("editor", SUBMIT).run()
    at.selectbox(key="submit_kind").select("website_analysis").run()
    at.text_input(key="analysis_url").input(url)
    at.button(key="analysis_submit").click().run()

    assert not at.exception
    errors = texts(at.error).replace("\\", "")
    assert "Nothing was queued." in errors and message in errors, errors
    assert written(db) == (0, 0, 0)


def test_a_nul_in_a_url_is_removed_by_the_typed_text_cleaning_before_anything_reads_it(console_as, db):
    # Every typed text goes through console_ui's one cleaning (clean_typed_text) first: the NUL never
    # reaches the URL check or a query, and the page says it was removed.
    at = console_as("editor", SUBMIT).run()
    at.selectbox(key="submit_kind").select("website_analysis").run()
    at.text_input(key="analysis_url").input("http://example.com/\x00")
    at.button(key="analysis_submit").click().run()

    assert not at.exception
    assert "1 control or invalid character was removed." in texts(at.warning)
    [stored] = [row[0] for row in db.execute("SELECT input ->> 'url' FROM inkwell.requests")]
    assert stored == "http://example.com/"


# --- URLs: responses that are compressed, bombs, or not what they claim ------------------------------


class CompressingSite:
    """A site whose pages come compressed, or as decompression bombs."""

    def __init__(self) -> None:
        self.accept_encodings: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                site.accept_encodings.append(self.headers.get("Accept-Encoding", ""))
                body, encoding, content_type = site.page(self.path.strip("/"))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                if encoding:
                    self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def page(name: str) -> tuple[bytes, str, str]:
        html = PAGE.encode()
        if name == "gzip":
            return gzip.compress(html), "gzip", "text/html"
        if name == "deflate":
            return zlib.compress(html), "deflate", "text/html"
        if name == "gzip-bomb":  # 100 MB of "a" once decompressed, about 100 KB sent
            return gzip.compress(b"<p>" + b"a" * 100_000_000, compresslevel=9), "gzip", "text/html"
        if name == "brotli":
            return b"\x0b\x02\x80hello\x03", "br", "text/html"
        if name == "broken-gzip":
            return b"\x1f\x8b\x08\x00garbage", "gzip", "text/html"
        if name == "binary-as-html":
            return b"\x89PNG\r\n\x1a\n\x00\x00<title>a\x00b</title>\x00\xff\xfe", "", "text/html"
        return html, "", "text/html"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def compressing_site() -> Iterator[CompressingSite]:
    server = CompressingSite()
    yield server
    server.close()


@pytest.mark.parametrize("page", ["gzip", "deflate"])
def test_a_compressed_page_is_read_as_its_text(compressing_site, page):
    fetched = asyncio.run(fetch_html(f"{compressing_site.base}/{page}", policy=AddressPolicy(allow_private=True),
                                     max_bytes=200_000, timeout_seconds=5))
    assert "Grow more in less space" in fetched.html
    assert compressing_site.accept_encodings[-1] == "gzip, deflate"


@pytest.mark.parametrize(
    "page, code, words",
    [
        pytest.param("gzip-bomb", "url_too_large", "it is larger once decompressed", id="gzip-bomb"),
        pytest.param("brotli", "url_not_html", "compressed as 'br'", id="unrequested-encoding"),
        pytest.param("broken-gzip", "url_not_html", "gzip compression is broken", id="broken-compression"),
    ],
)
def test_a_page_compressed_to_harm_is_refused_with_a_named_code(compressing_site, page, code, words):
    with pytest.raises(JobError) as refused:
        asyncio.run(fetch_html(f"{compressing_site.base}/{page}", policy=AddressPolicy(allow_private=True),
                               max_bytes=200_000, timeout_seconds=5))
    assert refused.value.code == code and words in refused.value.message, refused.value.message


def test_binary_content_labelled_html_is_analysed_without_storing_control_characters(db, start_worker, compressing_site):
    (request_id,) = submit_requests(db, "website_analysis", [WebsiteAnalysisInput(url=f"{compressing_site.base}/binary-as-html")],
                                    requested_by="ana")
    start_worker(extra_env={**ALLOW_PRIVATE, **QUICK})
    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=40)
    # Either outcome names itself; what must not happen is a result PostgreSQL cannot store (NUL).
    assert request.status == "succeeded" or request.error_code == "url_no_text", (request.error_code, request.error_message)
    if request.status == "succeeded":
        assert request.result["page_title"] == "ab"


# --- Model output: capped, stored as data, rendered as text ------------------------------------------

# Everything that would run a script, load a remote image, link away or colour the page if it were
# rendered as HTML or as live Markdown, plus NUL and a direction override.
HOSTILE = (
    "<script>window.pwned = 1</script> Title "
    '<img src="http://127.0.0.1:9/onerror.png" onerror="window.pwned = 2"> '
    "![tracking pixel](http://127.0.0.1:9/pixel.png) [click me](javascript:alert(1)) <http://127.0.0.1:9/auto> "
    ":red[alarm] :material/warning: $E=mc^2$ '; DROP TABLE inkwell.requests; -- \u202eevil\u202c \x00nul "
    "www.evil.example bob@evil.example"
)


def hostile_responder(request_json: dict, *, hostile: str = HOSTILE) -> str:
    """Valid JSON for the requested schema, every string of it hostile (the first one also 50 KB long)."""
    schema = (request_json.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    first = [True]

    def poison(value):
        if isinstance(value, str):
            long = first[0]
            first[0] = False
            return hostile + (" padding" * 6_000 if long else "")
        if isinstance(value, list):
            return [poison(v) for v in value]
        if isinstance(value, dict):
            return {k: poison(v) for k, v in value.items()}
        return value

    return json.dumps(poison(example_for_schema(schema)))


def finished(db, request_id, timeout: float = 60.0):
    return wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=timeout, message=f"{request_id} to finish")


def history_of(console_as, request_id) -> AppTest:
    at = console_as("operator", HISTORY)
    at.query_params["request"] = str(request_id)
    return at.run()


def test_hostile_titles_from_the_model_are_capped_stored_without_nul_and_rendered_as_text(db, start_worker, llm_server, console_as):
    llm_server.responder = hostile_responder
    (request_id,) = submit_requests(db, "titles", [TitlesInput(topic="composting", count=3)], requested_by="ana")
    start_worker()
    request = finished(db, request_id)

    assert request.status == "succeeded", request.error_message
    titles = request.result["titles"]
    assert 1 <= len(titles) <= 3 and all(len(t) <= MAX_TITLE_CHARS for t in titles)
    assert all("\x00" not in t and "\u202e" not in t for t in titles)
    assert titles[-1].startswith("<script>window.pwned = 1</script> Title")
    assert written(db)[0] == 1, "the DROP TABLE in the answer ran nowhere"

    for at in (console_as("operator").run(), history_of(console_as, request_id)):
        assert_rendered_as_text(at, no_links=True)
        assert any(as_text(titles[-1]) in markdown for markdown in shown(at)), "the title is shown, escaped"


def test_a_hostile_website_analysis_is_capped_and_rendered_as_text(db, start_worker, llm_server, site, console_as):
    llm_server.responder = hostile_responder
    (request_id,) = submit_requests(db, "website_analysis", [WebsiteAnalysisInput(url=site.base + "/page")], requested_by="ana")
    start_worker(extra_env={**ALLOW_PRIVATE, **QUICK})
    request = finished(db, request_id)

    assert request.status == "succeeded", request.error_message
    result = request.result
    for field in ("business_type", "target_audience", "tone_of_voice"):
        assert len(result[field]) <= 200 and "\x00" not in result[field]
    assert len(result["suggested_post_topics"]) <= 5 and len(result["key_products_or_services"]) <= 8
    assert_rendered_as_text(history_of(console_as, request_id), no_links=True)


def test_a_hostile_site_section_is_capped_and_rendered_as_text(db, start_worker, llm_server, console_as):
    llm_server.responder = hostile_responder
    definition = site_definition_from({"site": "Acme", "business": {"business_type": "bakery"},
                                       "routes": [{"path": "/", "sections": [{"template": "faq"}]}]})
    (request_id,) = submit_site_build(db, definition, requested_by="ana").request_ids
    start_worker()
    request = finished(db, request_id)

    assert request.status == "succeeded", request.error_message
    content = request.result["content"]
    assert len(content["headline"]) <= 200 and "\\u0000" not in json.dumps(content)
    assert_rendered_as_text(history_of(console_as, request_id), no_links=True)


def test_a_hostile_blog_post_is_rendered_without_html_links_or_remote_images(db, start_worker, llm_server, console_as):
    # Without the NUL: blog_posts.py does not remove it yet (the test below).
    llm_server.responder = lambda request_json: hostile_responder(request_json, hostile=HOSTILE.replace("\x00", ""))
    (request_id,) = submit_requests(db, "blog_post", [BlogPostInput(topic="composting")], requested_by="ana")
    start_worker()
    request = finished(db, request_id, timeout=90)

    assert request.status == "succeeded", (request.error_code, request.error_message)
    at = history_of(console_as, request_id)
    assert_rendered_as_text(at, no_links=True)
    assert any("window.pwned = 1" in markdown and "tracking pixel" in markdown for markdown in shown(at)), "the body is shown"


def test_a_nul_in_a_blog_post_from_the_model_is_removed_before_the_post_is_saved(db, start_worker, llm_server):
    llm_server.responder = lambda request_json: hostile_responder(request_json, hostile="Composting\x00 at home")
    (request_id,) = submit_requests(db, "blog_post", [BlogPostInput(topic="composting")], requested_by="ana")
    start_worker()
    request = finished(db, request_id, timeout=90)
    assert (request.status, request.error_code) == ("succeeded", None), request.error_message
