"""A local OpenAI-compatible chat server for the test suite.

The openai SDK sends through ``httpx2``, so request-mocking libraries cannot see its calls; integration
tests point the real SDK (and real worker subprocesses) at this server instead. It speaks the wire format
of ``POST /v1/chat/completions`` (plain JSON and ``text/event-stream``) and ``GET /v1/models``, answers
structured-output requests with JSON that fits the requested schema, and plays a FIFO script of faults
(errors, stalls, garbage, dropped streams) so tests can drive every failure path. Stdlib only.
With ``faults=FaultInjection(rate=0.2)`` every unscripted request draws a random fault at that rate
(the chaos suite, bench/chaos.py); ``POST /v1/images/generations`` answers with a small PNG.

    with LLMTestServer() as server:
        server.push(error(429, retry_after=1))
        client = AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)

Run it by hand with ``python -m tests.support.llm_server --port 8089 --delay-per-chunk 0.05``.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import random
import re
import select
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Responder = Callable[[dict[str, Any]], str]

DEFAULT_MODEL = "inkwell-test-model"
GARBAGE_CONTENT = "Sure! Here are some titles: 1. A Great Title 2. Another One 3. The Last One"
# Slice for waits, so stalls and delays notice a stopping server or a departed client quickly.
_POLL_SECONDS = 0.02
_CLIENT_GONE_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)

_ERROR_DETAILS = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this model.", "invalid_request_error", None),
    404: ("Not found.", "invalid_request_error", None),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


# --- Behaviours ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """How the server answers one chat request. Build these with the helper functions below."""

    kind: Literal["ok", "error", "stall", "garbage", "drop_mid_stream", "cut_stream", "schema_violation"]
    delay: float = 0.0  # seconds before a non-streaming answer
    delay_per_chunk: float = 0.0  # seconds before each streamed chunk
    chunks: int = 8  # content pieces in a streamed answer
    status: int = 200
    body: dict[str, Any] | None = None
    retry_after: float | None = None
    seconds: float = 0.0  # how long a stall lasts


def ok(*, delay: float = 0.0, delay_per_chunk: float = 0.0, chunks: int = 8) -> Behaviour:
    """A normal answer; streamed when the request asks for it."""
    return Behaviour("ok", delay=delay, delay_per_chunk=delay_per_chunk, chunks=max(1, chunks))


def error(status: int, body: dict[str, Any] | None = None, retry_after: float | None = None) -> Behaviour:
    """An HTTP error with an OpenAI-style ``{"error": {...}}`` body and optional ``Retry-After`` header."""
    return Behaviour("error", status=status, body=body, retry_after=retry_after)


def stall(seconds: float) -> Behaviour:
    """Read the request, send nothing for ``seconds`` (or until the server stops), then close."""
    return Behaviour("stall", seconds=seconds)


def garbage(*, delay_per_chunk: float = 0.0, chunks: int = 8) -> Behaviour:
    """A 200 answer whose content is chatty prose, not JSON, so structured parsing fails."""
    return Behaviour("garbage", delay_per_chunk=delay_per_chunk, chunks=max(1, chunks))


def schema_violation(*, chunks: int = 8) -> Behaviour:
    """A 200 answer that is valid JSON but not of the requested schema (required fields missing)."""
    return Behaviour("schema_violation", chunks=max(1, chunks))


def drop_mid_stream(*, chunks: int = 8) -> Behaviour:
    """Send headers and part of the answer, then close the socket without finishing the body."""
    return Behaviour("drop_mid_stream", chunks=max(2, chunks))


def cut_stream(*, chunks: int = 8) -> Behaviour:
    """Stream part of the answer, then end the body cleanly with neither a finish reason nor ``[DONE]``
    (a proxy's idle time-out, a restarted server): nothing at the HTTP level says it is incomplete."""
    return Behaviour("cut_stream", chunks=max(2, chunks))


# Content of a schema_violation answer: JSON, but none of the fields any of Inkwell's schemas asks for.
SCHEMA_VIOLATION_CONTENT = json.dumps({"note": "Here is what you asked for", "items": "not a list"})
FAULT_KINDS = ("rate_limited", "server_error_500", "server_error_503", "stall", "drop_mid_stream", "cut_stream",
               "malformed_json", "schema_violation")


@dataclass(frozen=True)
class FaultInjection:
    """Random faults for unscripted requests: each request is a fault with probability ``rate``, the fault
    drawn evenly from ``kinds``; every other answer takes a random 0..``max_latency`` s (random latency).
    ``stall_seconds`` should exceed the client's time-out, so a stall is a time-out on the client side."""

    rate: float = 0.2
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after: float = 1.0
    stall_seconds: float = 10.0
    max_latency: float = 0.2
    seed: int | None = None

    def draw(self, rng: random.Random) -> tuple[str, Behaviour]:
        latency = rng.uniform(0, self.max_latency) if self.max_latency > 0 else 0.0
        if rng.random() >= self.rate:
            return "ok", ok(delay=latency, delay_per_chunk=latency / 8)  # streamed: spread over the chunks
        kind = rng.choice(self.kinds)
        return kind, {
            "rate_limited": lambda: error(429, retry_after=self.retry_after),
            "server_error_500": lambda: error(500),
            "server_error_503": lambda: error(503),
            "stall": lambda: stall(self.stall_seconds),
            "drop_mid_stream": lambda: drop_mid_stream(),
            "cut_stream": lambda: cut_stream(),
            "malformed_json": lambda: garbage(),
            "schema_violation": lambda: schema_violation(),
        }[kind]()


# A valid 1x1 PNG, the images API's answer.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


# --- Observations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names, e.g. headers["authorization"] == "Bearer test-key"
    body: dict[str, Any] | None
    received_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Call:
    """One chat or images call as the server answered it: its own per-request log."""

    request_id: str | None  # the X-Inkwell-Request-Id header
    outcome: str  # "ok", or the fault it was answered with ("rate_limited", "stall", "cut_stream", ...)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Disconnect:
    """A client that hung up before its chat response was complete."""

    request_number: int  # 1-based, in the order chat requests arrived
    behaviour: str
    chunks_sent: int
    at: float = field(default_factory=time.monotonic)


# --- Default content -------------------------------------------------------------------------------


def first_user_text(request_json: dict[str, Any]) -> str:
    """The text of the first user message, whether sent as a string or as content parts."""
    for message in request_json.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content or "")
    return ""


