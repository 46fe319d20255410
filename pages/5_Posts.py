"""Posts: the blog posts saved by blog-post requests, newest first; open one to read it."""

from __future__ import annotations

import uuid

import streamlit as st

from console_kinds.blog_post import safe_markdown
from console_time import in_viewer_zone, time_column, when_here
from console_ui import (
    can_submit,
    current_user,
    database,
    escape_markdown,
    page_header,
    refresh_when_changed,
    show_unavailable,
    status_badge,
)
from db.connection import QueueUnavailable
from db.posts import Post, get_post, get_post_image, list_posts

st.set_page_config(page_title="Posts · Inkwell", layout="wide")
page_header("Posts")
st.caption("Blog posts saved by blog-post requests (auto-save). Drafts unless the request asked to publish.")


def image_state(status: str | None, has_image: bool) -> str:
    if has_image:
        return "ready"
    return status or "—"


def show_post(post: Post) -> None:
    st.subheader(escape_markdown(post.title))
    if post.subheader:
        st.markdown(f"*{escape_markdown(post.subheader)}*")
    st.caption(
        f"{'Draft' if post.status == 'draft' else 'Published'} · {post.word_count:,} words"
        + (f" · {escape_markdown(post.organization)}" if post.organization else "")
        + f" · saved {when_here(post.created_at)}"
    )
    st.markdown(f"**Meta description:** {escape_markdown(post.meta_description)}")
    chain, image_link = st.columns(2)
    chain.page_link("pages/3_History.py", label=f"Blog-post request ({status_badge(post.request_status)})",
                    icon=":material/article:", query_params={"request": str(post.request_id)})
    if post.image_request_id:
        image_link.page_link("pages/3_History.py", label=f"→ Image request ({status_badge(post.image_status or '')})",
                             icon=":material/image:", query_params={"request": str(post.image_request_id)})
    if post.has_image:
        with database() as conn:
            image = get_post_image(conn, post.id)
        if image is not None:
            st.image(image.image, width=640)
    elif post.image_request_id:
        if post.image_status == "failed":
            st.warning(f"The image could not be made: {escape_markdown(post.image_error or 'see its request')}")
        else:
            st.caption(f"Image: {escape_markdown(post.image_status or 'queued')} — it appears here when ready.")
    with st.container(border=True):
        st.markdown(safe_markdown(post.body_markdown))


def posts_table_key(posts: list[Post]) -> str:
    """The table's widget key: the same while the rows keep their places (a selection stays on its
    post); a new one when they move (the open post stays open through its link)."""
    ids = [p.id for p in posts]
    if st.session_state.get("posts_ids") not in (None, ids):
        st.session_state["posts_table_version"] = st.session_state.get("posts_table_version", 0) + 1
    st.session_state["posts_ids"] = ids
    return f"posts_table_{st.session_state.get('posts_table_version', 0)}"


# New posts and images appear by themselves: the page runs again when the posts' change counter moves.
refresh_when_changed("posts", ("posts",), on_change=lambda: None)
try:
    with database() as conn:
        posts = list_posts(conn)
except QueueUnavailable:
    show_unavailable()
    st.stop()

if not posts:
    st.info("No posts yet. Submit a blog post request; with “Save to Posts” ticked it lands here.")
    if can_submit(current_user()):
        st.page_link("pages/1_Submit.py", label="Submit a blog post", icon=":material/add_circle:")
    st.stop()

rows = [
    {
        "Title": p.title,
        "Status": p.status,
        "Words": p.word_count,
        "Image": image_state(p.image_status, p.has_image),
        "Saved": in_viewer_zone(p.created_at),
    }
    for p in posts
]
table_key = posts_table_key(posts)
picked = st.dataframe(rows, key=table_key, hide_index=True, on_select="rerun", selection_mode="single-row",
                      column_config={"Saved": time_column()})
selected = picked.selection.rows if picked else []
if selected:
    st.query_params["post"] = str(posts[selected[0]].id)  # the open post's own link
elif st.session_state.get("posts_selected_in") == table_key:
    st.query_params.pop("post", None)  # the reader cleared the selection: close the post
st.session_state["posts_selected_in"] = table_key if selected else None
post_id = st.query_params.get("post")

if post_id:
    post = None
    try:
        with database() as conn:
            post = get_post(conn, uuid.UUID(post_id))
    except QueueUnavailable:
        show_unavailable()
        st.stop()
    except ValueError:
        pass  # not a post id: said below
    if post is None:
        st.warning("That link does not name a saved post.")
    else:
        show_post(post)
else:
    st.caption("Select a post to read it.")
