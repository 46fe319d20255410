"""Blog posts: the Submit form, the result view, and the safe Markdown rendering of a post body.

A post body is model output in Markdown. It is shown as Markdown (headings, lists, emphasis) but
with everything that could reach outside the page removed: no HTML, no images, no links, no
Streamlit colour/icon directives, no maths.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pydantic
import streamlit as st

from console_kinds.plain_text import as_text, unlinked
from console_ui import escape_markdown
from db.requests import GenerationRequest
from queue_tasks.blog_posts import KIND, BlogPostInput
from queue_tasks.models import describe_validation_error

QueueRequests = Callable[..., None]

_REFERENCE_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S.*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]\n]*)\](?:\([^)\n]*\)|\[[^\]\n]*\])?")
_LINK = re.compile(r"\[([^\]\n]*)\](?:\([^)\n]*\)|\[[^\]\n]*\])")
# Characters that could start HTML, an autolink, an image, a link, a Streamlit directive or maths.
_ACTIVE = re.compile(r"([\\<>\[\]!:$`])")


def safe_markdown(text: str) -> str:
    """Markdown with its structure kept and nothing that loads, links or runs: images become their
    alt text, links their text, and HTML, URLs and directives are shown as plain characters."""
    text = unlinked(text)  # bare URLs and e-mail addresses, which GFM would make links of
    text = _REFERENCE_DEFINITION.sub("", text)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    return _ACTIVE.sub(r"\\\1", text)


def show_result(request: GenerationRequest) -> None:
    result = request.result or {}
    st.markdown(f"### {as_text(result.get('title', ''))}")
    if result.get("meta_description"):
        st.caption(f"Meta description: {as_text(result['meta_description'])}")
    facts = [f"{result.get('word_count', 0):,} words"]
    if result.get("post_id"):
        facts.append("saved to Posts")
    if result.get("image_request_id"):
        facts.append(f"image request {result['image_request_id']}")
    st.caption(" · ".join(facts))
    if result.get("post_id"):
        st.page_link("pages/5_Posts.py", label="Open the saved post", icon=":material/article:",
                     query_params={"post": str(result["post_id"])})
    if result.get("image_request_id"):
        st.page_link("pages/3_History.py", label="Open the image request (child)", icon=":material/image:",
                     query_params={"request": str(result["image_request_id"])})
    with st.expander("Outline"):
        st.markdown("\n".join(
            f"{i}. {as_text(section.get('heading', ''))}"
            for i, section in enumerate(result.get("outline") or [], 1)
        ) or "—")
    with st.container(border=True):
        st.markdown(safe_markdown(str(result.get("body_markdown", ""))))


def forms(queue_requests: QueueRequests) -> None:
    with st.form("blog_post_request"):
        topic = st.text_input("Title or topic", placeholder="e.g. composting in small apartments", max_chars=200, key="blog_topic")
        subheader = st.text_input("Subheader (optional)", max_chars=200, key="blog_subheader")
        st.markdown("**Business info** (optional)")
        left, middle, right = st.columns(3)
        business_type = left.text_input("Business type", placeholder="e.g. garden shop", max_chars=200, key="blog_business_type")
        audience = middle.text_input("Target audience", placeholder="e.g. city renters", max_chars=200, key="blog_audience")
        voice = right.text_input("Brand voice", placeholder="e.g. friendly, practical", max_chars=200, key="blog_voice")
        organization = st.text_input(
            "Business name (optional)", max_chars=200, key="blog_organization", placeholder="e.g. Green Corner",
            help="The name of the business the post is written for; the post may mention it.",
        )
        instructions = st.text_area("Additional instructions (optional)", max_chars=2_000, key="blog_instructions")
        save, draft, visuals = st.columns(3)
        auto_save = save.checkbox("Save to Posts", value=True, key="blog_auto_save")
        as_draft = draft.checkbox("Save as a draft", value=True, key="blog_draft", help="Untick to save it as published.")
        include_visuals = visuals.checkbox("Include visuals (an image)", value=False, key="blog_visuals",
                                           help="After the post is saved, an image request is queued for it.")
        submitted = st.form_submit_button("Submit", type="primary", key="blog_submit")
    if submitted:
        try:
            data = BlogPostInput(
                topic=topic, subheader=subheader, organization=organization, additional_instructions=instructions,
                business={"business_type": business_type, "target_audience": audience, "brand_voice": voice},
                auto_save=auto_save, status="draft" if as_draft else "published", include_visuals=include_visuals,
            )
        except pydantic.ValidationError as error:
            st.error(f"Nothing was queued. {escape_markdown(describe_validation_error(error))}")
            return
        # Queued: the text fields empty; the options (save, draft, visuals) stay as chosen.
        queue_requests(KIND, [data], reset=dict.fromkeys(
            ("blog_topic", "blog_subheader", "blog_business_type", "blog_audience", "blog_voice",
             "blog_organization", "blog_instructions"), ""))


def show_image_result(request: GenerationRequest) -> None:
    from console_ui import database
    from db.posts import get_post_image

    result = request.result or {}
    st.page_link("pages/3_History.py", label="Open the blog-post request (parent)", icon=":material/article:",
                 query_params={"request": str(result.get("parent_request_id", ""))})
    if result.get("post_id"):
        with database() as conn:
            image = get_post_image(conn, result["post_id"])
        if image is not None:
            st.image(image.image, caption="Placeholder image" if result.get("placeholder") else None, width=480)
            st.page_link("pages/5_Posts.py", label="Open the post", icon=":material/article:",
                         query_params={"post": str(result["post_id"])})
