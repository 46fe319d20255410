"""The model API key echoed back in any form — upper-cased, cut short, base64, URL-encoded, hex — by the
endpoint's errors or inside the model's answer is stored, logged, exported and shown to analysts
redacted (queue_tasks/redaction.py). The local model server echoes each form; real workers run the jobs.
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote

import psycopg
import pytest

from db.history import HistoryFilter, export_history_csv
from db.requests import ACTIVE_STATUSES, TERMINAL_STATUSES, get_request
from queue_tasks.models import TitlesInput
from queue_tasks.redaction import REDACTED, encoded_forms
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for
from tests.support.llm_server import default_responder, error, first_user_text

pytestmark = pytest.mark.timeout(180)

KEY = f"sk-inkwell-{uuid.uuid4().hex}"
FORMS = {
    "upper-cased": KEY.upper(),
    "truncated by two": KEY[:-2],
    "base64": base64.b64encode(f"Authorization: Bearer {KEY}".encode()).decode(),
    "url-encoded": quote(f"Bearer {KEY}", safe=""),
    "hex": KEY.encode().hex(),
}


def leaks(text: str) -> list[str]:
    """Any 12-character run of any form of the key found in `text` (case-insensitively)."""
    lowered = text.lower()
    return [form[i : i + 12] for form in encoded_forms(KEY)
            for i in range(0, len(form) - 12, 4) if form[i : i + 12].lower() in lowered]


def run_all(db, start_worker, topics: list[str]) -> list:
    ids = submit_requests(db, "titles", [TitlesInput(topic=t) for t in topics], requested_by="ana")
    worker = start_worker(concurrency=1, extra_env={"INKWELL_LLM_API_KEY": KEY, "INKWELL_LLM_STREAM": "true"})
    requests = [wait_for(lambda i=i: (r := get_request(db, i)).is_finished and r, timeout=60) for i in ids]
    worker.stop()
    return requests, worker.log


def everything_stored(db) -> str:
    rows = db.execute("SELECT row_to_json(r)::text FROM inkwell.requests AS r").fetchall()
    analytics = db.execute("SELECT row_to_json(a)::text FROM analytics.requests AS a").fetchall()
    events = db.execute("SELECT row_to_json(e)::text FROM procrastinate_jobs AS e").fetchall()
    return "\n".join(r[0] for r in rows + analytics + events)


def test_an_endpoint_error_echoing_the_key_in_any_form_is_stored_logged_and_exported_redacted(db, start_worker, llm_server):
    llm_server.set_script([
        error(400, body={"error": {"message": f"Bad header ({name}): {form}", "type": "invalid_request_error"}})
        for name, form in FORMS.items()
    ])
    requests, log = run_all(db, start_worker, [f"composting tip {n}" for n in range(len(FORMS))])

    assert {r.error_code for r in requests} == {"model_bad_request"}
    for request in requests:
        assert REDACTED in request.error_message and "Bad header (" in request.error_message, request.error_message
    assert "model_bad_request" in log
    assert leaks(everything_stored(db)) == []
    assert leaks(log) == []
    with psycopg.connect(db.info.dsn, autocommit=True) as conn:
        csv = export_history_csv(conn, HistoryFilter(statuses=(*ACTIVE_STATUSES, *TERMINAL_STATUSES)), 100)
    assert "[redacted]" in csv and leaks(csv) == []


def test_a_model_answer_quoting_the_key_in_any_form_is_stored_redacted(db, start_worker, llm_server):
    names = list(FORMS)

    def echoing(request_json):
        answer = json.loads(default_responder(request_json))
        topic = first_user_text(request_json)
        name = next(n for n in names if f"echo {names.index(n)}" in topic)
        answer["titles"][0] = f"Ten tips, key {FORMS[name]}"
        return json.dumps(answer)

    llm_server.responder = echoing
    requests, log = run_all(db, start_worker, [f"echo {n} gardening" for n in range(len(names))])

    assert {r.status for r in requests} == {"succeeded"}
    for request in requests:
        title = request.result["titles"][0]
        assert title.startswith("Ten tips, key ") and REDACTED in title, title  # what is not the key is kept
    assert leaks(everything_stored(db)) == []
    assert leaks(log) == []
