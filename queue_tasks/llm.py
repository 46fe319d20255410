"""The model client: one wrapper over the official `openai` SDK for every job kind.

It asks for a structured answer (a pydantic model, as a JSON schema response format),
streams it when the endpoint allows so progress can follow the tokens, validates it, gives the
model one chance to repair an answer that does not fit the schema, and turns every SDK error
into a TransientJobError or PermanentJobError with a stable code.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

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

# Model output longer than this is cut off: it is never needed and must not fill the database.
MAX_OUTPUT_CHARS = 200_000


@dataclass
class ModelAnswer(Generic[ResultT]):
    parsed: ResultT
    model: str
    offline_model: bool
    tokens_used: int | None


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

    async def generate(
        self, *, messages: list[dict], result_type: type[ResultT], on_text: OnText | None = None
    ) -> ModelAnswer[ResultT]:
        text, tokens = await self._complete(messages, result_type, on_text)
        try:
            parsed = _parse(text, result_type)
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
            text, more_tokens = await self._complete(repair_messages, result_type, None)
            tokens = (tokens or 0) + (more_tokens or 0) if tokens is not None or more_tokens is not None else None
            try:
                parsed = _parse(text, result_type)
            except ValueError as second_error:
                raise PermanentJobError(
                    "invalid_model_output",
                    f"The model's answer did not fit the expected format, even after one repair attempt: {second_error}",
                ) from None
        return ModelAnswer(parsed=parsed, model=self.model, offline_model=self.offline_model, tokens_used=tokens)

    async def _complete(
        self, messages: list[dict], result_type: type[pydantic.BaseModel], on_text: OnText | None
    ) -> tuple[str, int | None]:
        response_format = type_to_response_format_param(result_type)
        streaming_started = False
        try:
            if not self.stream:
                completion = await self._client.chat.completions.create(
                    model=self.model, messages=messages, response_format=response_format
                )
                text = (completion.choices[0].message.content or "") if completion.choices else ""
                return text[:MAX_OUTPUT_CHARS], completion.usage.total_tokens if completion.usage else None
            stream = await self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format=response_format,
                stream=True,
                stream_options={"include_usage": True},
            )
            streaming_started = True
            parts: list[str] = []
            received = 0
            tokens = None
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        tokens = chunk.usage.total_tokens
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            parts.append(choice.delta.content)
                            received += len(choice.delta.content)
                    if received > MAX_OUTPUT_CHARS:
                        break
                    if on_text is not None and chunk.choices:
                        await on_text("".join(parts))
            return "".join(parts)[:MAX_OUTPUT_CHARS], tokens
        except (openai.APIConnectionError, httpx2.TransportError) as error:
            if streaming_started and not isinstance(error, (openai.APITimeoutError, httpx2.TimeoutException)):
                raise TransientJobError(
                    "model_connection_dropped", "The connection to the model broke while the answer was streaming in."
                ) from None
            if isinstance(error, openai.APIError):
                raise classify_api_error(error, self.model) from None
            raise TransientJobError("model_unreachable", f"The model endpoint could not be reached: {error}") from None
        except openai.APIError as error:
            raise classify_api_error(error, self.model) from None


def _parse(text: str, result_type: type[ResultT]) -> ResultT:
    if not text.strip():
        raise ValueError("the answer was empty")
    try:
        return result_type.model_validate_json(text)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in error.errors()[:3]
        )
        raise ValueError(problems) from None


def _retry_after_seconds(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify_api_error(error: openai.APIError, model: str) -> TransientJobError | PermanentJobError:
    if isinstance(error, openai.APITimeoutError):
        return TransientJobError("model_timeout", "The model did not answer in time.")
    if isinstance(error, openai.APIConnectionError):
        return TransientJobError("model_unreachable", "The model endpoint could not be reached.")
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
                "model_server_error", f"The model endpoint failed ({status}).", _retry_after_seconds(error)
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
