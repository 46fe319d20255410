"""The model endpoint's API key never leaves the settings: it reaches the endpoint's Authorization
header and nowhere else — not the worker's logs (at DEBUG, the SDK's own included), not the
console's logs or pages, not job arguments, request rows, events or any other table.

A distinctive key is used so that a leak anywhere is found by a plain text search.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pydantic
import pytest

from db.embedded import BIN_DIR
from db.requests import get_request
from inkwell_settings import InkwellSettings
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_requests
from tests.conftest import ROOT, wait_for
from tests.support.llm_server import error, ok

pytestmark = pytest.mark.timeout(180)

KEY = f"sk-inkwell-secret-{uuid.uuid4().hex}"
# The SDK and Procrastinate at their most talkative.
VERBOSE = {"INKWELL_LLM_API_KEY": KEY, "PROCRASTINATE_LOG_LEVEL": "debug", "OPENAI_LOG": "debug"}


def dump_database(database_url: str) -> str:
    """Every table, schema and row of the test's database, as pg_dump writes it."""
    return subprocess.run(
        [str(BIN_DIR / "pg_dump"), "--dbname", database_url], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def finished(db, request_id):
    return wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=40, message=f"{request_id} to finish")


# The console as its own process: its pages rendered (AppTest) with every logger at DEBUG on
# stderr, and everything the pages show printed on stdout.
CONSOLE_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    import psycopg
    from tests.support.console import make_user, signed_in_app

    def everything(block):
        yield block
        for child in getattr(block, "children", {}).values():
            yield from everything(child)

    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        user = make_user(conn, "operator")
    for page, request_id in [(None, None), ("pages/3_History.py", sys.argv[2]), ("pages/3_History.py", sys.argv[3]),
                             ("pages/2_Live.py", None), ("pages/4_Workers_and_queues.py", None)]:
        at = signed_in_app(user, page)
        if request_id:
            at.query_params["request"] = request_id
        at.run()
        assert not at.exception, at.exception
        for node in everything(at.main):
            if getattr(node, "proto", None) is not None:
                print(node.proto)
        print("PAGE RENDERED", page)
    """
)


def test_the_api_key_reaches_the_model_endpoint_and_appears_nowhere_else(db, database_url, start_worker, llm_server, inkwell_env):
    llm_server.set_script([ok(), error(401)])
    succeeded, refused = submit_requests(
        db, "titles", [TitlesInput(topic="composting at home"), TitlesInput(topic="urban beekeeping")], requested_by="ana"
    )
    worker = start_worker(concurrency=1, extra_env=VERBOSE)
    assert finished(db, succeeded).status == "succeeded"
    failure = finished(db, refused)
    assert (failure.status, failure.error_code) == ("failed", "model_auth_failed")
    worker.stop()

    # It did reach the endpoint, on every call: so the searches below could have found it.
    assert [r.headers.get("authorization") for r in llm_server.chat_requests] == [f"Bearer {KEY}"] * 2

    log = worker.log
    assert "Starting job inkwell.generate_titles" in log and "DEBUG" in log, "the worker logged at DEBUG"
    assert "DEBUG:openai._base_client:Sending HTTP Request" in log, "the SDK logged its requests"
    assert KEY not in log

    dump = dump_database(database_url)
    assert "composting at home" in dump and "model_auth_failed" in dump  # the dump holds the requests
    assert KEY not in dump, "not in job arguments, requests, events or any other table"

    console = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, database_url, str(succeeded), str(refused)],
        cwd=ROOT, env={**os.environ, **inkwell_env, "INKWELL_LLM_API_KEY": KEY, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )
    assert console.returncode == 0, console.stderr[-3000:]
    assert console.stdout.count("PAGE RENDERED") == 5
    assert "composting at home" in console.stdout and "model_auth_failed" in console.stdout
    assert "DEBUG:" in console.stderr, "the console logged at DEBUG"
    assert KEY not in console.stdout, "no page shows it"
    assert KEY not in console.stderr, "the console's logs do not hold it"


def test_an_endpoint_error_that_echoes_the_key_does_not_store_or_log_it(db, start_worker, llm_server):
    # A proxy in front of a model may quote the request's headers in its error.
    llm_server.set_script([error(400, body={"error": {"message": f"Bad header Authorization: Bearer {KEY}", "type": "invalid_request_error"}})])
    (request_id,) = submit_requests(db, "titles", [TitlesInput(topic="composting at home")], requested_by="ana")
    worker = start_worker(extra_env={"INKWELL_LLM_API_KEY": KEY})
    request = finished(db, request_id)
    worker.stop()

    assert request.error_code == "model_bad_request"
    assert KEY not in (request.error_message or ""), request.error_message
    assert "Bad header Authorization: Bearer [redacted]" in request.error_message, "the rest of the message is kept"
    assert KEY not in worker.log


def test_the_settings_never_print_the_key(monkeypatch):
    monkeypatch.setenv("INKWELL_LLM_API_KEY", KEY)
    settings = InkwellSettings()
    assert settings.llm_api_key.get_secret_value() == KEY
    for shown in (repr(settings), str(settings), settings.model_dump_json(), json.dumps(settings.model_dump(), default=str)):
        assert KEY not in shown and "**********" in shown

    # A settings error names the wrong value, never the key beside it.
    monkeypatch.setenv("INKWELL_LLM_TIMEOUT_SECONDS", "soon")
    with pytest.raises(pydantic.ValidationError) as refused:
        InkwellSettings()
    assert "llm_timeout_seconds" in str(refused.value) and KEY not in str(refused.value)
