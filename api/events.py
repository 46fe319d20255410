"""Live job events: one LISTEN connection per API process, fanned out to every event stream.

A trigger sends the id of each request whose visible state changed on the channel
`inkwell_request_changes` (migration 0080), for the requests some hub follows (0150: the hub
records them in `inkwell.followed_requests` under its LISTEN connection's backend pid, so the
jobs nobody follows cost no NOTIFY). The hub listens on one connection; when an id that some
stream follows arrives, it reads that request once (all ids that arrived together in one query)
and hands the row to each of its streams. No stream ever queries the database itself after it
opened: a thousand streams on one job cost one read per change, not a thousand.

If the listening connection drops, the hub reconnects with back-off, records every followed
request again under its new backend, and re-reads them, so a change made while it was away is not
lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import psycopg_pool

from db.followers import follow_requests, forget_gone_listeners, unfollow_request
from db.requests import TERMINAL_STATUSES, GenerationRequest, get_requests_by_ids_async
from queue_tasks.job_status import status_document

logger = logging.getLogger("inkwell.api.events")

CHANNEL = "inkwell_request_changes"
_RECONNECT_MAX_SECONDS = 5.0


class ChangeHub:
    def __init__(self, database_url: str):
        self._database_url = database_url
        self._subscribers: dict[uuid.UUID, set[asyncio.Queue]] = defaultdict(set)
        self._dirty: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self.connected = asyncio.Event()
        self.listen_connections = 0  # opened so far: one, unless the connection dropped
        self._listener_pid: int | None = None  # the LISTEN connection's backend, while connected

    async def start(self) -> None:
        self._pool = psycopg_pool.AsyncConnectionPool(
            self._database_url, min_size=1, max_size=2, open=False,
            kwargs={"autocommit": True, "application_name": "inkwell-api-events"},
        )
        await self._pool.open(wait=False)
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._fan_out())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pool is not None:
            await self._pool.close()

    @property
    def subscriber_count(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def follow(self, request_id: uuid.UUID) -> AsyncIterator[asyncio.Queue]:
        """A queue that receives the request (GenerationRequest) after each change, while the block runs."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=64)
        self._subscribers[request_id].add(queue)
        try:
            # Recorded (again, for a request already followed: a no-op row) before the caller's first
            # read, so no change after that read goes unannounced, however streams come and go.
            await self._record_followed([request_id])
            yield queue
        finally:
            followers = self._subscribers.get(request_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._subscribers[request_id]
                    await self._forget_followed(request_id)

    async def _record_followed(self, ids: list[uuid.UUID]) -> None:
        """Announce changes of these requests to this hub's listener (inkwell.follow_requests). While
        it is not connected there is nothing to record: connecting records every followed request."""
        pid = self._listener_pid
        if pid is None or self._pool is None or not ids:
            return
        async with self._pool.connection() as conn:
            await follow_requests(conn, ids, listener_pid=pid)

    async def _forget_followed(self, request_id: uuid.UUID) -> None:
        pid = self._listener_pid
        if pid is None or self._pool is None:
            return
        try:
            async with self._pool.connection() as conn:
                await unfollow_request(conn, request_id, listener_pid=pid)
            if request_id in self._subscribers:
                # A stream began following it while the row went: record it again, and read it once
                # more for a change made in between.
                await self._record_followed([request_id])
                self._mark_dirty([request_id])
        except Exception as error:  # left behind, it only costs a NOTIFY per change until housekeeping
            logger.warning("event hub could not forget a followed request (%s)", type(error).__name__)

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True, application_name="inkwell-api-listen"
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    # What this hub followed under an earlier connection (and any other gone
                    # listener) is forgotten; every request followed now is recorded under this one.
                    await forget_gone_listeners(conn)
                    self._listener_pid = conn.info.backend_pid
                    await self._record_followed(list(self._subscribers))
                    self.listen_connections += 1
                    self.connected.set()
                    delay = 0.2
                    # Changes made while not listening: read every followed request again.
                    self._mark_dirty(list(self._subscribers))
                    async for notify in conn.notifies():
                        with contextlib.suppress(ValueError):
                            request_id = uuid.UUID(notify.payload)
                            if request_id in self._subscribers:
                                self._mark_dirty([request_id])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database went away: listen again when it is back
                self._listener_pid = None
                self.connected.clear()
                logger.warning("event listener lost its connection (%s); reconnecting", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    def _mark_dirty(self, ids: list[uuid.UUID]) -> None:
        if ids:
            self._dirty.update(ids)
            self._wake.set()

    async def _fan_out(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids, self._dirty = list(self._dirty), set()
            if not ids or self._pool is None:
                continue
            try:
                async with self._pool.connection() as conn:
                    requests = await get_requests_by_ids_async(conn, ids)
            except Exception as error:
                logger.warning("event fan-out could not read %d requests (%s); retrying", len(ids), type(error).__name__)
                self._dirty.update(ids)
                await asyncio.sleep(0.5)
                self._wake.set()
                continue
            for request in requests:
                for queue in list(self._subscribers.get(request.id, ())):
                    if queue.full():  # a slow reader only needs the newest state
                        with contextlib.suppress(asyncio.QueueEmpty):
                            queue.get_nowait()
                    queue.put_nowait(request)


# --- The stream one client reads -------------------------------------------------------------------


def event_id(request: GenerationRequest) -> int:
    """Microseconds of the request's last change: increases with every change the stream shows."""
    return int(request.updated_at.timestamp() * 1_000_000)


def _sse(event: str, data: dict[str, Any], event_id_value: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id_value is not None:
        lines.append(f"id: {event_id_value}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


class StreamState:
    """What this client was last sent; turns each new row into the events that say what changed."""

    def __init__(self, last_event_id: int | None):
        self.last_event_id = last_event_id or 0
        self.sent: GenerationRequest | None = None

    def events(self, request: GenerationRequest) -> list[str]:
        version = event_id(request)
        if self.sent is None and version <= self.last_event_id and request.status not in TERMINAL_STATUSES:
            # Resumed, and nothing changed since the client's last event.
            self.sent = request
            return []
        if version <= self.last_event_id and self.sent is not None and not _changed(self.sent, request):
            return []
        version = max(version, self.last_event_id + 1)
        previous, self.sent, self.last_event_id = self.sent, request, version
        # (event, data) for each thing that changed; the last one carries the change's id, so a client
        # that resumes from it has seen all of them.
        out: list[tuple[str, dict[str, Any]]] = []
        document = status_document(request)
        if previous is None or previous.status != request.status:
            out.append(("status", document))
        elif (previous.progress, previous.current_step, previous.eta_seconds) != (
            request.progress, request.current_step, request.eta_seconds
        ):
            out.append(("progress", {
                "jobId": document["jobId"], "progress": request.progress, "currentStep": request.current_step,
                "estimatedTimeRemaining": document["estimatedTimeRemaining"],
            }))
        old_text = (previous.partial_text if previous is not None else None) or ""
        new_text = request.partial_text or ""
        if new_text != old_text and request.status == "running":
            if new_text.startswith(old_text) and old_text:
                out.append(("partial", {"jobId": document["jobId"], "append": new_text[len(old_text):]}))
            else:
                out.append(("partial", {"jobId": document["jobId"], "text": new_text}))
        if not out:
            out.append(("progress", {
                "jobId": document["jobId"], "progress": request.progress, "currentStep": request.current_step,
                "estimatedTimeRemaining": document["estimatedTimeRemaining"],
            }))
        # Status last, so a client that acts on it has had everything before it.
        out.sort(key=lambda item: item[0] == "status")
        return [_sse(event, data, version if i == len(out) - 1 else None) for i, (event, data) in enumerate(out)]


def _changed(a: GenerationRequest, b: GenerationRequest) -> bool:
    return (a.status, a.progress, a.current_step, a.eta_seconds, a.partial_text) != (
        b.status, b.progress, b.current_step, b.eta_seconds, b.partial_text
    )


def heartbeat() -> str:
    return ": heartbeat\n\n"
