"""SDK errors become stable codes with messages a person can act on."""

from __future__ import annotations

import httpx2
import openai
import pytest

from queue_tasks.errors import PermanentJobError, TransientJobError
from queue_tasks.llm import classify_api_error


def status_error(status: int, headers: dict | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://model.test/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request, json={"error": {"message": "nope"}})
    cls = {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        403: openai.PermissionDeniedError,
        404: openai.NotFoundError,
        429: openai.RateLimitError,
    }.get(status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return cls("nope", response=response, body={"error": {"message": "nope"}})


@pytest.mark.parametrize(
    "status, kind, code",
    [
        (400, PermanentJobError, "model_bad_request"),
        (401, PermanentJobError, "model_auth_failed"),
        (403, PermanentJobError, "model_permission_denied"),
        (404, PermanentJobError, "model_not_found"),
        (408, TransientJobError, "model_server_error"),
        (422, PermanentJobError, "model_bad_request"),
        (429, TransientJobError, "rate_limited"),
        (500, TransientJobError, "model_server_error"),
        (503, TransientJobError, "model_server_error"),
    ],
)
def test_status_codes_map_to_transient_or_permanent_codes(status, kind, code):
    classified = classify_api_error(status_error(status), "gpt-test")
    assert isinstance(classified, kind)
    assert classified.code == code


def test_retry_after_header_is_kept():
    assert classify_api_error(status_error(429, {"retry-after": "7"}), "m").retry_after == 7.0


def test_unreadable_retry_after_is_ignored():
    assert classify_api_error(status_error(429, {"retry-after": "soon"}), "m").retry_after is None


def test_timeouts_and_connection_errors_are_transient():
    request = httpx2.Request("POST", "http://model.test/v1/chat/completions")
    assert classify_api_error(openai.APITimeoutError(request=request), "m").code == "model_timeout"
    assert classify_api_error(openai.APIConnectionError(request=request), "m").code == "model_unreachable"


def test_not_found_message_names_the_model_and_the_settings():
    message = classify_api_error(status_error(404), "llama3:8b").message
    assert "'llama3:8b'" in message and "INKWELL_LLM_MODEL" in message


@pytest.mark.parametrize("status, looks_down", [(500, False), (502, True), (503, True), (504, True), (429, False), (408, False)])
def test_only_gateway_answers_look_like_an_endpoint_that_is_down(status, looks_down):
    # One such failure is the request's own; several in a row across jobs are an outage (runner.py).
    assert classify_api_error(status_error(status), "m").endpoint_down is looks_down


def test_time_outs_and_refused_connections_look_like_an_endpoint_that_is_down():
    request = httpx2.Request("POST", "http://model.test/v1/chat/completions")
    assert classify_api_error(openai.APITimeoutError(request=request), "m").endpoint_down
    assert classify_api_error(openai.APIConnectionError(request=request), "m").endpoint_down
