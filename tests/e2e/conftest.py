"""Fixtures for the real-browser tests: the console under `streamlit run`, Debian's chromium
through Playwright's sync API, and a page per test that leaves a screenshot behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ROOT

E2E_DIR = Path(__file__).resolve().parent
# CI collects this folder as its artifacts; INKWELL_SCREENSHOTS moves it.
SCREENSHOTS = Path(os.environ.get("INKWELL_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CONSOLE_START_SECONDS = 30
LOG_TAIL_LINES = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Kept on the item so fixtures can tell, in their teardown, whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call")
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def console(
    inkwell_env: dict[str, str], console_database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The console under `streamlit run` on a free port, on the test's database, logged in as its own
    role (inkwell_console) as under ./run; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "streamlit.log"
    env = {**os.environ, **inkwell_env, "DATABASE_URL": console_database_url, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "streamlit", "run", "console_server.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        # Pages are being edited while tests run; a test sees the files as they were at its start.
        "--server.fileWatcherType", "none",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + CONSOLE_START_SECONDS
        while not is_healthy(url):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit not healthy after {CONSOLE_START_SECONDS} s:\n{log_tail(log_path)}")
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if failed(request):
            print(f"--- streamlit log (last {LOG_TAIL_LINES} lines) ---\n{log_tail(log_path)}")


# Module scope, not session: sync_playwright leaves an event loop running until it stops,
# which would break asyncio.run() in every test collected after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context per test; the final state is saved as a screenshot, pass or fail."""
    if "console" in request.fixturenames:
        # Set up first so it is torn down last: the screenshot needs the console still running.
        request.getfixturevalue("console")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
    finally:
        context.close()
