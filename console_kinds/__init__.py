"""What the console shows of each kind of job: its result view, and its Submit forms.

A kind registers here by module; pages call `show_result` and `FORMS_BY_KIND` and need not know
the kinds. Results are model output: every view renders them as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from console_kinds import blog_post, site_build, titles, website_analysis
from db.requests import GenerationRequest
from queue_tasks.images import KIND as POST_IMAGE

# A Submit form gets the page's `queue_requests(kind, inputs)` so every kind queues the same way.
QueueRequests = Callable[..., None]

RESULT_VIEWS: dict[str, Callable[[GenerationRequest], None]] = {
    titles.KIND: titles.show_result,
    blog_post.KIND: blog_post.show_result,
    POST_IMAGE: blog_post.show_image_result,
    website_analysis.KIND: website_analysis.show_result,
    site_build.KIND: site_build.show_result,
    site_build.PROMOTION_KIND: site_build.show_promotion_result,
}
# Only the kinds people start on the Submit page (see JobKind.offered_on_submit).
FORMS_BY_KIND: dict[str, Callable[[QueueRequests], None]] = {
    titles.KIND: titles.forms,
    blog_post.KIND: blog_post.forms,
    website_analysis.KIND: website_analysis.forms,
    site_build.KIND: site_build.forms,
}

def show_result(request: GenerationRequest) -> None:
    if not request.result:
        st.caption("No result.")
        return
    view = RESULT_VIEWS.get(request.kind)
    if view is None:
        st.json(request.result, expanded=False)
    else:
        view(request)
    show_source(request)


def show_source(request: GenerationRequest) -> None:
    from console_kinds.plain_text import as_text

    source = "the offline model" if request.offline_model else as_text(request.model_name or "the model")
    tokens = request.result.get("tokens_used") if request.result else None
    st.caption(f"From {source}" + (f" · {tokens:,} tokens" if isinstance(tokens, int) else "") + f" · attempt {request.attempts}")
