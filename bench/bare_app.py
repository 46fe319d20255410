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


_model_client = None


@app.task(name="bare.model_call", queue=QUEUE)
async def model_call(topic: str) -> None:
    """The bare counterpart of an Inkwell titles job: one streamed chat completion through the
    openai SDK (the endpoint in PEERS_LLM_BASE_URL), read to the end. One client per process, as
    Inkwell keeps one."""
    global _model_client
    if _model_client is None:
        import openai

        _model_client = openai.AsyncOpenAI(
            base_url=os.environ["PEERS_LLM_BASE_URL"], api_key="bench-key", max_retries=0, timeout=60
        )
    stream = await _model_client.chat.completions.create(
        model="inkwell-test-model", messages=[{"role": "user", "content": f"Five titles about {topic}"}], stream=True
    )
    async for _ in stream:
        pass
