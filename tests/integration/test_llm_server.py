"""The local OpenAI-compatible server, driven by the real openai SDK as the worker will drive it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import openai
import pydantic
import pytest

from tests.support.llm_server import (
    LLMTestServer,
    drop_mid_stream,
    error,
    example_for_schema,
    garbage,
    ok,
    stall,
)

pytestmark = pytest.mark.timeout(10)

MODEL = "inkwell-test-model"
MESSAGES = [
    {"role": "system", "content": "You suggest article titles."},
    {"role": "user", "content": "Sourdough baking at high altitude"},
]


class Titles(pydantic.BaseModel):
    titles: list[str]


class Author(pydantic.BaseModel):
    name: str
    age: int


class Article(pydantic.BaseModel):
    author: Author
    tags: list[str] = pydantic.Field(min_length=5)
    published: bool
    subtitle: str | None


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer() as running:
        yield running


@pytest.fixture
def client(server: LLMTestServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as sync_client:
        yield sync_client


def test_parse_returns_titles_that_mention_the_user_topic(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Titles)

    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    assert len(parsed.titles) == 3
    assert all("Sourdough baking at high altitude" in title for title in parsed.titles)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_parse_fills_nested_models_and_honours_min_items(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Article)

    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    assert parsed.author.age == 1
    assert len(parsed.tags) == 5
    assert parsed.published is True


def test_schema_example_follows_refs_and_respects_max_items() -> None:
    schema = {
        "type": "object",
        "properties": {"people": {"type": "array", "items": {"$ref": "#/$defs/Person"}, "maxItems": 2}},
        "$defs": {
            "Person": {"type": "object", "properties": {"name": {"type": "string"}, "score": {"type": "number"}}},
        },
    }

    example = example_for_schema(schema, topic="chess")

    assert example == {"people": [{"name": "Name about chess", "score": 1.0}] * 2}


def test_stream_yields_several_content_deltas_and_a_parsed_final_completion(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES, response_format=Titles) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()

    assert len(deltas) >= 3
    assert final.choices[0].message.parsed == Titles.model_validate_json("".join(deltas))
    assert final.choices[0].finish_reason == "stop"


def test_stream_sends_usage_chunk_when_asked(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stream_delay_per_chunk_spreads_tokens_over_time(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.push(ok(delay_per_chunk=0.05, chunks=4))
    arrivals = []

    for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        arrivals.append(time.monotonic())

    # role chunk + 4 content chunks + finish chunk, each 50 ms apart, arriving one by one
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] >= 0.2


def test_rate_limit_raises_rate_limit_error_with_retry_after_header(
    server: LLMTestServer, client: openai.OpenAI
) -> None:
    server.push(error(429, retry_after=1))

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Titles)

    assert raised.value.response.headers["retry-after"] == "1"
    assert raised.value.code == "rate_limit_exceeded"


def test_server_error_raises_internal_server_error(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.push(error(500))

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Titles)


def test_unauthorized_raises_authentication_error_with_openai_error_body(
    server: LLMTestServer, client: openai.OpenAI
) -> None:
    server.push(error(401))

    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert raised.value.code == "invalid_api_key"
    assert "Incorrect API key" in raised.value.message


def test_stall_longer_than_client_timeout_raises_api_timeout_error(
    server: LLMTestServer, client: openai.OpenAI
) -> None:
    server.push(stall(5))

    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, timeout=0.5)

    assert time.monotonic() - started < 1.5
    assert server.wait_for_disconnect(timeout=1)


def test_stop_ends_a_stalled_request_promptly() -> None:
    server = LLMTestServer().start()
    server.push(stall(30))
    stopper = threading.Timer(0.2, server.stop)

    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as client:
        started = time.monotonic()
        stopper.start()
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)

    stopper.join()
    assert time.monotonic() - started < 1.5
    assert server.disconnects == []


def test_garbage_makes_parse_raise_a_validation_error(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.push(garbage())

    with pytest.raises(pydantic.ValidationError):
        client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Titles)


def test_garbage_stream_delivers_prose_instead_of_json(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.push(garbage())

    chunks = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)

    assert content.startswith("Sure! Here are some titles")
    with pytest.raises(ValueError):
        json.loads(content)


def test_drop_mid_stream_raises_api_connection_error_during_iteration(
    server: LLMTestServer, client: openai.OpenAI
) -> None:
    server.push(drop_mid_stream())
    received = []

    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            received.append(chunk)

    assert len(received) == 3


def test_drop_mid_response_raises_api_connection_error_without_streaming(
    server: LLMTestServer, client: openai.OpenAI
) -> None:
    server.push(drop_mid_stream())

    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


def test_closing_a_stream_early_is_recorded_as_a_disconnect(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.push(ok(delay_per_chunk=0.02, chunks=100))

    with client.chat.completions.stream(model=MODEL, messages=MESSAGES, response_format=Titles) as stream:
        next(event for event in stream if event.type == "content.delta")

    assert server.wait_for_disconnect(timeout=1)
    [disconnect] = server.disconnects
    assert disconnect.request_number == 1
    assert disconnect.chunks_sent < 100
    assert server.wait_for_active(0, timeout=1)


def test_cancelling_an_async_stream_closes_the_model_request(server: LLMTestServer) -> None:
    server.push(ok(delay_per_chunk=0.02, chunks=100))

    async def consume_until_cancelled() -> None:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as client:
            async def read_stream() -> None:
                async with client.chat.completions.stream(
                    model=MODEL, messages=MESSAGES, response_format=Titles
                ) as stream:
                    async for _ in stream:
                        pass

            task = asyncio.create_task(read_stream())
            assert await asyncio.to_thread(server.wait_for_requests, 1, 1.0)
            await asyncio.sleep(0.1)  # let some tokens arrive first
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(consume_until_cancelled())

    assert server.wait_for_disconnect(timeout=1)
    assert server.wait_for_active(0, timeout=1)


def test_script_is_consumed_in_order_then_falls_back_to_default(
    server: LLMTestServer, client: openai.OpenAI
) -> None:
    server.set_script([error(503), error(400), ok()])
    server.default_behaviour = error(500)

    outcomes = []
    for _ in range(4):
        try:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            outcomes.append(200)
        except openai.APIStatusError as failure:
            outcomes.append(failure.status_code)

    assert outcomes == [503, 400, 200, 500]
    assert server.request_count == 4


def test_requests_are_recorded_with_path_headers_and_body(server: LLMTestServer, client: openai.OpenAI) -> None:
    client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Titles)

    [recorded] = server.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == "Bearer test-key"
    assert recorded.body is not None and recorded.body["messages"] == MESSAGES
    assert recorded.body["response_format"]["type"] == "json_schema"


def test_custom_responder_replaces_the_content(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.responder = lambda request: json.dumps({"titles": ["A", "B"]})

    completion = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Titles)

    assert completion.choices[0].message.parsed == Titles(titles=["A", "B"])


def test_models_endpoint_lists_the_served_model(server: LLMTestServer, client: openai.OpenAI) -> None:
    models = client.models.list()

    assert [model.id for model in models] == [server.model]
    assert server.requests[0].path == "/v1/models"
    assert server.chat_requests == []
    assert server.request_count == 0
