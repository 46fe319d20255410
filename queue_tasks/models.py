"""Inputs and results of each job kind: validated at the edge, stored as JSON, parsed again by the worker."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Control characters (other than tab/newline) and NUL have no place in a topic and break some tools.
_CONTROL_CHARS = {chr(c) for c in range(32) if chr(c) not in "\t\n"} | {"\x7f"}


def _clean_text(value: str) -> str:
    return "".join(ch for ch in value if ch not in _CONTROL_CHARS).strip()


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

    @field_validator("audience", "tone")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


class TitleList(BaseModel):
    """The structured answer asked of the model."""

    titles: list[str]


class TitlesResult(BaseModel):
    titles: list[str]
    model: str
    offline_model: bool
    tokens_used: int | None = None


def describe_validation_error(error: Exception) -> str:
    """A message a person can act on, naming each field that is wrong."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    parts = []
    for item in error.errors():
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
        parts.append(f"{field}: {message}")
    return "; ".join(parts)