def _topic(request_json: dict[str, Any]) -> str:
    words = first_user_text(request_json).split()
    return " ".join(words[:6]).strip(" .,:;!?") or "your topic"


def default_responder(request_json: dict[str, Any]) -> str:
    """Answer with JSON that fits ``response_format``'s schema, or a short sentence for plain chat."""
    response_format = request_json.get("response_format") or {}
    topic = _topic(request_json)
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return json.dumps(example_for_schema(schema, topic=topic))
    if response_format.get("type") == "json_object":
        return json.dumps({"answer": f"A short answer about {topic}"})
    return f"Here is a short answer about {topic}."


def example_for_schema(schema: dict[str, Any], *, topic: str = "your topic") -> Any:
    """Build a value that validates against a (structured-outputs style) JSON schema."""
    return _example(schema, root=schema, topic=topic, label="item", depth=0)


def _example(schema: dict[str, Any], *, root: dict[str, Any], topic: str, label: str, depth: int) -> Any:
    if "$ref" in schema:
        target = _resolve_ref(root, schema["$ref"])
        return _example(target, root=root, topic=topic, label=label, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            options = schema[combinator]
            # Prefer a real value over null, so Optional fields still carry content.
            chosen = next((o for o in options if o.get("type") != "null"), options[0])
            return _example(chosen, root=root, topic=topic, label=label, depth=depth + 1)

    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")

    if kind == "object":
        return {
            name: _example(sub, root=root, topic=topic, label=name, depth=depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        count = 3 if depth < 8 else 0  # stop recursive schemas from growing forever
        count = max(count, schema.get("minItems", 0))
        count = min(count, schema.get("maxItems", count))
        item_schema = schema.get("items", {})
        singular = label[:-1] if label.endswith("s") and len(label) > 1 else label
        return [
            _example(item_schema, root=root, topic=topic, label=f"{singular} {n}", depth=depth + 1)
            for n in range(1, count + 1)
        ]
    if kind == "integer":
        return _bounded_number(schema, 1)
    if kind == "number":
        return float(_bounded_number(schema, 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema, topic=topic, label=label)


def _resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _bounded_number(schema: dict[str, Any], preferred: int) -> int:
    value = preferred
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - 1)
    return value


def _example_string(schema: dict[str, Any], *, topic: str, label: str) -> str:
    formats = {
        "date-time": "2024-01-01T00:00:00Z",
        "date": "2024-01-01",
        "time": "12:00:00",
        "email": "writer@example.com",
        "uri": "https://example.com/",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    if schema.get("format") in formats:
        return formats[schema["format"]]
    words = re.sub(r"[_\-]+", " ", label).strip()
    text = f"{words[:1].upper()}{words[1:]} about {topic}"
    text = text.ljust(schema.get("minLength", 0), ".")
    return text[: schema.get("maxLength", len(text))]


# --- HTTP ------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    """Handler threads are daemons (ThreadingHTTPServer's default), so a stalled one never blocks exit."""

    # A real server's listen backlog: socketserver's 5 refuses connections under a burst of 40 clients.
    request_queue_size = 128

    def __init__(self, owner: LLMTestServer, address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _ChatHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hung up; that is routine here, and recorded elsewhere."""
        if isinstance(sys.exc_info()[1], (*_CLIENT_GONE_ERRORS, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked bodies so a dropped stream is detectable
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; tests read ``LLMTestServer.requests`` instead."""

    def setup(self) -> None:
        super().setup()
        self.server.owner._track_connection(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        except _CLIENT_GONE_ERRORS:
            pass
        finally:
            self.server.owner._track_connection(self.connection, open_=False)

    # Routing

    def do_GET(self) -> None:
        self._record(body=None)
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": self.server.owner.model, "object": "model", "created": 0, "owned_by": "inkwell-tests"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_error(404)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._record(body=None)
            self._send_error(400, message="The request body is not valid JSON.")
            return
        self._record(body=body)
        if self.path.rstrip("/") == "/v1/images/generations":
            self._answer_image()
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_error(404)
            return

        owner = self.server.owner
        request_number, behaviour = owner._begin_chat(self.headers.get("X-Inkwell-Request-Id"))
        try:
            self._answer_chat(body, request_number, behaviour)
        finally:
            owner._end_chat()

    def _answer_image(self) -> None:
        """An images API answer (one small PNG, base64), or the error or stall a fault injection drew."""
        kind, behaviour = self.server.owner._draw_fault()
        self.server.owner._log_call(self.headers.get("X-Inkwell-Request-Id"), kind)
        if behaviour.kind == "error":
            self._send_error(behaviour.status, body=behaviour.body, retry_after=behaviour.retry_after)
        elif behaviour.kind == "stall":
            self._pause(behaviour.seconds)
            self.close_connection = True
        else:
            self._send_json(200, {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(TINY_PNG).decode()}]})

    # Chat behaviours

    def _answer_chat(self, body: dict[str, Any], request_number: int, behaviour: Behaviour) -> None:
        if behaviour.kind == "error":
            self._send_error(behaviour.status, body=behaviour.body, retry_after=behaviour.retry_after)
            return
        if behaviour.kind == "stall":
            if not self._pause(behaviour.seconds):
                self._note_disconnect(request_number, behaviour, chunks_sent=0)
            self.close_connection = True
            return

        owner = self.server.owner
        content = {"garbage": GARBAGE_CONTENT, "schema_violation": SCHEMA_VIOLATION_CONTENT}.get(behaviour.kind)
        if content is None:
            content = owner.responder(body)
        reply = _ChatReply(body, content, model=body.get("model") or owner.model)
        if body.get("stream"):
            self._stream_chat(reply, request_number, behaviour)
        else:
            self._send_chat(reply, request_number, behaviour)

    def _send_chat(self, reply: _ChatReply, request_number: int, behaviour: Behaviour) -> None:
        if behaviour.delay and not self._pause(behaviour.delay):
            self._note_disconnect(request_number, behaviour, chunks_sent=0)
            self.close_connection = True
            return
        if behaviour.kind not in ("drop_mid_stream", "cut_stream"):
            self._send_json(200, reply.completion())
            return
        # Promise the whole body, deliver half of it, hang up: the client sees an incomplete response.
        payload = json.dumps(reply.completion()).encode()
        self._send_headers(200, "application/json", {"Content-Length": str(len(payload))})
        self._write(payload[: len(payload) // 2])
        self.close_connection = True

    def _stream_chat(self, reply: _ChatReply, request_number: int, behaviour: Behaviour) -> None:
        events = reply.stream_events(behaviour.chunks)
        if behaviour.kind in ("drop_mid_stream", "cut_stream"):
            events = events[:3]  # the role chunk and two content pieces

        headers = {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache"}
        self._send_headers(200, "text/event-stream; charset=utf-8", headers)
        for sent, event in enumerate(events):
            delayed_ok = not behaviour.delay_per_chunk or self._pause(behaviour.delay_per_chunk)
            if not (delayed_ok and self._write_chunk(event)):
                self._note_disconnect(request_number, behaviour, chunks_sent=sent)
                self.close_connection = True
                return
        if behaviour.kind == "drop_mid_stream":
            # No terminating zero-length chunk: the client reads an incomplete chunked body.
            self.close_connection = True
            return
        self._write(b"0\r\n\r\n")

    # Low-level writing

    def _record(self, body: dict[str, Any] | None) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.owner._record(RecordedRequest(self.command, self.path, headers, body))

    def _send_headers(self, status: int, content_type: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._send_headers(status, "application/json", {"Content-Length": str(len(data)), **(extra or {})})
        self._write(data)

    def _send_error(
        self,
        status: int,
        *,
        body: dict[str, Any] | None = None,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        if body is None:
            default_message, error_type, code = _ERROR_DETAILS.get(status, (f"HTTP {status}", "api_error", None))
            details = {"message": message or default_message, "type": error_type, "param": None, "code": code}
            body = {"error": details}
        extra = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        self._send_json(status, body, extra)

    def _write(self, data: bytes) -> bool:
        """Write and flush; False when the client has gone away."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except _CLIENT_GONE_ERRORS:
            self.close_connection = True
            return False

    def _write_chunk(self, data: bytes) -> bool:
        return self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False early if the server is stopping or the client hung up."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.server.owner._stopping.wait(min(remaining, _POLL_SECONDS)) or self._client_hung_up():
                return False
        return True

    def _client_hung_up(self) -> bool:
        """A readable socket with nothing to read means the peer closed its side."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _note_disconnect(self, request_number: int, behaviour: Behaviour, chunks_sent: int) -> None:
        # A stop of the server is not a client disconnect.
        if not self.server.owner._stopping.is_set():
            self.server.owner._record_disconnect(Disconnect(request_number, behaviour.kind, chunks_sent))


class _ChatReply:
    """The wire format of one chat answer, as a whole completion or as stream events."""

    def __init__(self, request_json: dict[str, Any], content: str, *, model: str) -> None:
        self.request_json = request_json
        self.content = content
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def completion(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": self.content, "refusal": None}
        return {
            **self._envelope("chat.completion"),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": self._usage(),
        }

    def stream_events(self, pieces: int) -> list[bytes]:
        """SSE events: role, ``pieces`` content deltas, finish, optional usage, then ``[DONE]``."""
        include_usage = bool((self.request_json.get("stream_options") or {}).get("include_usage"))

        def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
            chunk = {**self._envelope("chat.completion.chunk"), "choices": choices}
            if include_usage:
                chunk["usage"] = usage
            return f"data: {json.dumps(chunk)}\n\n".encode()

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        events = [event([choice({"role": "assistant", "content": "", "refusal": None})])]
        events += [event([choice({"content": piece})]) for piece in _split(self.content, pieces)]
        events.append(event([choice({}, "stop")]))
        if include_usage:
            events.append(event([], self._usage()))
        events.append(b"data: [DONE]\n\n")
        return events

    def _envelope(self, object_type: str) -> dict[str, Any]:
        return {"id": self.id, "object": object_type, "created": self.created, "model": self.model,
                "system_fingerprint": None}

    def _usage(self) -> dict[str, int]:
        """Rough token counts (words), enough for code that records usage."""
        messages = self.request_json.get("messages", [])
        prompt = sum(len(str(message.get("content", "")).split()) for message in messages)
        completion = len(self.content.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _scripted_outcome(behaviour: Behaviour) -> str:
    """A scripted behaviour under the names fault injection uses, for the per-call log."""
    if behaviour.kind == "error":
        return {429: "rate_limited"}.get(behaviour.status, f"server_error_{behaviour.status}")
    return {"garbage": "malformed_json"}.get(behaviour.kind, behaviour.kind)


def _split(content: str, pieces: int) -> list[str]:
    """Split ``content`` into exactly ``pieces`` consecutive parts (some empty if it is short)."""
    size, extra = divmod(len(content), pieces)
    parts, start = [], 0
    for index in range(pieces):
        end = start + size + (1 if index < extra else 0)
        parts.append(content[start:end])
        start = end
    return parts


# --- Public server ---------------------------------------------------------------------------------


class LLMTestServer:
    """An OpenAI-compatible chat server on 127.0.0.1 for tests; use as a context manager."""

    def __init__(
        self,
        *,
        responder: Responder = default_responder,
        default_behaviour: Behaviour | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = DEFAULT_MODEL,
        faults: FaultInjection | None = None,
    ) -> None:
        self.responder = responder
        self.default_behaviour = default_behaviour or ok()
        self.faults = faults
        # How many requests got each fault (and "ok"), when fault injection is on.
        self.fault_counts: collections.Counter[str] = collections.Counter()
        self._rng = random.Random(faults.seed if faults else None)
        self.model = model
        self.requests: list[RecordedRequest] = []
        # Every chat and images call with its X-Inkwell-Request-Id and outcome, in order of arrival.
        self.calls: list[Call] = []
        self.disconnects: list[Disconnect] = []
        self.disconnected = threading.Event()
        self._address = (host, port)
        self._script: collections.deque[Behaviour] = collections.deque()
        self._request_count = 0
        self._active_requests = 0
        self._changed = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> LLMTestServer:
        """Start serving; started again after `stop()` (an outage), it listens on the same port."""
        self._stopping.clear()
        self._httpd = _HTTPServer(self, self._address)
        self._address = (self._address[0], self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="llm-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled and streaming handlers end promptly and open connections are closed."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._changed:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> LLMTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("LLMTestServer is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to the openai client, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self._address[0]}:{self.port}/v1"

    # Script

    def set_script(self, behaviours: list[Behaviour]) -> None:
        """Replace the queue of behaviours; each chat request consumes the next one."""
        with self._changed:
            self._script = collections.deque(behaviours)

    def push(self, behaviour: Behaviour) -> None:
        """Append one behaviour to the end of the script."""
        with self._changed:
            self._script.append(behaviour)

    # Observations

    @property
    def request_count(self) -> int:
        """Chat requests received so far."""
        with self._changed:
            return self._request_count

    @property
    def active_requests(self) -> int:
        """Chat requests currently being answered."""
        with self._changed:
            return self._active_requests

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Only the ``/chat/completions`` entries of ``requests``."""
        with self._changed:
            return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` chat requests have arrived; False on time-out."""
        with self._changed:
            return self._changed.wait_for(lambda: self._request_count >= count, timeout)

    def wait_for_active(self, count: int, timeout: float = 5.0) -> bool:
        """Block until exactly ``count`` chat requests are in flight; False on time-out."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active_requests == count, timeout)

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """Block until some client has hung up mid-response; False on time-out."""
        return self.disconnected.wait(timeout)

    # Called from handler threads

    def _begin_chat(self, request_id: str | None = None) -> tuple[int, Behaviour]:
        with self._changed:
            self._request_count += 1
            self._active_requests += 1
            if self._script:
                behaviour = self._script.popleft()
                kind = _scripted_outcome(behaviour)
            else:
                kind, behaviour = self._draw_fault_locked()
            self.calls.append(Call(request_id, kind))
            self._changed.notify_all()
            return self._request_count, behaviour

    def _draw_fault(self) -> tuple[str, Behaviour]:
        with self._changed:
            return self._draw_fault_locked()

    def _draw_fault_locked(self) -> tuple[str, Behaviour]:
        if self.faults is None:
            return "ok", self.default_behaviour
        kind, behaviour = self.faults.draw(self._rng)
        self.fault_counts[kind] += 1
        return kind, behaviour

    def _log_call(self, request_id: str | None, kind: str) -> None:
        with self._changed:
            self.calls.append(Call(request_id, kind))

    def _end_chat(self) -> None:
        with self._changed:
            self._active_requests -= 1
            self._changed.notify_all()

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self.requests.append(request)

    def _record_disconnect(self, disconnect: Disconnect) -> None:
        with self._changed:
            self.disconnects.append(disconnect)
        self.disconnected.set()

    def _track_connection(self, connection: socket.socket, *, open_: bool) -> None:
        with self._changed:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a local OpenAI-compatible chat API until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--delay-per-chunk", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--chunks", type=int, default=8, help="content pieces per streamed answer")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests answered with a random fault")
    parser.add_argument("--stall-seconds", type=float, default=10.0, help="how long an injected stall lasts")
    args = parser.parse_args()

    behaviour = ok(delay_per_chunk=args.delay_per_chunk, chunks=args.chunks)
    faults = FaultInjection(rate=args.fault_rate, stall_seconds=args.stall_seconds) if args.fault_rate > 0 else None
    with LLMTestServer(host=args.host, port=args.port, default_behaviour=behaviour, faults=faults) as server:
        print(f"Serving an OpenAI-compatible API at {server.base_url} (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"\nStopped after {server.request_count} chat requests.")


if __name__ == "__main__":
    main()
