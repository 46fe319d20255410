"""The model client reads streamed answers itself (plain JSON per `data:` line, not the SDK's chunk
models): against the local OpenAI-compatible server it must give what the SDK's own stream gives,
and fail the same way."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from inkwell_settings import InkwellSettings
from queue_tasks.errors import PermanentJobError, TransientJobError
from queue_tasks.llm import MAX_OUTPUT_CHARS, LLMClient
from queue_tasks.models import TitleList, TitlesInput
from queue_tasks.titles import titles_prompt
from tests.support.llm_server import LLMTestServer, cut_stream, drop_mid_stream, error, ok

pytestmark = pytest.mark.timeout(30)

MODEL = "inkwell-test-model"
TITLES = ["Small-Space Composting", "Bokashi Basics", "Worm Bins 101", "Compost Without a Garden"]
MESSAGES = titles_prompt(TitlesInput(topic="composting in small apartments", count=4))


def model_client(server: LLMTestServer, **settings) -> LLMClient:
    return LLMClient(
        InkwellSettings(
            database_url=None, llm_base_url=server.base_url, llm_api_key="test-key", llm_model=MODEL, **settings
        )
    )


def generate(server: LLMTestServer, *, on_text=None, text_due=None, **settings):
    async def run():
        client = model_client(server, **settings)
        try:
            return await client.generate(messages=MESSAGES, result_type=TitleList, on_text=on_text, text_due=text_due)
        finally:
            await client.close()

    return asyncio.run(run())


def sdk_stream(server: LLMTestServer) -> tuple[str, int]:
    """The same request read by the SDK's own stream (a ChatCompletionChunk per chunk)."""
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    return text, chunks[-1].usage.total_tokens


@pytest.fixture
def server():
    with LLMTestServer() as running:
        running.responder = lambda request: json.dumps({"titles": TITLES})
        yield running


def test_streamed_answer_gives_the_same_text_and_usage_as_the_sdks_own_stream(server):
    server.set_script([ok(chunks=20), ok(chunks=20)])
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    answer = generate(server, on_text=on_text)
    sdk_text, sdk_tokens = sdk_stream(server)

    assert answer.parsed == TitleList.model_validate_json(sdk_text)
    assert answer.parsed.titles == TITLES
    assert answer.tokens_used == sdk_tokens > 0
    # Without text_due, on_text follows every piece, each time with all the text so far.
    assert len(seen) == 20 and seen[-1] == sdk_text
    assert all(later.startswith(earlier) for earlier, later in zip(seen, seen[1:]))


def test_the_request_carries_messages_schema_and_usage_option_as_the_sdk_would_send_them(server):
    generate(server)

    [sent] = server.chat_requests
    assert sent.body["model"] == MODEL
    assert sent.body["messages"] == MESSAGES
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.body["response_format"]["json_schema"]["name"] == "TitleList"
    assert sent.headers["authorization"] == "Bearer test-key"


def test_on_text_is_called_only_when_text_due_says_a_write_is_due(server):
    server.push(ok(chunks=20))
    asked = 0
    seen: list[str] = []

    def every_fifth_piece() -> bool:
        nonlocal asked
        asked += 1
        return asked % 5 == 0

    async def on_text(text: str) -> None:
        seen.append(text)

    answer = generate(server, on_text=on_text, text_due=every_fifth_piece)

    assert asked == 20
    assert len(seen) == 4
    assert seen[-1] == json.dumps({"titles": TITLES})
    assert answer.parsed.titles == TITLES


def test_non_streaming_answer_is_the_same(server):
    answer = generate(server, llm_stream=False)

    assert answer.parsed.titles == TITLES
    assert answer.tokens_used and answer.tokens_used > 0
    assert server.chat_requests[0].body.get("stream") in (None, False)
    assert server.chat_requests[0].body["response_format"]["json_schema"]["name"] == "TitleList"


def test_connection_dropped_mid_stream_is_transient(server):
    server.push(drop_mid_stream())

    with pytest.raises(TransientJobError) as raised:
        generate(server)

    assert raised.value.code == "model_connection_dropped"


def test_a_stream_that_ends_without_done_or_finish_reason_is_a_dropped_connection_not_bad_output(server):
    # The body ends cleanly at the HTTP level: only the missing [DONE] and finish reason tell it was cut.
    server.push(cut_stream())

    with pytest.raises(TransientJobError) as raised:
        generate(server)

    assert raised.value.code == "model_connection_dropped"
    assert server.request_count == 1  # no repair call: a fragment is not an answer to repair


def test_every_model_call_carries_its_request_id_header(server):
    from queue_tasks.llm import current_request_id

    async def run():
        current_request_id.set("3f1c0c8e-0000-4000-8000-000000000001")
        client = model_client(server)
        try:
            await client.generate(messages=MESSAGES, result_type=TitleList)
        finally:
            await client.close()

    asyncio.run(run())

    assert server.chat_requests[0].headers["x-inkwell-request-id"] == "3f1c0c8e-0000-4000-8000-000000000001"
    assert [(c.request_id, c.outcome) for c in server.calls] == [("3f1c0c8e-0000-4000-8000-000000000001", "ok")]


def test_model_going_silent_mid_stream_is_a_transient_time_out(server):
    server.push(ok(delay_per_chunk=3, chunks=4))  # headers at once, then 3 s before each chunk

    with pytest.raises(TransientJobError) as raised:
        generate(server, llm_timeout_seconds=0.5)

    assert raised.value.code == "model_timeout"


def test_rate_limit_keeps_the_retry_after_of_the_response(server):
    server.push(error(429, retry_after=7))

    with pytest.raises(TransientJobError) as raised:
        generate(server)

    assert (raised.value.code, raised.value.retry_after) == ("rate_limited", 7.0)


def test_unauthorized_is_permanent(server):
    server.push(error(401))

    with pytest.raises(PermanentJobError) as raised:
        generate(server)

    assert raised.value.code == "model_auth_failed"


def test_answer_longer_than_the_cap_is_cut_and_gets_its_one_repair_attempt(server):
    server.responder = lambda request: json.dumps({"titles": ["x" * (MAX_OUTPUT_CHARS + 50_000)]})

    with pytest.raises(PermanentJobError) as raised:
        generate(server)

    assert raised.value.code == "invalid_model_output"
    first, repair = server.chat_requests
    assert repair.body["messages"][-2] == {"role": "assistant", "content": '{"titles": ["' + "x" * (20_000 - 13)}
