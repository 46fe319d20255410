"""Model output and user text are shown as text, never as markup."""

from __future__ import annotations

from console_ui import escape_markdown


def test_html_and_script_tags_are_escaped():
    assert escape_markdown("<script>alert(1)</script>") == "\\<script\\>alert\\(1\\)\\</script\\>"


def test_images_and_links_cannot_load_anything():
    escaped = escape_markdown("![x](http://evil.example/pixel.png) [click](javascript:alert(1))")
    assert "](" not in escaped.replace("\\]\\(", "")


def test_streamlit_colour_and_icon_directives_are_neutralised():
    assert escape_markdown(":red[alert] :material/home:") == "\\:red\\[alert\\] \\:material/home\\:"


def test_plain_words_are_unchanged():
    assert escape_markdown("Composting for Renters") == "Composting for Renters"


def test_bare_addresses_in_any_escaped_text_cannot_become_links():
    # GFM links bare http(s)://, www. and e-mail addresses after escapes are read; the word
    # joiner breaks the pattern, and the text still reads the same.
    shown = escape_markdown("see https://evil.example, www.evil.example or ana@evil.example")
    assert "https\\:\u2060//" in shown and "www\u2060\\." in shown and "@\u2060evil" in shown
    assert shown.replace("\u2060", "").replace("\\", "") == "see https://evil.example, www.evil.example or ana@evil.example"
