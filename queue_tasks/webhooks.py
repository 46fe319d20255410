"""Completion webhooks: POST a request's final status document to the callback URL it was created with.

The database defers `inkwell.deliver_webhook` when such a request reaches a terminal state
(migration 0080), in the transaction that ends it. The body is the status document the API's
GET /api/v1/jobs/{jobId}/status answers, signed in the Standard Webhooks style:

    webhook-id: msg_…            (the same for every attempt of one delivery)
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}", keyed with the
                       base64-decoded part of the user's "whsec_…" secret>

The receiver's address is checked like a website analysis' (queue_tasks/url_safety.py: public
addresses only, unless allowed by settings; the connection goes to the checked address; no
redirects). A 2xx answer ends the delivery; anything else is retried by Procrastinate with
exponential back-off (INKWELL_WEBHOOK_RETRY_BASE_SECONDS ** attempt) up to
INKWELL_WEBHOOK_MAX_ATTEMPTS. A refused URL is not retried. Every attempt is recorded
(inkwell.webhook_deliveries) and shown in the request's detail on the History page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import unicodedata

from procrastinate import JobContext, RetryStrategy

from db.requests import get_request_async
from db.webhooks import get_callback, record_attempt
from inkwell_settings import get_settings
from queue_tasks.errors import JobError, PermanentJobError
from queue_tasks.job_status import status_document
from queue_tasks.procrastinate_app import app
from queue_tasks.url_safety import AddressPolicy, post_json, split_url

logger = logging.getLogger("inkwell.webhooks")

MAX_CALLBACK_URL_CHARS = 2_000


class WebhookNotDelivered(Exception):
    """This attempt did not get a 2xx answer: Procrastinate retries it later."""


def check_callback_url(url: str) -> str:
    """The URL as given, or ValueError saying what is wrong (addresses are checked at delivery)."""
    url = url.strip()
    if len(url) > MAX_CALLBACK_URL_CHARS:
        raise ValueError(f"The callback URL is longer than {MAX_CALLBACK_URL_CHARS} characters.")
    for position, ch in enumerate(url, 1):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"):
            raise ValueError(f"The callback URL has a space, control or invisible character at position {position}.")
    try:
        split_url(url)
    except JobError as error:
        raise ValueError(error.message) from None
    return url


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value for this message."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _retry_strategy() -> RetryStrategy:
    settings = get_settings()
    return RetryStrategy(
        max_attempts=settings.webhook_max_attempts - 1,  # Procrastinate counts retries, not attempts
        exponential_wait=settings.webhook_retry_base_seconds,
        retry_exceptions=[WebhookNotDelivered],
    )


@app.task(name="inkwell.deliver_webhook", pass_context=True, retry=_retry_strategy())
async def deliver_webhook(context: JobContext, request_id: str, webhook_id: str) -> dict:
    settings = get_settings()
    async with context.app.connector.pool.connection() as conn:
        request = await get_request_async(conn, request_id)
        callback = await get_callback(conn, request_id)
    if request is None or callback is None:
        logger.info("webhook %s: request %s or its callback is gone; nothing to deliver", webhook_id, request_id)
        return {"delivered": False}
    attempt = context.job.attempts + 1
    body = json.dumps(status_document(request), separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(callback.secret, webhook_id, timestamp, body),
    }
    policy = AddressPolicy.from_settings(settings.allow_private_urls, settings.url_allowed_networks)
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    retry = True
    try:
        status_code = await post_json(
            callback.url, body, headers=headers, policy=policy, timeout_seconds=settings.webhook_timeout_seconds
        )
        if not 200 <= status_code < 300:
            error = f"The receiver answered {status_code}."
    except JobError as failure:
        error = f"[{failure.code}] {failure.message}"
        retry = not isinstance(failure, PermanentJobError)
    duration_ms = int((time.monotonic() - started) * 1000)
    async with context.app.connector.pool.connection() as conn:
        await record_attempt(
            conn, request_id=request_id, webhook_id=webhook_id, attempt=attempt, url=callback.url,
            status_code=status_code, error=error, duration_ms=duration_ms,
        )
    if error is None:
        logger.info("webhook %s for request %s delivered (attempt %d, %s)", webhook_id, request_id, attempt, status_code)
        return {"delivered": True, "status_code": status_code}
    logger.warning("webhook %s for request %s: attempt %d failed: %s", webhook_id, request_id, attempt, error)
    if retry:
        raise WebhookNotDelivered(error)
    return {"delivered": False, "error": error}
