"""The built-in offline model: an OpenAI-compatible chat endpoint answered inside the worker.

It plugs into the real `openai` client as its HTTP transport, so a job on the offline model
goes through exactly the same code path (request, streaming, parsing, validation) as a job on
OpenAI, Ollama, vLLM or llama.cpp. Its answers are deterministic (seeded by the prompt),
quick, and built from the prompt's fields so they read as written for that topic. It is a
writing aid for trying Inkwell without a model server, not a language model: every result it
makes is marked as coming from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections.abc import AsyncIterator, Callable

import httpx2

OFFLINE_MODEL_NAME = "inkwell-offline"
OFFLINE_BASE_URL = "http://offline-model.inkwell/v1"

_TITLE_TEMPLATES = [
    "The Complete Guide to {topic}",
    "{n} Ways {topic} Can Help {audience}",
    "Why {topic} Matters More Than You Think",
    "{topic}: Common Mistakes and How to Avoid Them",
    "How to Get Started with {topic}",
    "{topic} for {audience}: A Practical Playbook",
    "What Nobody Tells You About {topic}",
    "{topic}, Explained in Plain English",
    "From Zero to Confident: {topic} Step by Step",
    "{n} {topic} Ideas You Can Use This Week",
    "Is {topic} Worth It? An Honest Look",
    "The Future of {topic}: What to Expect",
    "{topic} Myths, Busted",
    "Lessons Learned from a Year of {topic}",
    "A Beginner's Checklist for {topic}",
    "How {audience} Are Using {topic} Today",
    "The Hidden Costs (and Benefits) of {topic}",
    "{topic}: Questions to Ask Before You Start",
    "Quick Wins with {topic}",
    "{topic} in {n} Minutes a Day",
    "The {topic} Playbook We Wish We Had",
    "Before You Try {topic}, Read This",
]
_TONE_PREFIXES = {
    "playful": "Let's Be Honest: ",
    "friendly": "A Friendly Guide: ",
    "formal": "",
    "bold": "No Excuses: ",
    "professional": "",
}


def _field(prompt: str, label: str) -> str | None:
    match = re.search(rf"^{label}:\s*(.+)$", prompt, re.MULTILINE | re.IGNORECASE)
    return match.group(1).strip() if match else None


_MINOR_WORDS = {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "with"}


def _headline_case(text: str) -> str:
    # Capitalise words the user typed in lower case, except short joining words; keep acronyms.
    words = text.split()
    return " ".join(
        w[:1].upper() + w[1:] if w.islower() and (i == 0 or w not in _MINOR_WORDS) else w
        for i, w in enumerate(words)
    )


def write_titles(prompt: str, rng: random.Random) -> dict:
    topic = _headline_case(_field(prompt, "Topic") or "Your Topic")
    audience = _headline_case(_field(prompt, "Audience") or "Busy Teams")
    tone = (_field(prompt, "Tone") or "").lower()
    count_text = _field(prompt, "Number of titles") or "5"
    count = max(1, min(20, int(count_text))) if count_text.isdigit() else 5
    templates = rng.sample(_TITLE_TEMPLATES, k=min(count, len(_TITLE_TEMPLATES)))
    prefix = next((p for word, p in _TONE_PREFIXES.items() if word in tone), "")
    titles = []
    for i, template in enumerate(templates):
        title = template.format(topic=topic, audience=audience, n=rng.choice([3, 5, 7, 10]))
        titles.append(prefix + title if prefix and i == 0 else title)
    return {"titles": titles}


# One writer per structured answer the tasks ask for, keyed by the response schema's name.
ANSWER_WRITERS: dict[str, Callable[[str, random.Random], dict]] = {"TitleList": write_titles}


def answer(body: dict) -> str:
    """The content the offline model replies with to a chat completion request."""
    prompt = "\n".join(
        m["content"] for m in body.get("messages", []) if m.get("role") == "user" and isinstance(m.get("content"), str)
    )
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    response_format = body.get("response_format") or {}
    schema_name = (response_format.get("json_schema") or {}).get("name")
    writer = ANSWER_WRITERS.get(schema_name)
    if writer is not None:
        return json.dumps(writer(prompt, rng))
    topic = _field(prompt, "Topic") or "your topic"
    return f"(Offline model) Notes on {topic}: start with the reader's question, answer it plainly, end with one next step."


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]


class OfflineModel:
    """Answers `POST /chat/completions` in-process; hand `transport()` to the openai client."""

    def __init__(self, seconds_per_answer: float = 0.0, chunks_per_answer: int = 20):
        self.seconds_per_answer = seconds_per_answer
        self.chunks_per_answer = chunks_per_answer

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        if not request.url.path.endswith("/chat/completions"):
            return httpx2.Response(404, json={"error": {"message": "The offline model only answers chat completions."}})
        body = json.loads(request.content)
        content = answer(body)
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        usage = {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(content) // 4,
            "total_tokens": prompt_chars // 4 + len(content) // 4,
        }
        if body.get("stream"):
            return httpx2.Response(
                200,
                headers={"content-type": "text/event-stream"},
                stream=_EventStream(self._events(content, usage, body)),
            )
        if self.seconds_per_answer:
            await asyncio.sleep(self.seconds_per_answer)
        return httpx2.Response(
            200,
            json={
                "id": "offline-" + hashlib.sha1(content.encode()).hexdigest()[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": OFFLINE_MODEL_NAME,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": usage,
            },
        )

    async def _events(self, content: str, usage: dict, body: dict) -> AsyncIterator[bytes]:
        pieces = _pieces(content, self.chunks_per_answer)
        pause = self.seconds_per_answer / len(pieces) if pieces else 0
        base = {"id": "offline-stream", "object": "chat.completion.chunk", "created": int(time.time()), "model": OFFLINE_MODEL_NAME}

        def event(payload: dict) -> bytes:
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for piece in pieces:
            if pause:
                await asyncio.sleep(pause)
            yield event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            yield event({**base, "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"


class _EventStream(httpx2.AsyncByteStream):
    def __init__(self, events: AsyncIterator[bytes]):
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._events:
            yield chunk

    async def aclose(self) -> None:
        await self._events.aclose()
