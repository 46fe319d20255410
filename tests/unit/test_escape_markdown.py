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
