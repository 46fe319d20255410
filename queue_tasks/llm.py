"""The model client: one wrapper over the official `openai` SDK for every job kind.

It asks for a structured answer (a pydantic model, as a JSON schema response format),
streams it when the endpoint allows so progress can follow the tokens, validates it, gives the
model one chance to repair an answer that does not fit the schema, and turns every SDK error
into a TransientJobError or PermanentJobError with a stable code.

A streamed answer is requested through the SDK (`with_streaming_response`: its request building,
auth, errors and timeouts) but its `data:` lines are read here with `json.loads`: the SDK would
build a pydantic `ChatCompletionChunk` per chunk, ~40 times the cost of reading the JSON, and a
real answer is hundreds of chunks.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import httpx2
import openai
import pydantic
from openai.lib._parsing._completions import type_to_response_format_param

from inkwell_settings import InkwellSettings
from queue_tasks.errors import PermanentJobError, TransientJobError
from queue_tasks.offline_model import OFFLINE_BASE_URL, OFFLINE_MODEL_NAME, OfflineModel

ResultT = TypeVar("ResultT", bound=pydantic.BaseModel)
# Called with the text received so far while the answer streams in.
OnText = Callable[[str], Awaitable[None]]
# Asked at each streamed piece whether on_text would use the text now (a progress write is due);
# the text so far is joined only then. Without it, on_text is called at every piece.
TextDue = Callable[[], bool]

# The request a model call is made for, sent as this header so an endpoint's own log can be joined
# with Inkwell's history. Set by the runner for each job (each job runs in its own asyncio task).
REQUEST_ID_HEADER = "X-Inkwell-Request-Id"
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("inkwell_request_id", default=None)

# Model output longer than this is cut off: it is never needed and must not fill the database.
MAX_OUTPUT_CHARS = 200_000


@dataclass
class ModelAnswer(Generic[ResultT]):
    parsed: ResultT
    model: str
    offline_model: bool
    tokens_used: int | None


class _Completion(NamedTuple):
    text: str
    tokens: int | None
    finish_reason: str | None


@functools.cache
def response_format_for(result_type: type[pydantic.BaseModel]) -> dict:
    """The JSON-schema response format for a result type, built once per type (it walks the
    pydantic schema: ~2 ms, on every model call otherwise)."""
    return type_to_response_format_param(result_type)


class LLMClient:
    def __init__(self, settings: InkwellSettings):
        self.offline_model = settings.offline_model
        self.stream = settings.llm_stream
        timeout = httpx2.Timeout(settings.llm_timeout_seconds, connect=min(10.0, settings.llm_timeout_seconds))
        if self.offline_model:
            self.model = OFFLINE_MODEL_NAME
            http_client = httpx2.AsyncClient(transport=OfflineModel(settings.offline_model_seconds).transport())
            self._client = openai.AsyncOpenAI(
                base_url=OFFLINE_BASE_URL, api_key="offline", max_retries=0, timeout=timeout, http_client=http_client
            )
        else:
            self.model = settings.llm_model
            api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
            self._client = openai.AsyncOpenAI(
                base_url=settings.llm_base_url, api_key=api_key, max_retries=0, timeout=timeout
            )

    async def close(self) -> None:
        await self._client.close()

    async def endpoint_answers(self, timeout: float = 5.0) -> bool:
        """Whether the endpoint answers at all (its model list; any answer but 502/503/504 counts): asked
        before a failure that looks like an outage is made a request's final one (runner.py)."""
        try:
            await self._client.with_options(timeout=timeout).models.list()
        except (openai.APIConnectionError, httpx2.TransportError):
            return False
        except openai.APIStatusError as error:
            return error.status_code not in (502, 503, 504)
        return True

    async def generate(
        self,
        *,
        messages: list[dict],
        result_type: type[ResultT],
        on_text: OnText | None = None,
        text_due: TextDue | None = None,
    ) -> ModelAnswer[ResultT]:
        text, tokens, finish_reason = await self._complete(messages, result_type, on_text, text_due)
        try:
            parsed = _parse(text, result_type, finish_reason)
        except ValueError as first_error:
            # One repair attempt: show the model its answer and what is wrong with it.
            repair_messages = messages + [
                {"role": "assistant", "content": text[:20_000]},
                {
                    "role": "user",
                    "content": f"That answer is not valid JSON for the required schema ({first_error}). "
                    "Reply again with only the corrected JSON.",
                },
            ]
            text, more_tokens, finish_reason = await self._complete(repair_messages, result_type, None, None)
            tokens = (tokens or 0) + (more_tokens or 0) if tokens is not None or more_tokens is not None else None
            try:
                parsed = _parse(text, result_type, finish_reason)
            except ValueError as second_error:
                raise PermanentJobError(
                    "invalid_model_output",
                    f"The model's answer did not fit the expected format, even after one repair attempt: {second_error}",
                ) from None
        return ModelAnswer(parsed=parsed, model=self.model, offline_model=self.offline_model, tokens_used=tokens)

    async def _complete(
        self,
        messages: list[dict],
        result_type: type[pydantic.BaseModel],
        on_text: OnText | None,
        text_due: TextDue | None,
    ) -> _Completion:
        response_format = response_format_for(result_type)
        # The body goes as `extra_body`, which the SDK sends as it is (and which wins over `messages=[]`):
        # passed as parameters, it would be walked against the SDK's TypedDicts on every call
        # (`async_transform`, ~1 ms for a short prompt) to change nothing in plain JSON like ours.
        streaming_started = False
        headers = request_headers()
        try:
            if not self.stream:
                completion = await self._client.chat.completions.create(
                    model=self.model, messages=[], extra_body={"messages": messages, "response_format": response_format},
                    extra_headers=headers,
                )
                if not completion.choices:
                    return _Completion("", completion.usage.total_tokens if completion.usage else None, None)
                choice = completion.choices[0]
                text = choice.message.content or ""
                return _Completion(
                    text[:MAX_OUTPUT_CHARS], completion.usage.total_tokens if completion.usage else None, choice.finish_reason
                )
            async with self._client.chat.completions.with_streaming_response.create(
                model=self.model,
                messages=[],
                stream=True,
                extra_body={
                    "messages": messages,
                    "response_format": response_format,
                    "stream_options": {"include_usage": True},
                },
                extra_headers=headers,
            ) as response:
                streaming_started = True
                return await _read_stream(response, on_text, text_due)
        except (openai.APIConnectionError, httpx2.TransportError) as error:
            timed_out = isinstance(error, (openai.APITimeoutError, httpx2.TimeoutException))
            if streaming_started and not timed_out:
                # An endpoint going down breaks every stream it serves: alone, a fault of this request;
                # with others in a row, part of an outage (endpoint_down).
                raise TransientJobError(
                    "model_connection_dropped", "The connection to the model broke while the answer was streaming in.",
                    endpoint_down=True,
                ) from None
            if timed_out:
                # Raised by httpx itself while the stream is read, by the SDK before it starts.
                raise TransientJobError("model_timeout", _TIMEOUT_MESSAGE, endpoint_down=True) from None
            if isinstance(error, openai.APIError):
                raise classify_api_error(error, self.model) from None
            raise TransientJobError(
                "model_unreachable", f"The model endpoint could not be reached: {error}", endpoint_down=True
            ) from None
        except openai.APIError as error:
            raise classify_api_error(error, self.model) from None


