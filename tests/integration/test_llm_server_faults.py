"""The local model server's fault injection (used by the chaos suite) and its images endpoint,
seen through the real openai SDK."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from tests.support.llm_server import GARBAGE_CONTENT, SCHEMA_VIOLATION_CONTENT, FaultInjection, LLMTestServer

pytestmark = pytest.mark.timeout(60)


def ask(server: LLMTestServer, *, stream: bool, timeout: float = 1.0) -> str:
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=timeout)
    messages = [{"role": "user", "content": "Topic: kites"}]
    if not stream:
        return client.chat.completions.create(model="m", messages=messages).choices[0].message.content
    chunks = client.chat.completions.create(model="m", messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("rate_limited", openai.RateLimitError),
        ("server_error_500", openai.InternalServerError),
        ("server_error_503", openai.InternalServerError),
        ("stall", openai.APITimeoutError),
        ("drop_mid_stream", openai.APIConnectionError),
    ],
)
def test_each_transport_fault_reaches_the_client_as_its_sdk_error(kind, error):
    with LLMTestServer(faults=FaultInjection(rate=1.0, kinds=(kind,), stall_seconds=3, max_latency=0)) as server:
        with pytest.raises(error):
            ask(server, stream=True)
        assert server.fault_counts == {kind: 1}


def test_a_rate_limit_fault_carries_retry_after():
    with LLMTestServer(faults=FaultInjection(rate=1.0, kinds=("rate_limited",), retry_after=2)) as server:
        with pytest.raises(openai.RateLimitError) as raised:
            ask(server, stream=False)
    assert raised.value.response.headers["retry-after"] == "2"


def test_output_faults_answer_with_malformed_or_schema_violating_json():
    with LLMTestServer(faults=FaultInjection(rate=1.0, kinds=("malformed_json",), max_latency=0)) as server:
        assert ask(server, stream=True) == GARBAGE_CONTENT
    with LLMTestServer(faults=FaultInjection(rate=1.0, kinds=("schema_violation",), max_latency=0)) as server:
        answer = ask(server, stream=False)
    assert answer == SCHEMA_VIOLATION_CONTENT and json.loads(answer)["items"] == "not a list"


def test_the_fault_rate_is_roughly_kept_and_the_same_seed_draws_the_same_faults():
    def draws(seed):
        with LLMTestServer(faults=FaultInjection(rate=0.3, kinds=("server_error_500",), max_latency=0, seed=seed)) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=5)
            outcomes = []
            for _ in range(100):
                try:
                    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Topic: kites"}])
                    outcomes.append("ok")
                except openai.InternalServerError:
                    outcomes.append("500")
            return outcomes, dict(server.fault_counts)

    first, counts = draws(3)
    assert draws(3)[0] == first
    assert 15 <= counts["server_error_500"] <= 45, counts
    assert counts["ok"] + counts["server_error_500"] == 100


def test_the_images_endpoint_answers_with_a_png():
    with LLMTestServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        image = base64.b64decode(client.images.generate(model="gpt-image-1", prompt="a kite", n=1).data[0].b64_json)
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
