"""A titles request goes end to end: console-side submit, real worker subprocess, real openai
SDK over HTTP to the local test server, result and progress in inkwell.requests."""

from __future__ import annotations

import json

import psycopg
import pytest

from db.requests import get_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.conftest import wait_for
from tests.support.llm_server import drop_mid_stream, error, garbage, ok, stall

pytestmark = pytest.mark.timeout(120)


def submit(db: psycopg.Connection, topic: str = "composting in small apartments", **fields) -> str:
    return submit_titles_request(db, TitlesInput(topic=topic, **fields), requested_by="ana")


def finished(db: psycopg.Connection, request_id, timeout: float = 30.0):
    return wait_for(
        lambda: (r := get_request(db, request_id)) and r.is_finished and r,
        timeout=timeout,
        message=f"request {request_id} to finish",
    )


def event_types(db: psycopg.Connection, job_id: int) -> list[str]:
    rows = db.execute("SELECT type FROM procrastinate_events WHERE job_id = %s ORDER BY id", (job_id,)).fetchall()
    return [row[0] for row in rows]


def test_submitted_titles_request_is_run_by_a_worker_and_its_result_stored(db, start_worker, llm_server):
    llm_server.responder = lambda request: json.dumps({"titles": ["Small-Space Composting", "Bokashi Basics", "Worm Bins 101"]})
    request_id = submit(db, count=3)
    assert get_request(db, request_id).status == "queued"

    start_worker()
    request = finished(db, request_id)

    assert request.status == "succeeded"
    assert request.result["titles"] == ["Small-Space Composting", "Bokashi Basics", "Worm Bins 101"]
    assert request.result["offline_model"] is False
    assert request.model_name == "inkwell-test-model"
    assert (request.progress, request.current_step, request.attempts) == (100, "Done", 1)
    assert request.created_at <= request.started_at <= request.finished_at
    assert event_types(db, request.job_id) == ["deferred", "started", "succeeded"]
    # The prompt carried the editor's topic and the API key went in the header, not the body.
    sent = llm_server.chat_requests[0]
    assert "composting in small apartments" in json.dumps(sent.body)
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.body["stream"] is True


def test_progress_follows_streamed_tokens_while_the_job_runs(db, start_worker, llm_server):
    llm_server.push(ok(delay_per_chunk=0.15, chunks=20))  # about 3 s of streaming
    request_id = submit(db)
    start_worker()

    seen = []

    def record_until_finished():
        request = get_request(db, request_id)
        seen.append((request.status, request.progress, request.current_step, request.partial_text))
        return request.is_finished

    wait_for(record_until_finished, timeout=30, interval=0.05, message="the job to finish")
    running = [s for s in seen if s[0] == "running"]
    midway = {progress for status, progress, *_ in running if 10 < progress < 100}
    assert len(midway) >= 3, f"progress should move in steps while streaming, saw {sorted(midway)}"
    assert [p for _, p, *_ in seen] == sorted(p for _, p, *_ in seen), "progress never goes backwards"
    assert any(step == "Generating titles…" for _, _, step, _ in running)
    assert any(partial for *_, partial in running), "partial text is visible while streaming"
    assert seen[-1][:3] == ("succeeded", 100, "Done")


def test_non_streaming_endpoint_gives_the_same_result(db, start_worker, llm_server):
    request_id = submit(db, count=2)
    start_worker(extra_env={"INKWELL_LLM_STREAM": "false"})
    request = finished(db, request_id)
    assert request.status == "succeeded"
    assert len(request.result["titles"]) == 2
    assert llm_server.chat_requests[0].body.get("stream") in (None, False)


@pytest.mark.parametrize(
    "fault, code",
    [
        (error(429, retry_after=0.5), "rate_limited"),
        (error(503), "model_server_error"),
        (stall(10), "model_timeout"),
        (drop_mid_stream(), "model_connection_dropped"),
    ],
)
def test_transient_fault_is_retried_then_succeeds(db, start_worker, llm_server, fault, code):
    llm_server.push(fault)
    request_id = submit(db)
    worker = start_worker(extra_env={"INKWELL_LLM_TIMEOUT_SECONDS": "1"})
    request = finished(db, request_id)

    assert request.status == "succeeded", worker.log
    assert request.attempts == 2
    assert request.error_code is None
    assert llm_server.request_count == 2
    assert "deferred_for_retry" in event_types(db, request.job_id)
    assert code in worker.log and "will retry" in worker.log


def test_retry_after_header_is_honoured(db, start_worker, llm_server):
    llm_server.push(error(429, retry_after=2))
    request_id = submit(db)
    start_worker()
    finished(db, request_id)
    first, second = llm_server.chat_requests[:2]
    assert second.received_at - first.received_at >= 1.9


def test_transient_fault_that_persists_fails_after_three_attempts(db, start_worker, llm_server):
    llm_server.set_script([error(500), error(500), error(500)])
    request_id = submit(db)
    start_worker()
    request = finished(db, request_id)
    assert request.status == "failed"
    assert request.attempts == 3
    assert request.error_code == "model_server_error"
    assert "500" in request.error_message
    assert llm_server.request_count == 3


@pytest.mark.parametrize(
    "status, code, hint",
    [(401, "model_auth_failed", "INKWELL_LLM_API_KEY"), (400, "model_bad_request", "400"), (404, "model_not_found", "INKWELL_LLM_MODEL")],
)
def test_permanent_model_error_fails_at_once_with_its_code(db, start_worker, llm_server, status, code, hint):
    llm_server.push(error(status))
    request_id = submit(db)
    start_worker()
    request = finished(db, request_id)
    assert request.status == "failed"
    assert request.attempts == 1
    assert request.error_code == code
    assert hint in request.error_message
    assert llm_server.request_count == 1


def test_unparseable_answer_gets_one_repair_attempt_that_can_succeed(db, start_worker, llm_server):
    llm_server.push(garbage())
    request_id = submit(db)
    start_worker()
    request = finished(db, request_id)
    assert request.status == "succeeded"
    assert request.attempts == 1
    repair = llm_server.chat_requests[1].body["messages"]
    assert repair[-2]["role"] == "assistant" and "Sure! Here are some titles" in repair[-2]["content"]
    assert "not valid JSON" in repair[-1]["content"]


def test_answer_still_unparseable_after_repair_fails_with_invalid_model_output(db, start_worker, llm_server):
    llm_server.set_script([garbage(), garbage()])
    request_id = submit(db)
    start_worker()
    request = finished(db, request_id)
    assert request.status == "failed"
    assert request.error_code == "invalid_model_output"
    assert "repair" in request.error_message
    assert request.attempts == 1
    assert llm_server.request_count == 2


def test_offline_model_answers_when_no_endpoint_is_configured(db, start_worker, llm_server):
    request_id = submit(db, topic="sourdough for beginners", count=4)
    start_worker(extra_env={"INKWELL_LLM_BASE_URL": "", "INKWELL_LLM_API_KEY": "", "INKWELL_OFFLINE_MODEL_SECONDS": "0.2"})
    request = finished(db, request_id)
    assert request.status == "succeeded"
    assert request.offline_model is True and request.result["offline_model"] is True
    assert request.model_name == "inkwell-offline"
    assert len(request.result["titles"]) == 4
    assert all("Sourdough" in title for title in request.result["titles"])
    assert llm_server.request_count == 0