def request_headers() -> dict[str, str]:
    """The headers every model call carries: the request it is made for, when there is one."""
    request_id = current_request_id.get()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


_CUT_MESSAGE = "The model's answer stopped before it was complete (no [DONE] and no finish reason): the connection was cut."


async def _lines(response: openai.AsyncAPIResponse) -> AsyncIterator[bytes]:
    """The body's lines, split here: `iter_lines()` would decode and re-split through three more
    generators per network chunk."""
    rest = b""
    async for chunk in response.http_response.aiter_bytes():
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line
    if rest:
        yield rest


async def _read_stream(
    response: openai.AsyncAPIResponse, on_text: OnText | None, text_due: TextDue | None
) -> _Completion:
    """Read a chat completion's server-sent events: content, finish reason and usage, as plain JSON."""
    parts: list[str] = []
    received = 0
    tokens = None
    finish_reason = None
    done = False
    async for line in _lines(response):
        # Past [DONE] the body is still read to its end, so the connection goes back to the pool.
        if done or not line.startswith(b"data:"):
            continue  # also blank separators, comments, `event:` lines
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            continue
        try:
            event = json.loads(data)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            raise openai.APIError(
                f"The model's stream sent an event that is not a JSON object: {data[:100].decode(errors='replace')!r}",
                response.http_response.request,
                body=None,
            ) from None
        if event.get("error"):
            # What the SDK raises for an error event in a stream.
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else None
            raise openai.APIError(
                message if isinstance(message, str) and message else "An error occurred during streaming",
                response.http_response.request,
                body=error,
            )
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
            tokens = usage["total_tokens"]
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            continue
        choice = choices[0]
        finish_reason = choice.get("finish_reason") or finish_reason
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        if not content or not isinstance(content, str):
            continue
        parts.append(content)
        received += len(content)
        if received > MAX_OUTPUT_CHARS:
            break
        if on_text is not None and (text_due is None or text_due()):
            await on_text("".join(parts))
    if not done and finish_reason is None and received <= MAX_OUTPUT_CHARS:
        # A stream that ends without [DONE] or a finish reason was cut (a proxy's idle time-out, a
        # restarted server): what arrived is a fragment, not a bad answer, and another attempt may succeed.
        raise TransientJobError("model_connection_dropped", _CUT_MESSAGE, endpoint_down=True)
    return _Completion("".join(parts)[:MAX_OUTPUT_CHARS], tokens, finish_reason)


