"""A streaming answer shown as what it is becoming, never as raw JSON.

The model streams a JSON document; the Live page gets its latest part (db: partial_text). Closing
what is still open (a string, arrays, objects) makes it readable as the document so far: titles
as a growing list, a post's sections as headings and text. When even that fails (the stored tail
starts in the middle of the document), the text of its strings is shown, without the syntax.
"""

from __future__ import annotations

import json
import re

import streamlit as st

# How far back from the end to try cutting an incomplete token (a number, `tru`, a key's colon).
_MAX_CUTS = 40
_JSON_SYNTAX = re.compile(r"[\s,:\[\]{}0-9.eE+\-]*(?:(?:true|false|null)[\s,:\[\]{}0-9.eE+\-]*)*")
_HEADING_KEYS = ("heading", "title", "name")


def _closed(text: str) -> str | None:
    """The text with its open string, arrays and objects closed; None when it is not JSON so far."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
        elif char in "]}":
            if not stack:
                return None
            stack.pop()
    if escaped:
        text = text[:-1]
    if in_string:
        text += '"'
    return text + "".join(reversed(stack))


def document_so_far(text: str | None) -> object | None:
    """The streamed JSON document as far as it has come, or None when the text is not its beginning."""
    if not text or not text.lstrip().startswith(("{", "[")):
        return None
    for cut in range(min(_MAX_CUTS, len(text))):
        candidate = text[: len(text) - cut].rstrip().rstrip(",:")
        closed = _closed(candidate)
        if closed is None:
            return None
        try:
            return json.loads(closed)
        except ValueError:
            continue
    return None


def _split(text: str, starts_inside: bool) -> tuple[list[tuple[str, int]], str]:
    """(string contents with the index after each, the text outside the strings)."""
    strings, outside, current = [], [], []
    inside, escaped = starts_inside, False
    for index, char in enumerate(text):
        if inside:
            if escaped:
                escaped = False
                current.append(char)
            elif char == "\\":
                escaped = True
                current.append(char)
            elif char == '"':
                strings.append(("".join(current), index + 1))
                current, inside = [], False
            else:
                current.append(char)
        elif char == '"':
            inside = True
        else:
            outside.append(char)
    if inside and current:
        strings.append(("".join(current), len(text)))
    return strings, "".join(outside)


def strings_in(text: str) -> list[str]:
    """The text of the string values in a piece of JSON (keys left out), for a tail that cannot be
    parsed: the tail may begin inside a string, so the reading whose rest is JSON syntax is taken."""
    for starts_inside in (False, True):
        strings, outside = _split(text, starts_inside)
        if _JSON_SYNTAX.fullmatch(outside):
            break
    found = []
    for raw, after in strings:
        if text[after:].lstrip().startswith(":"):
            continue  # a key
        try:
            found.append(json.loads(f'"{raw}"'))
        except ValueError:
            found.append(raw)
    return [piece for piece in found if piece.strip()]


def label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def show_document(document: object, escape, *, depth: int = 0) -> None:
    """Headings and text, lists as lists: the shape of the answer, in words."""
    if isinstance(document, str):
        st.markdown(escape(document))
    elif isinstance(document, list):
        if all(isinstance(item, str) for item in document):
            st.markdown("\n".join(f"{i}. {escape(item)}" for i, item in enumerate(document, start=1)))
        else:
            for item in document:
                show_document(item, escape, depth=depth + 1)
    elif isinstance(document, dict):
        heading = next((document[k] for k in _HEADING_KEYS if isinstance(document.get(k), str)), None)
        if heading is not None:
            st.markdown(f"{'#' * min(6, 4 + depth)} {escape(heading)}")
        for key, value in document.items():
            if value is None or value == "" or value == [] or (heading is not None and value == heading):
                continue
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                if len(str(value)) > 80:
                    st.markdown(escape(str(value)))
                else:
                    st.markdown(f"**{escape(label(key))}:** {escape(str(value))}")
            elif isinstance(value, list) and all(isinstance(item, str) for item in value) and key != "titles":
                st.markdown(f"**{escape(label(key))}**")
                show_document(value, escape, depth=depth + 1)
            elif not isinstance(value, bool):
                show_document(value, escape, depth=depth + 1)


def show_partial_answer(text: str, escape) -> None:
    """The answer streaming in, as it will read; `escape` makes model text safe Markdown."""
    document = document_so_far(text)
    if document is not None:
        show_document(document, escape)
        return
    pieces = strings_in(text)
    if pieces:
        st.markdown("…" + escape(" ".join(pieces)[-600:]))
