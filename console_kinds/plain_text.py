"""Model output shown as plain text inside Markdown: escaped, and with no link made of it.

Escaping stops HTML, images, links, directives and maths, but not GFM's literal autolinks: the
renderer turns bare `http://…`, `www.…` and e-mail addresses in the *text* into links after the
escapes are read, so a backslash cannot prevent it. An invisible word joiner (U+2060) inside the
pattern does: the text reads the same and nothing in it is clickable.
"""

from __future__ import annotations

from console_ui import WORD_JOINER, escape_markdown, unlinked

__all__ = ["WORD_JOINER", "as_text", "unlinked"]


def as_text(value: object) -> str:
    """Any value from a result, as Markdown that shows exactly its text and nothing live."""
    return escape_markdown(str(value))
