"""Posts: the blog posts saved by blog-post requests, newest first; open one to read it, copy or
download it as Markdown, publish or unpublish it, delete it."""

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
from db.people import ActionRefused
from db.posts import Post, delete_post, get_post, get_post_image, list_posts, may_change_post, set_post_status

st.set_page_config(page_title="Posts · Inkwell", layout="wide")
page_header("Posts")
st.caption("Blog posts saved by blog-post requests (auto-save). Drafts unless the request asked to publish.")


def image_state(status: str | None, has_image: bool) -> str:
    if has_image:
        return "ready"
    return status or "—"


def notify(text: str, icon: str) -> None:
    st.session_state["posts_notice"] = (text, icon)


def change_status(post_id: uuid.UUID, status: str, title: str) -> None:
    """Publish / Unpublish callback: runs before the page, so the list and the post show the outcome."""
    try:
        with database() as conn:
            changed = set_post_status(conn, post_id, status)
    except QueueUnavailable:
        notify("Nothing was changed: the database is unavailable — try again later.", ":material/cloud_off:")
    except ActionRefused as refusal:
        notify(str(refusal), ":material/block:")
    else:
        done = "published" if status == "published" else "back to a draft"
        notify(f"“{title}” is {done}." if changed else f"“{title}” was {done} already.", ":material/check_circle:")


def delete(post_id: uuid.UUID, title: str) -> None:
    """The confirmed Delete: the post and its image go; the request that wrote it keeps its text."""
    try:
        with database() as conn:
            delete_post(conn, post_id)
    except QueueUnavailable:
        notify("Nothing was deleted: the database is unavailable — try again later.", ":material/cloud_off:")
    except ActionRefused as refusal:
        notify(str(refusal), ":material/block:")
    else:
        st.query_params.pop("post", None)
        notify(f"Deleted “{title}”. Its blog-post request keeps the text in History.", ":material/delete:")


def show_actions(post: Post) -> None:
    """Copy and download for everyone who reads it; publish, unpublish and delete only where the
    database allows them (an editor's own posts, any for operators and admins)."""
    user = current_user()
    copy, download, status, remove = st.columns(4)
    with copy.popover("Copy as Markdown", icon=":material/content_copy:"):
        st.caption("The copy button is at the top right of the text.")
        st.code(post.as_markdown(), language="markdown", wrap_lines=True)
    download.download_button(
        "Download .md", post.as_markdown(), file_name=post.file_name, mime="text/markdown",
        icon=":material/download:", key=f"post_download_{post.id}", on_click="ignore",
    )
    if not may_change_post(user.role, user.id, post):
        status.caption("Only the person who asked for this post, an operator or an admin can publish or delete it."
                       if user.role == "editor" else "Your role reads posts; it does not change them.")
        return
    title = post.title
    if post.status == "draft":
        status.button("Publish", key=f"post_publish_{post.id}", icon=":material/publish:", type="primary",
                      on_click=change_status, args=(post.id, "published", title))
    else:
        status.button("Unpublish", key=f"post_unpublish_{post.id}", icon=":material/unpublished:",
                      on_click=change_status, args=(post.id, "draft", title))
    # Deleting cannot be undone: it asks first.
    with remove.popover("Delete", icon=":material/delete:"):
        st.markdown(f"Delete “{escape_markdown(title)}” and its image? This cannot be undone; "
                    "its blog-post request keeps the text in History.")
        st.button("Yes, delete", key=f"post_delete_{post.id}", type="primary", on_click=delete, args=(post.id, title))


def show_post(post: Post) -> None:
    st.subheader(escape_markdown(post.title))
    if post.subheader:
        st.markdown(f"*{escape_markdown(post.subheader)}*")
    st.caption(
        f"{'Draft' if post.status == 'draft' else 'Published'} · by {escape_markdown(post.author)}"
        f" · {post.word_count:,} words"
        + (f" · {escape_markdown(post.organization)}" if post.organization else "")
        + f" · saved {when_here(post.created_at)}"
    )
    show_actions(post)
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
if notice := st.session_state.pop("posts_notice", None):
    st.toast(escape_markdown(notice[0]), icon=notice[1])
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
        "Author": p.author,
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
        st.warning("That link names no saved post: it was deleted, or it belongs to another organization. "
                   "A deleted post's blog-post request keeps its text in History.")
    else:
        show_post(post)
else:
    st.caption("Select a post to read it.")
