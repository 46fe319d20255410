"""The Celery 5 + Redis peer of bench/peers.py: one task making the same streamed chat completion
through the openai SDK as Inkwell's titles job and bench/bare_app.py's `bare.model_call`.

Celery's defaults are kept (acks on receipt, prefetch multiplier 4, Redis visibility timeout 1 h);
only results are not stored (nothing reads them) and the worker runs the threads pool
(`-P threads -c N`), the pool an operator picks for I/O-bound tasks. Each run of the task pushes
`[task id, seconds from submit to start]` onto the Redis list `peers:started` and its id onto
`peers:done` when it ends, so the driver sees starts, ends and duplicates without a result backend.
"""

from __future__ import annotations

import json
import os
import threading
import time

import openai
import redis
from celery import Celery

app = Celery("peers", broker=os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)

_lock = threading.Lock()
_clients: dict[str, object] = {}


def _shared(name: str, make):
    with _lock:
        if name not in _clients:
            _clients[name] = make()
        return _clients[name]


@app.task(name="peers.model_call")
def model_call(job_id: str, submitted_at: float, topic: str) -> None:
    store = _shared("redis", lambda: redis.Redis.from_url(os.environ["PEERS_REDIS_URL"]))
    store.rpush("peers:started", json.dumps([job_id, time.time() - submitted_at]))
    client = _shared("openai", lambda: openai.OpenAI(
        base_url=os.environ["PEERS_LLM_BASE_URL"], api_key="bench-key", max_retries=0, timeout=60
    ))
    stream = client.chat.completions.create(
        model="inkwell-test-model", messages=[{"role": "user", "content": f"Five titles about {topic}"}], stream=True
    )
    for _ in stream:
        pass
    store.rpush("peers:done", job_id)
