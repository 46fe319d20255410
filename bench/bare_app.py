"""Bare Procrastinate, the baseline every benchmark compares against: its own App, no Inkwell code.

The connector is Procrastinate's default (no pool sizes of ours); the worker defaults are
Procrastinate's own. Jobs go to the queue `bare`, so an Inkwell worker on the same database
never sees them.
"""

from __future__ import annotations

import asyncio
import os

from procrastinate import App, PsycopgConnector

QUEUE = "bare"

app = App(connector=PsycopgConnector(conninfo=os.environ.get("DATABASE_URL", "")))


@app.task(name="bare.noop", queue=QUEUE)
async def noop() -> None:
    pass


@app.task(name="bare.sleep", queue=QUEUE)
async def sleep(seconds: float) -> None:
    # The bare counterpart of a model call that takes `seconds`.
    await asyncio.sleep(seconds)
