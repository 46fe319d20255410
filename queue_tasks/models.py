"""Inputs and results of each job kind: validated at the edge, stored as JSON, parsed again by the worker."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

# Control characters (other than tab/newline) and NUL have no place in a topic and break some tools.
_CONTROL_CHARS = {chr(c) for c in range(32) if chr(c) not in "\t\n"} | {chr(c) for c in range(0x7F, 0xA0)}
# Removed too: invisible characters that only hide or disguise text (zero-width space, word joiner,
# byte-order mark) and the direction overrides, embeddings and isolates that reorder the text
# shown around them ("Trojan Source" spoofing). Right-to-left text itself is kept as typed, with
# the marks (LRM, RLM, ALM) and joiners (ZWJ, ZWNJ: emoji, Persian, Indic scripts) it needs.
_INVISIBLE_CHARS = {"\u200b", "\u2060", "\ufeff", "\u180e"} | {chr(c) for c in range(0x202A, 0x202F)} | {
    chr(c) for c in range(0x2066, 0x206A)
}
_REMOVED = _CONTROL_CHARS | _INVISIBLE_CHARS
# Line and paragraph separators act as line breaks in some places and not others.
_AS_SPACE = {"\u2028": " ", "\u2029": " "}
# Letters that show as blank space (Hangul fillers, braille blank): they do not make a topic visible.
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}
MIN_VISIBLE_TOPIC_CHARS = 3
# Model output: a title longer than this is cut (the prompt asks for under 90 characters); a
# request asks for at most 20 titles, so more are never kept.
MAX_TITLE_CHARS = 300
MAX_TITLES = 20


def _clean_text(value: str) -> str:
    return "".join(_AS_SPACE.get(ch, ch) for ch in value if ch not in _REMOVED).strip()


# What a person may type into one field at most (a field's own max_chars is usually far lower): a
# megabyte pasted into a filter is cut here, with a message, before it reaches any query.
MAX_TYPED_CHARS = 1_000_000
_LONE_SURROGATES = {chr(c) for c in range(0xD800, 0xE000)}
_TYPED_REMOVED = _CONTROL_CHARS | _LONE_SURROGATES


def clean_typed_text(value: object, *, max_chars: int | None = None, multiline: bool = False) -> tuple[str, list[str]]:
    """The one cleaning every text a person types goes through before any query (console_ui wraps
    every text field with it): NUL and other control characters and lone surrogates (which no
    database or encoder accepts) are removed, line breaks kept only in multi-line fields, and the
    text cut to `max_chars` (at most MAX_TYPED_CHARS). Returns the text and what was done to it, as
    sentences to show beside the field (empty when nothing was)."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    notes: list[str] = []
    if multiline:  # Windows and old-Mac line ends are line ends
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = "\n\t" if multiline else ""
    removed = sum(1 for ch in text if (ch in _TYPED_REMOVED or ch in "\r\n\t") and ch not in kept)
    if removed:
        text = "".join(
            ch if ch not in _TYPED_REMOVED and ch not in "\r\n\t" or ch in kept else (" " if ch in "\r\n\t" else "")
            for ch in text
        )
        notes.append(f"{removed:,} control or invalid character{'s were' if removed != 1 else ' was'} removed.")
    limit = min(max_chars or MAX_TYPED_CHARS, MAX_TYPED_CHARS)
    if len(text) > limit:
        notes.append(f"It was {len(text):,} characters long: only the first {limit:,} are used.")
        text = text[:limit]
    return text, notes


def visible_length(value: str) -> int:
    """Characters that show: not spaces, controls, format characters, combining marks or blank letters."""
    return sum(
        1
        for ch in value
        if ch not in _BLANK_LETTERS and (unicodedata.category(ch)[0] not in "CZM" or unicodedata.category(ch) == "Co")
    )


