"""The model API key is redacted in every form an echo may carry it (queue_tasks/redaction.py)."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

import pytest

from queue_tasks.redaction import REDACTED, encoded_forms, install_log_redaction, redact, redact_value

KEY = "sk-proj-Abc123XyZ789_secretKEY-0042"


@pytest.mark.parametrize(
    "echo",
    [
        KEY,
        KEY.upper(),
        KEY.lower(),
        KEY[:-2],  # truncated by two
        KEY[5:],  # its tail
        KEY[3:11],  # any 8 characters of it
        base64.b64encode(KEY.encode()).decode(),
        base64.b64encode(f"Authorization: Bearer {KEY}".encode()).decode(),  # the header encoded whole
        base64.b64encode(f"x{KEY}".encode()).decode(),
        base64.b64encode(f"xy{KEY}".encode()).decode(),
        base64.urlsafe_b64encode(KEY.encode()).decode(),
        quote(f"Bearer {KEY}", safe=""),
        "".join(f"%{b:02X}" for b in KEY.encode()),
        KEY.encode().hex(),
        KEY.encode().hex().upper(),
    ],
)
def test_every_form_of_the_key_is_redacted_and_the_rest_kept(echo):
    text = f"upstream said: {echo} (request 42)"
    cleaned = redact(text, KEY)
    assert REDACTED in cleaned
    assert cleaned.startswith("upstream said: ") and cleaned.endswith(" (request 42)")
    for form in encoded_forms(KEY):
        for start in range(0, len(form) - 8):
            assert form[start : start + 8].lower() not in cleaned.lower()


def test_text_without_the_key_is_left_alone_and_short_keys_are_not_looked_for():
    text = "The model endpoint refused the request (400): bad model name sk-other-key-entirely"
    assert redact(text, KEY) == text
    assert redact("abc abc abc", "abc") == "abc abc abc"


def test_seven_characters_of_the_key_are_not_a_fragment():
    assert redact(f"id {KEY[:7]}!", KEY) == f"id {KEY[:7]}!"


def test_a_stored_result_is_redacted_everywhere_in_it():
    result = {"titles": [f"Ten tips {KEY}", "clean"], "meta": {"note": KEY.upper()}, "count": 2}
    assert redact_value(result, KEY) == {
        "titles": [f"Ten tips {REDACTED}", "clean"], "meta": {"note": REDACTED}, "count": 2
    }


def test_log_records_are_redacted_whatever_the_logger(monkeypatch, caplog):
    monkeypatch.setenv("INKWELL_LLM_API_KEY", KEY)
    from inkwell_settings import get_settings

    get_settings.cache_clear()
    original = logging.getLogRecordFactory()
    try:
        install_log_redaction()
        with caplog.at_level(logging.INFO):
            logging.getLogger("openai._base_client").info("headers %s", {"Authorization": f"Bearer {KEY.upper()}"})
            try:
                raise RuntimeError(f"echo {base64.b64encode(KEY.encode()).decode()}")
            except RuntimeError:
                logging.getLogger("procrastinate").exception("job failed")
        text = caplog.text
        assert "headers" in text and "job failed" in text and REDACTED in text
        assert KEY.upper() not in text and base64.b64encode(KEY.encode()).decode()[:12] not in text
    finally:
        logging.setLogRecordFactory(original)
        get_settings.cache_clear()
