"""Completion webhooks: signed, retried with back-off, URL-checked, each attempt shown in History."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from db.people import acting_as
from db.webhooks import list_deliveries, webhook_secret
from tests.conftest import wait_for
from tests.support.console import signed_in_app


class Receiver:
    """A local webhook receiver: answers each POST with the next scripted status (then 204)."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/inkwell"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(list(statuses)))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(part.removeprefix("v1,"), expected) for part in headers["webhook-signature"].split())


def test_the_final_status_is_posted_signed_and_retried_until_accepted(api_server, cast, token_for, worker, receiver, db):
    hook = receiver([500, 503])  # two failures, then 204
    with api_server.client(token_for(cast.ana)) as client:
        job_id = client.post("/api/v1/jobs/titles", json={"topic": "Hooked bread", "callbackUrl": hook.url}).json()["jobId"]
        wait_for(lambda: len(hook.received) >= 3, timeout=60, message="three delivery attempts")
        status = client.get(f"/api/v1/jobs/{job_id}/status").json()
    with acting_as(db, cast.ana):
        secret = webhook_secret(db)
    ids = {headers["webhook-id"] for headers, _ in hook.received}
    assert len(ids) == 1 and ids.pop().startswith("msg_")
    for headers, body in hook.received:
        assert _verify(secret, headers, body)
        assert headers["content-type"] == "application/json"
    delivered = json.loads(hook.received[-1][1])
    assert delivered["jobId"] == job_id and delivered["status"] == "succeeded" == status["status"]
    assert delivered["result"] == status["result"]
    # A forged body does not verify.
    headers, body = hook.received[-1]
    assert not _verify(secret, headers, body.replace(b"succeeded", b"failed"))

    attempts = wait_for(lambda: len(a := list_deliveries(db, job_id)) == 3 and a, timeout=10)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 204)]
    assert attempts[0].error == "The receiver answered 500." and attempts[2].error is None
    # Back-off: the queue waited before each retry (base 1 s here).
    assert (attempts[1].attempted_at - attempts[0].attempted_at).total_seconds() >= 0.9

    # The console (on the same database: DATABASE_URL of inkwell_env) shows each attempt in the request's detail.
    at = signed_in_app(cast.ana, "pages/3_History.py")
    at.query_params["request"] = job_id
    at.run()
    assert not at.exception
    assert "**Webhook deliveries**" in [m.value for m in at.markdown]
    frame = next(df.value for df in at.dataframe if "Attempt" in df.value.columns)
    assert list(frame["Answer"]) == [500, 503, 204]


def test_a_receiver_at_a_private_address_is_refused_once_without_retries(
    api_server, cast, token_for, start_worker, api_env, receiver, db
):
    hook = receiver()
    start_worker(concurrency=4, extra_env={**api_env, "INKWELL_ALLOW_PRIVATE_URLS": "false"})
    with api_server.client(token_for(cast.ana)) as client:
        job_id = client.post("/api/v1/jobs/titles", json={"topic": "Private hook", "callbackUrl": hook.url}).json()["jobId"]
        wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}/status").json()["status"] == "succeeded", timeout=60)
    attempts = wait_for(lambda: list_deliveries(db, job_id), timeout=20, message="the refused attempt")
    assert len(attempts) == 1 and attempts[0].status_code is None
    assert attempts[0].error.startswith("[url_refused]") and "loopback" in attempts[0].error
    assert hook.received == []


def test_a_failed_or_cancelled_job_is_posted_too_and_visitors_cannot_ask_for_webhooks(api_server, cast, token_for, worker, receiver):
    hook = receiver()
    with api_server.client(token_for(cast.ana)) as client:
        job_id = client.post("/api/v1/jobs/titles", json={
            "topic": "Cancelled hook", "callbackUrl": hook.url, "scheduledAt": "2999-01-01T00:00:00Z"}).json()["jobId"]
        client.post(f"/api/v1/jobs/{job_id}/cancel")
        wait_for(lambda: hook.received, timeout=30, message="the cancelled job's webhook")
        assert json.loads(hook.received[0][1])["status"] == "cancelled"
    with api_server.client(**{"x-session-id": "visitor-hook-0001"}) as visitor:
        refused = visitor.post("/api/v1/jobs/website-analysis", json={"url": "https://example.invalid/", "callbackUrl": hook.url})
        assert refused.status_code == 422 and "API token" in refused.json()["error"]["message"]
