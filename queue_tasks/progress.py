"""Progress reporting from inside a task, written to inkwell.requests for the console to show.

Step changes are written at once; streaming updates are coalesced to one write per
`min_interval` seconds so a fast stream does not turn into hundreds of UPDATEs per job.
"""

from __future__ import annotations

import time
import uuid

from psycopg_pool import AsyncConnectionPool

from db.requests import record_progress

# Partial text shown while a job streams: the tail is what a person watches.
PARTIAL_TEXT_CHARS = 2_000


class JobProgress:
    def __init__(self, pool: AsyncConnectionPool, request_id: uuid.UUID, *, min_interval: float):
        self._pool = pool
        self._request_id = request_id
        self._min_interval = min_interval
        self._last_write = 0.0
        self.step = "Starting"
        self.progress = 0
        self.writes = 0

    async def set_step(self, step: str, progress: int, eta_seconds: int | None = None) -> None:
        self.step = step
        await self._write(progress, eta_seconds, None)

    async def streaming(
        self, text: str, *, expected_chars: int, started: float, start_pct: int, end_pct: int
    ) -> None:
        """Move the bar with the text received so far against the length expected."""
        now = time.monotonic()
        if now - self._last_write < self._min_interval:
            return
        fraction = min(1.0, len(text) / max(1, expected_chars))
        progress = start_pct + int((end_pct - start_pct) * fraction)
        elapsed = now - started
        eta = None
        if len(text) and elapsed > 0:
            rate = len(text) / elapsed
            eta = int(max(0, expected_chars - len(text)) / rate) if rate else None
        await self._write(progress, eta, text[-PARTIAL_TEXT_CHARS:])

    async def _write(self, progress: int, eta_seconds: int | None, partial_text: str | None) -> None:
        self.progress = max(self.progress, progress)
        self._last_write = time.monotonic()
        self.writes += 1
        async with self._pool.connection() as conn:
            await record_progress(
                conn,
                self._request_id,
                progress=self.progress,
                step=self.step,
                eta_seconds=eta_seconds,
                partial_text=partial_text,
            )
