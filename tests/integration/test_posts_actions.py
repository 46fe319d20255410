"""Posts: publish, unpublish, copy, download and delete, decided by the database (migration 0120) and
offered on the Posts page only where they can work; deleting a post keeps the request that wrote it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid

import psycopg
import pytest

from db.people import ActionRefused, acting_as, audit_entries, start_session
from db.posts import PostNotFound, delete_post, get_post, save_post, set_post_status
from db.requests import get_request
from queue_tasks.blog_posts import BlogPostInput
from queue_tasks.images import PostImageInput
from queue_tasks.submit import submit_requests
from tests.support.console import make_user, signed_in_app

PAGE = "pages/5_Posts.py"
BODY = "Intro.\n\n## Bins\n\nA small bin.\n"


def post_by(db, database_url, user, *, title: str = "Composting indoors", with_image: bool = False) -> uuid.UUID:
    """A saved post written by a blog-post request of `user` (and, with_image, its queued image request)."""
    data = BlogPostInput.model_validate({"topic": title})
    with acting_as(db, user):
        [request_id] = submit_requests(db, "blog_post", [data], requested_by=user.display_name)
    result = {"title": title, "body_markdown": BODY, "word_count": 6}
    db.execute("UPDATE inkwell.requests SET status = 'succeeded', result = %s WHERE id = %s",
               (psycopg.types.json.Jsonb(result), request_id))

    async def save():
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await save_post(
                conn, request_id=request_id, title=title, subheader="no garden needed", meta_description="m",
                outline=[], body_markdown=BODY, word_count=6, organization=None, status="draft",
            )

    # In its own thread: a browser test's Playwright already runs an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        post_id = thread.submit(asyncio.run, save()).result().id
    if with_image:
        image = PostImageInput(topic=title, post_id=post_id, parent_request_id=request_id, description="a bin")
        [image_id] = submit_requests(db, "post_image", [image], requested_by="worker")
        db.execute("UPDATE inkwell.requests SET user_id = NULL, organization_id = NULL WHERE id = %s", (image_id,))
        db.execute("UPDATE inkwell.posts SET image_request_id = %s WHERE id = %s", (image_id, post_id))
    return post_id


def status_of(db, post_id) -> str | None:
    row = db.execute("SELECT status FROM inkwell.posts WHERE id = %s", (post_id,)).fetchone()
    return row[0] if row else None


def actions_logged(db, post_id) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT action, actor_name FROM inkwell.audit_log WHERE target_type = 'post' AND target_id = %s ORDER BY id",
        (str(post_id),),
    ).fetchall()


# --- The database decides --------------------------------------------------------------------------


def test_an_editor_publishes_and_unpublishes_their_own_post_and_each_change_is_audited(db, database_url):
    ana = make_user(db, "editor", username="ana")
    post_id = post_by(db, database_url, ana)

    with acting_as(db, ana):
        assert set_post_status(db, post_id, "published") is True
        assert set_post_status(db, post_id, "published") is False, "published already: nothing to do"
    assert status_of(db, post_id) == "published"
    with acting_as(db, ana):
        set_post_status(db, post_id, "draft")
    assert status_of(db, post_id) == "draft"
    assert actions_logged(db, post_id) == [("post.published", "ana"), ("post.unpublished", "ana")]


def test_an_editor_cannot_change_a_colleagues_post_but_an_operator_and_an_admin_can(db, database_url):
    ana, ben = make_user(db, "editor", username="ana"), make_user(db, "editor", username="ben")
    post_id = post_by(db, database_url, ana)

    with acting_as(db, ben):
        assert get_post(db, post_id) is not None, "ben reads his organization's post"
        with pytest.raises(ActionRefused, match="only the person who asked for it, an operator or an admin"):
            set_post_status(db, post_id, "published")
        with pytest.raises(ActionRefused, match="not delete it"):
            delete_post(db, post_id)
    assert status_of(db, post_id) == "draft"

    with acting_as(db, make_user(db, "operator", username="olga")):
        set_post_status(db, post_id, "published")
    with acting_as(db, make_user(db, "admin", username="adam")):
        delete_post(db, post_id)
    assert status_of(db, post_id) is None
    assert actions_logged(db, post_id) == [("post.published", "olga"), ("post.deleted", "adam")]


def test_an_analyst_changes_no_post_and_another_organization_does_not_learn_it_exists(db, database_url):
    post_id = post_by(db, database_url, make_user(db, "editor", username="ana"))

    with acting_as(db, make_user(db, "analyst", username="ada")), pytest.raises(ActionRefused, match=r"role \(analyst\) can read posts but not publish"):
        set_post_status(db, post_id, "published")
    stranger = make_user(db, "editor", username="gus", organization="Globex")
    with acting_as(db, stranger), pytest.raises(PostNotFound, match="There is no such post"):
        delete_post(db, post_id)
    with acting_as(db, stranger), pytest.raises(PostNotFound):
        delete_post(db, uuid.uuid4())
    assert status_of(db, post_id) == "draft"
    assert actions_logged(db, post_id) == []


def test_the_console_login_cannot_change_posts_but_through_the_functions(db, database_url, console_database_url):
    ana = make_user(db, "editor", username="ana")
    post_id = post_by(db, database_url, ana)
    token = start_session(db, ana.id)
    with psycopg.connect(console_database_url, autocommit=True) as console:
        with acting_as(console, token):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                console.execute("DELETE FROM inkwell.posts WHERE id = %s", (post_id,))
        with acting_as(console, token):
            delete_post(console, post_id)
    assert status_of(db, post_id) is None


def test_deleting_a_post_keeps_its_request_result_and_image_request_readable(db, database_url):
    ana = make_user(db, "editor", username="ana")
    post_id = post_by(db, database_url, ana, with_image=True)
    request_id, image_request_id = db.execute(
        "SELECT request_id, image_request_id FROM inkwell.posts WHERE id = %s", (post_id,)
    ).fetchone()

    with acting_as(db, ana):
        delete_post(db, post_id)

    with acting_as(db, ana):
        request = get_request(db, request_id)
        assert request is not None and request.status == "succeeded"
        assert request.result["body_markdown"] == BODY, "the request keeps the text"
        assert get_request(db, image_request_id) is not None, "the image request stays in ana's History"
        [entry] = audit_entries(db, action="post.deleted")
    assert entry["details"]["request_id"] == str(request_id) and entry["details"]["title"] == "Composting indoors"


# --- The Posts page ----------------------------------------------------------------------------------


def open_post(user, post_id):
    at = signed_in_app(user, PAGE)
    at.query_params["post"] = str(post_id)
    return at.run()


def labels(at) -> list[str]:
    return [b.label for b in at.button] + [p.proto.popover.label for p in at.get("popover")]


def test_the_author_publishes_copies_downloads_and_deletes_after_confirming(db, database_url, console_env):
    ana = make_user(db, "editor", username="ana", display_name="Ana Lima")
    post_id = post_by(db, database_url, ana)
    at = open_post(ana, post_id)
    assert not at.exception
    assert any("by Ana Lima" in c.value for c in at.caption)
    assert at.dataframe[0].value["Author"].tolist() == ["Ana Lima"]
    [markdown] = [c.value for c in at.code]
    assert markdown.rstrip() == ("# Composting indoors\n\n*no garden needed*\n\n" + BODY).rstrip()
    assert [d.label for d in at.get("download_button")] == ["Download .md"]

    at.button(key=f"post_publish_{post_id}").click().run()
    assert status_of(db, post_id) == "published"
    assert "is published" in at.toast[0].value
    assert "Unpublish" in labels(at)

    at.button(key=f"post_delete_{post_id}").click().run()
    assert not at.exception
    assert status_of(db, post_id) is None
    assert "post" not in at.query_params
    assert "Deleted “Composting indoors”" in at.toast[0].value
    assert actions_logged(db, post_id) == [("post.published", "ana"), ("post.deleted", "ana")]


def test_a_colleague_and_an_analyst_may_copy_and_download_but_are_offered_no_change(db, database_url, console_env):
    post_id = post_by(db, database_url, make_user(db, "editor", username="ana"))
    for reader, says in ((make_user(db, "editor", username="ben"), "Only the person who asked for this post"),
                         (make_user(db, "analyst", username="ada"), "does not change them")):
        at = open_post(reader, post_id)
        assert not at.exception
        assert not {"Publish", "Unpublish", "Delete"} & set(labels(at)), labels(at)
        assert [d.label for d in at.get("download_button")] == ["Download .md"]
        assert any(says in c.value for c in at.caption)