def cut_text(value: str, max_chars: int) -> str:
    """Model output as one line of at most max_chars characters (an ellipsis marks a cut), without
    control characters (PostgreSQL cannot store a NUL in JSON) or invisible ones."""
    text = " ".join(_clean_text(value).split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def cut_block(value: str, max_chars: int) -> str:
    """Model output of several lines, cleaned like cut_text but keeping its line breaks."""
    return _clean_text(value)[:max_chars]


OptionalShortText = Annotated[str, StringConstraints(max_length=200)] | None


class TitlesInput(BaseModel):
    """What an editor asks for when they want titles."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    topic: Annotated[str, StringConstraints(min_length=3, max_length=500)]
    audience: OptionalShortText = None
    tone: OptionalShortText = None
    count: int = Field(default=5, ge=1, le=20, strict=True)

    @field_validator("topic", "audience", "tone", mode="before")
    @classmethod
    def _strip_control_characters(cls, value: object) -> object:
        return _clean_text(value) if isinstance(value, str) else value

    @field_validator("topic")
    @classmethod
    def _visible_topic(cls, value: str) -> str:
        if visible_length(value) < MIN_VISIBLE_TOPIC_CHARS:
            raise PydanticCustomError(
                "too_few_visible_characters",
                "must have at least {min_visible} visible characters",
                {"min_visible": MIN_VISIBLE_TOPIC_CHARS},
            )
        return value

    @field_validator("audience", "tone")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


class TitleList(BaseModel):
    """The structured answer asked of the model."""

    titles: list[str]

    # Length caps are applied here, not in the schema: strict structured outputs refuse maxLength.
    @field_validator("titles")
    @classmethod
    def _capped(cls, titles: list[str]) -> list[str]:
        return [cut_text(title, MAX_TITLE_CHARS) for title in titles if title.strip()][:MAX_TITLES]


class TitlesResult(BaseModel):
    titles: list[str]
    model: str
    offline_model: bool
    tokens_used: int | None = None


MAX_PROBLEMS_SHOWN = 10


# pydantic's number bounds in words (its own: "Input should be less than or equal to 20").
BOUND_WORDS = {"less_than_equal": "at most", "less_than": "less than", "greater_than_equal": "at least", "greater_than": "more than"}


def describe_validation_error(error: Exception) -> str:
    """A message a person can act on, naming each field that is wrong."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    parts = []
    problems = error.errors()
    for item in problems[:MAX_PROBLEMS_SHOWN]:
        field = ".".join(str(p) for p in item["loc"]) or "input"
        message = item["msg"]
        if item["type"] == "string_too_short":
            message = f"must be at least {item['ctx']['min_length']} characters (after trimming spaces)"
        elif item["type"] == "string_too_long":
            message = f"must be at most {item['ctx']['max_length']} characters"
        elif item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "is not a field of this request"
        elif item["type"] == "value_error" and item.get("ctx", {}).get("error"):
            message = str(item["ctx"]["error"])  # our own message, without pydantic's "Value error, "
        elif item["type"] == "too_few_visible_characters":
            message = f"{message} (spaces and invisible characters do not count)"
        elif item["type"] in BOUND_WORDS:
            limit = next(v for k, v in item["ctx"].items() if k in ("le", "lt", "ge", "gt"))
            message = f"must be {BOUND_WORDS[item['type']]} {limit}"
        elif item["type"] in ("int_type", "int_parsing", "int_from_float"):
            message = "must be a whole number"
        elif item["type"] in ("float_type", "float_parsing"):
            message = "must be a number"
        elif item["type"] in ("string_type", "string_unicode"):
            message = "must be text"
        elif item["type"] in ("bool_type", "bool_parsing"):
            message = "must be yes or no"
        else:
            # pydantic's other wordings ("Input should be 'hero' or 'text'") read well enough as "must be …".
            message = message.replace("Input should be", "must be", 1)
        parts.append(f"{field}: {message}")
    if len(problems) > MAX_PROBLEMS_SHOWN:
        # A file with 30,000 bad entries must not give a message of a megabyte.
        parts.append(f"and {len(problems) - MAX_PROBLEMS_SHOWN:,} more problems")
    return "; ".join(parts)
