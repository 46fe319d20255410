"""The model API key, in any form, out of errors, logs and stored results.

An endpoint or a proxy in front of it may quote the request's headers back: in an error, in a log
line, even in an answer the model writes. It may change the key on the way — upper-case it, cut it
short, base64-, URL- or hex-encode it. So the key is looked for as any run of 8 or more of its
characters, case-insensitively, in each of these forms:

- the key itself;
- base64 (standard and URL-safe alphabets), at each of the three alignments it can have inside a
  longer encoded text (e.g. `Authorization: Bearer <key>` encoded whole);
- URL-encoded (`quote`, `quote_plus`, and every character percent-encoded);
- hex of its UTF-8 bytes.

Every stretch of text covered by such a run is replaced by one "[redacted]". A key shorter than 8
characters is not looked for (it would match ordinary words); real keys are far longer.
"""

from __future__ import annotations

import base64
import functools
import logging
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_FRAGMENT = 8


def configured_secret() -> str:
    from inkwell_settings import get_settings

    key = get_settings().llm_api_key
    return key.get_secret_value() if key else ""


def redact(text: str, secret: str | None = None) -> str:
    """`text` with every fragment of the key (the configured one unless `secret` is given), in any
    of the forms above, replaced by [redacted]."""
    secret = configured_secret() if secret is None else secret
    if not text or len(secret) < MIN_FRAGMENT:
        return text
    grams = _fragments(secret)
    lowered = text.lower()
    covered_until = -1
    spans: list[list[int]] = []
    for start in range(len(lowered) - MIN_FRAGMENT + 1):
        if lowered[start : start + MIN_FRAGMENT] in grams:
            end = start + MIN_FRAGMENT
            if spans and start <= covered_until:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
            covered_until = spans[-1][1]
    if not spans:
        return text
    pieces, last = [], 0
    for start, end in spans:
        pieces.append(text[last:start])
        pieces.append(REDACTED)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def redact_value(value: Any, secret: str | None = None) -> Any:
    """A JSON-like value (a stored result) with every string in it redacted."""
    secret = configured_secret() if secret is None else secret
    if len(secret) < MIN_FRAGMENT:
        return value
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, dict):
        return {redact(k, secret) if isinstance(k, str) else k: redact_value(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, secret) for v in value)
    return value


def encoded_forms(secret: str) -> list[str]:
    """The key as an echo may carry it (see the module's docstring); used by the tests too."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = [secret, quote(secret, safe=""), quote_plus(secret), "".join(f"%{b:02x}" for b in raw), raw.hex()]
    for shift in range(3):
        # Base64 of the key behind `shift` other bytes: keep only the characters that depend on
        # the key's bytes alone (those of the first and last partial groups depend on neighbours too).
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode().rstrip("=")
            start = (shift * 8 + 5) // 6
            end = (len(raw) + shift) * 8 // 6
            forms.append(encoded[start:end])
    return [form for form in forms if len(form) >= MIN_FRAGMENT]


@functools.lru_cache(maxsize=4)
def _fragments(secret: str) -> frozenset[str]:
    return frozenset(
        form.lower()[i : i + MIN_FRAGMENT] for form in encoded_forms(secret) for i in range(len(form) - MIN_FRAGMENT + 1)
    )


def install_log_redaction() -> None:
    """Every log record made in this process from now on is redacted (its message, arguments and
    traceback), whichever logger or handler: the SDK's, Procrastinate's and Inkwell's own."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts_secrets", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        secret = configured_secret()
        if len(secret) >= MIN_FRAGMENT:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed log call: leave it to logging's own report
                return record
            record.msg, record.args = redact(message, secret), None
            if record.exc_info and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info), secret)
        return record

    make_record.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
