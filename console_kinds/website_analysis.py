"""Website analysis: the Submit form, and the result view with "Write a blog post from this"."""

from __future__ import annotations

from collections.abc import Callable

import pydantic
import streamlit as st

from console_kinds.plain_text import as_text
from console_ui import database, escape_markdown, show_unavailable
from db.connection import QueueUnavailable
from db.requests import GenerationRequest
from queue_tasks.blog_posts import KIND as BLOG_POST, BlogPostInput
from queue_tasks.models import describe_validation_error
from queue_tasks.submit import SubmitError, submit_requests
from queue_tasks.website_analysis import KIND, WebsiteAnalysisInput

QueueRequests = Callable[..., None]


def blog_post_from_analysis(result: dict, topic: str) -> BlogPostInput:
    """A blog-post request with the analysis's business info filled in."""
    return BlogPostInput(
        topic=topic[:200],
        organization=(result.get("page_title") or "").split("|")[0].strip()[:200] or None,
        business={
            "business_type": (result.get("business_type") or "")[:200],
            "target_audience": (result.get("target_audience") or "")[:200],
            "brand_voice": (result.get("tone_of_voice") or "")[:200],
        },
    )


def queue_blog_post(request: GenerationRequest, topic: str) -> None:
    requester = (st.session_state.get("requester") or "").strip() or request.requested_by
    try:
        data = blog_post_from_analysis(request.result or {}, topic)
        with database() as conn:
            (new_id,) = submit_requests(conn, BLOG_POST, [data], requested_by=requester)
    except QueueUnavailable:
        show_unavailable()
        return
    except (SubmitError, pydantic.ValidationError) as error:
        st.error(f"Nothing was queued. {escape_markdown(str(error))}")
        return
    st.success("Blog post request queued with this business info.", icon=":material/check_circle:")
    st.page_link("pages/3_History.py", label="Open the blog-post request", icon=":material/article:",
                 query_params={"request": str(new_id)})


def show_result(request: GenerationRequest) -> None:
    result = request.result or {}
    st.markdown(f"**{as_text(result.get('page_title') or result.get('final_url', ''))}**")
    if result.get("final_url") and result.get("final_url") != result.get("url"):
        st.caption(f"Fetched from {as_text(result['final_url'])} (after redirects)")
    st.markdown(
        "\n".join([
            f"- **Business type:** {as_text(result.get('business_type', ''))}",
            f"- **Target audience:** {as_text(result.get('target_audience', ''))}",
            f"- **Tone of voice:** {as_text(result.get('tone_of_voice', ''))}",
        ])
    )
    products = result.get("key_products_or_services") or []
    st.markdown("**Key products or services**  \n" + ("\n".join(f"- {as_text(p)}" for p in products) or "—"))
    topics = [str(t) for t in result.get("suggested_post_topics") or []]
    st.markdown("**Suggested post topics**  \n" + ("\n".join(f"{i}. {as_text(t)}" for i, t in enumerate(topics, 1)) or "—"))
    if topics and request.status == "succeeded":
        topic = st.selectbox("Topic for a blog post", topics, key=f"analysis_topic_{request.id}")
        if st.button("Write a blog post from this", key=f"analysis_write_{request.id}", type="primary"):
            queue_blog_post(request, topic)


def forms(queue_requests: QueueRequests) -> None:
    with st.form("website_analysis_request"):
        url = st.text_input("Website address", placeholder="e.g. https://www.example.com", max_chars=2_000, key="analysis_url")
        st.caption("The page is fetched by a worker: public web addresses only, HTML pages up to a few MB.")
        submitted = st.form_submit_button("Analyse", type="primary", key="analysis_submit")
    if submitted:
        try:
            data = WebsiteAnalysisInput(url=url)
        except pydantic.ValidationError as error:
            st.error(f"Nothing was queued. {escape_markdown(describe_validation_error(error))}")
            return
        queue_requests(KIND, [data], reset={"analysis_url": ""})
