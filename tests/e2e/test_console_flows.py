"""The console's main flows in a real browser, with a real worker and the local test model server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from db.requests import get_request, list_recent_requests
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.e2e.conftest import SCREENSHOTS
from tests.support.console import SLOW_VIEW_MS, make_user, sign_in_in_browser
from tests.support.llm_server import error, ok

# Every test here is marked `e2e` by tests/e2e/conftest.py. Each signs in through the form first
# (a page run and a password hash check more than before sign-in existed).
pytestmark = pytest.mark.timeout(150)

REQUESTER = "Ana"


def sign_in(page: Page, db, role: str = "operator") -> str:
    """Sign in through the form as a new user named Ana (an operator by default: sees and may act
    on every request, including those the tests queue directly); returns the username."""
    user = make_user(db, role, display_name=REQUESTER)
    sign_in_in_browser(page, user.username)
    return user.username


def test_a_wrong_password_is_refused_the_right_one_opens_the_console_and_sign_out_closes_it(console, page, db):
    user = make_user(db, "editor", display_name="Eve Marsh", organization="Marketing")
    page.goto(f"{console}/History")
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_be_visible(timeout=SLOW_VIEW_MS)
    expect(page.get_by_role("heading", name="History")).to_have_count(0)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password", exact=True).fill("not the password at all")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Wrong username or password.")).to_be_visible()
    expect(page.get_by_role("heading", name="History")).to_have_count(0)

    sign_in_in_browser(page, user.username)
    expect(page.get_by_role("heading", name="History", exact=True)).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Eve Marsh")).to_be_visible()
    expect(sidebar.get_by_text("Editor · Marketing")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "signed_in_sidebar.png", full_page=True)

    sidebar.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Inkwell")).to_be_visible()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    expect(page.get_by_role("heading", name="History")).to_have_count(0)


def test_an_admin_creates_an_editor_who_then_signs_in_and_sees_no_admin_page(console, page, db):
    admin = make_user(db, "admin", display_name="Ada")
    page.goto(console)
    sign_in_in_browser(page, admin.username)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    page.get_by_label("Username").fill("bo.lind")
    page.get_by_label("Name", exact=True).fill("Bo Lind")
    page.get_by_label("Password", exact=True).fill("a long enough passphrase")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Created bo.lind (editor, Acme).")).to_be_visible()
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()

    sign_in_in_browser(page, "bo.lind", "a long enough passphrase")
    expect(page.get_by_test_id("stSidebar").get_by_text("Editor · Acme")).to_be_visible()
    navigation = page.get_by_test_id("stSidebarNav")
    expect(navigation.get_by_role("link", name="Home", exact=True)).to_be_visible()
    expect(navigation.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    expect(navigation.get_by_role("link", name="Workers and queues", exact=True)).to_have_count(0)
    expect(page.get_by_role("tab", name="Users")).to_have_count(0)


def status_badge(scope: Page | Locator, status: str) -> Locator:
    """The coloured status badge (Markdown badge) of a request."""
    return scope.locator(".stMarkdownBadge", has_text=re.compile(rf"\b{status}\b"))


PROGRESS_BAR = '[data-testid="stProgress"] [role="progressbar"]'


def wait_for_progress_above(page: Page, value: int) -> int:
    """Wait until the (only) progress bar shows more than `value` percent; return what it shows.

    Read in the page, in one step, so a redraw between waiting and reading cannot interfere.
    """
    shown = page.wait_for_function(
        """([selector, value]) => {
            const now = Number(document.querySelector(selector)?.getAttribute("aria-valuenow"));
            return now > value ? now : null;
        }""",
        arg=[PROGRESS_BAR, value],
    )
    return int(shown.json_value())


def test_a_submitted_topic_shows_its_progress_moving_and_then_its_titles(
    console, page, start_worker, llm_server, db
):
    llm_server.push(ok(delay_per_chunk=0.2, chunks=30))  # about 6 s of streaming
    worker = start_worker()
    page.goto(console)
    sign_in(page, db, "editor")
    page.get_by_label("Topic").fill("composting in small apartments")
    page.get_by_role("button", name="Request titles").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Queued")).to_be_visible()

    # A redraw can hold the old bar and the new one for a moment: count them, never address "the" one.
    bars = page.locator(PROGRESS_BAR)
    expect(bars.first).to_be_visible()
    first = wait_for_progress_above(page, 0)
    second = wait_for_progress_above(page, first)
    assert 0 < first < second < 100

    expect(bars).to_have_count(0, timeout=20_000)
    [request] = list_recent_requests(db)
    assert request.status == "succeeded", worker.log
    titles = request.result["titles"]
    assert titles
    for title in titles:
        expect(page.get_by_text(title, exact=True)).to_be_visible()
    expect(status_badge(page, "succeeded")).to_be_visible()


def test_cancelling_a_running_job_on_the_live_page_shows_it_cancelled_and_closes_the_model_request(
    console, page, start_worker, llm_server, db
):
    llm_server.push(ok(delay_per_chunk=0.5, chunks=40))  # 20 s if left alone
    # Signed in before the job starts, so its 20 s are all left for the Live page.
    page.goto(f"{console}/Live")
    sign_in(page, db)
    request_id = submit_titles_request(db, TitlesInput(topic="tiny house living"), requested_by=REQUESTER)
    worker = start_worker()
    wait_for(lambda: get_request(db, request_id).status == "running" and llm_server.active_requests, timeout=20)

    expect(page.get_by_role("heading", name="Live")).to_be_visible()
    card = page.get_by_test_id("stVerticalBlock").filter(has_text="tiny house living").filter(
        has=page.get_by_test_id("stProgress")
    ).last
    expect(card.get_by_role("progressbar")).to_be_visible()
    card.get_by_role("button", name="Cancel").click()
    confirm = page.get_by_role("button", name="Yes, cancel it")
    expect(confirm).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "live_cancel_asks_first.png")
    clicked = time.monotonic()
    confirm.click()

    expect(status_badge(page, "cancelled")).to_be_visible(timeout=2_000)
    assert time.monotonic() - clicked <= 2.0
    assert llm_server.wait_for_disconnect(timeout=5), "the model request was left running"
    request = get_request(db, request_id)
    assert (request.status, request.result) == ("cancelled", None), worker.log
    expect(page.get_by_text("Cancelled while running")).to_be_visible()


def bulk_csv(rows: int, bad: dict[int, str]) -> bytes:
    """A header and `rows` rows; the row on each line number in `bad` is replaced by that text."""
    lines = ["topic,audience,count"]
    for line_number in range(2, rows + 2):
        lines.append(bad.get(line_number, f"topic number {line_number},city renters,3"))
    return ("\n".join(lines) + "\n").encode()


def test_bulk_csv_upload_reports_exactly_the_bad_lines_and_queues_the_rest(console, page, db):
    bad = {
        17: "ab,city renters,3",  # topic too short
        88: "a fine topic,city renters,50",  # more titles than allowed
        150: "a fine topic,city renters,3,surplus cell",  # more cells than columns
    }
    page.goto(f"{console}/Submit")
    sign_in(page, db, "editor")
    expect(page.get_by_role("heading", name="Submit")).to_be_visible()
    page.get_by_role("tab", name="Upload a CSV").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": "topics.csv", "mimeType": "text/csv", "buffer": bulk_csv(200, bad)}]
    )
    expect(page.get_by_test_id("stFileUploader")).to_contain_text("topics.csv")
    page.get_by_role("button", name="Submit the file's rows").click()

    expect(page.get_by_test_id("stAlert").filter(has_text="Queued 197 requests")).to_contain_text("3 lines refused")
    expect(page.get_by_test_id("stAlert").filter(has_text="3 lines refused — fix them")).to_be_visible()
    # st.dataframe draws on a canvas; the grid's accessible table, inside the canvas and so
    # never "visible" to role selectors, holds the same cells.
    rows = page.get_by_test_id("stDataFrame").locator("tbody tr")
    expect(rows).to_have_count(3)
    refused = {}
    for row in rows.all():
        line, _text, reason = (cell.text_content() for cell in row.locator("td").all())
        refused[int(line)] = reason
    page.get_by_test_id("stDataFrame").scroll_into_view_if_needed()
    assert sorted(refused) == sorted(bad)
    assert "topic" in refused[17] and "count" in refused[88] and "cells" in refused[150], refused
    queued = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE input->>'topic' LIKE 'topic number %%'),"
        " array_agg(DISTINCT status), array_agg(DISTINCT requested_by) FROM inkwell.requests"
    ).fetchone()
    assert queued == (197, 197, ["queued"], [REQUESTER])


def select_table_row(page: Page, table: Locator, row_index: int) -> None:
    """Tick a row of an st.dataframe: the grid is a canvas, so click its row-marker column."""
    box = table.get_by_test_id("data-grid-canvas").bounding_box()
    row_height = 35  # Streamlit's default, the header row included
    page.mouse.click(box["x"] + 20, box["y"] + row_height * (row_index + 1) + row_height / 2)


def test_a_permanently_failed_job_retried_from_the_history_page_ends_succeeded(
    console, page, start_worker, llm_server, db
):
    llm_server.push(error(400))  # permanent: the queue does not retry it; later requests succeed
    request_id = submit_titles_request(db, TitlesInput(topic="urban beekeeping"), requested_by=REQUESTER)
    worker = start_worker()
    failed = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=20)
    assert (failed.status, failed.error_code) == ("failed", "model_bad_request"), worker.log

    page.goto(f"{console}/History")
    sign_in(page, db)
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    table = page.get_by_test_id("stDataFrame")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("urban beekeeping")
    expect(rows.first).to_contain_text("failed")
    select_table_row(page, table, 0)
    expect(page.get_by_test_id("stAlert").filter(has_text="model_bad_request")).to_be_visible()
    page.get_by_role("button", name="Retry this request").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Queued again")).to_be_visible()

    succeeded = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=20)
    assert (succeeded.status, succeeded.job_id) == ("succeeded", failed.job_id), worker.log
    assert llm_server.request_count == 2
    # No reload and no click: the list and the open request show it succeeded by themselves.
    table = page.get_by_test_id("stDataFrame").first
    expect(table.locator("tbody tr").first).to_contain_text("succeeded", timeout=10_000)
    detail = page.get_by_test_id("stVerticalBlock").filter(has_text="Event timeline").last
    expect(status_badge(detail, "succeeded")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"request={request_id}"))
    for title in succeeded.result["titles"]:
        expect(detail.get_by_text(title, exact=True)).to_be_visible()


# (sidebar link, URL path, title, what shows once the page has drawn its data)
PAGES: list[tuple[str | None, str, str, Callable[[Page], Locator]]] = [
    (None, "", "Inkwell", lambda page: page.get_by_role("heading", name="Latest requests")),
    ("Submit", "Submit", "Submit", lambda page: page.get_by_role("tab", name="Upload a CSV")),
    ("Live", "Live", "Live", lambda page: page.get_by_text("seed topic waiting")),
    ("History", "History", "History", lambda page: page.get_by_test_id("stDataFrame")),
    ("Workers and queues", "Workers_and_queues", "Workers and queues",
     lambda page: page.get_by_role("heading", name="Queues", exact=True)),
]


def test_every_page_renders_its_title_without_an_exception_and_stays_signed_in(console, page, start_worker, llm_server, db):
    llm_server.push(error(400))
    failed_id = submit_titles_request(db, TitlesInput(topic="seed topic that fails"), requested_by=REQUESTER)
    done_id = submit_titles_request(db, TitlesInput(topic="seed topic that succeeds"), requested_by=REQUESTER)
    worker = start_worker(concurrency=1)
    wait_for(lambda: all(get_request(db, i).is_finished for i in (failed_id, done_id)), timeout=20)
    worker.stop()
    submit_titles_request(db, TitlesInput(topic="seed topic waiting"), requested_by=REQUESTER)

    screenshots = SCREENSHOTS / "pages"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.goto(console)
    sign_in(page, db)
    for link, path, title, drawn in PAGES:
        if link is not None:
            # "Live · 1 queued": the navigation counts follow the page's name.
            page.get_by_test_id("stSidebarNav").get_by_role("link", name=re.compile(rf"^{re.escape(link)}( · .*)?$")).click()
        expect(page).to_have_url(f"{console}/{path}")
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        # Signed in once per browser session, not once per page.
        expect(page.get_by_test_id("stSidebar").get_by_text("Operator · Acme")).to_be_visible()
        expect(drawn(page)).to_be_visible()
        expect(page.get_by_test_id("stException")).to_have_count(0)
        page.screenshot(path=screenshots / f"{path or 'Home'}.png", full_page=True)
        if path == "":
            page.get_by_role("tab", name="Overview").click()
            expect(page.get_by_role("heading", name="Requests by status")).to_be_visible()
            expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=screenshots / "Home_Overview.png", full_page=True)