def _parse(text: str, result_type: type[ResultT], finish_reason: str | None = None) -> ResultT:
    if not text.strip():
        raise ValueError("the answer was empty")
    try:
        return result_type.model_validate_json(text)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in error.errors()[:3]
        )
        if finish_reason == "length":
            problems += " (the answer was cut off at the model's output limit)"
        raise ValueError(problems) from None


def _retry_after_seconds(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_TIMEOUT_MESSAGE = "The model did not answer in time."


def classify_api_error(error: openai.APIError, model: str) -> TransientJobError | PermanentJobError:
    if isinstance(error, openai.APITimeoutError):
        return TransientJobError("model_timeout", _TIMEOUT_MESSAGE, endpoint_down=True)
    if isinstance(error, openai.APIConnectionError):
        return TransientJobError("model_unreachable", "The model endpoint could not be reached.", endpoint_down=True)
    if isinstance(error, openai.RateLimitError):
        return TransientJobError(
            "rate_limited", "The model endpoint is rate limiting requests (429).", _retry_after_seconds(error)
        )
    if isinstance(error, openai.AuthenticationError):
        return PermanentJobError(
            "model_auth_failed", "The model endpoint rejected the API key (401): check INKWELL_LLM_API_KEY."
        )
    if isinstance(error, openai.PermissionDeniedError):
        return PermanentJobError("model_permission_denied", "The API key may not use this model (403).")
    if isinstance(error, openai.NotFoundError):
        return PermanentJobError(
            "model_not_found", f"Model {model!r} was not found (404): check INKWELL_LLM_MODEL and INKWELL_LLM_BASE_URL."
        )
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status in (408, 409) or status >= 500:
            return TransientJobError(
                "model_server_error", f"The model endpoint failed ({status}).", _retry_after_seconds(error),
                # A gateway's "nothing behind me" answers: with several jobs in a row, an outage (model_outage.py).
                endpoint_down=status in (502, 503, 504),
            )
        return PermanentJobError("model_bad_request", f"The model endpoint refused the request ({status}): {_short(error)}")
    return TransientJobError("model_error", f"The model call failed: {_short(error)}")


def _short(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    try:
        text = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    return str(text)[:300]
