"""Reading and writing saved blog posts and their images (inkwell.posts, inkwell.post_images).

The worker saves with the async functions; the console reads with the sync ones, and publishes,
unpublishes and deletes through the database functions of migration 0120, which decide who may
(an editor their own posts, operators and admins any, analysts none) and write the audit entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.people import ActionRefused
from db.queries import QUERIES
from db.requests import NewRequest

# Who may publish, unpublish and delete any post; an editor only the posts of their own requests.
POST_EDITORS = ("operator", "admin")


class PostSummary(BaseModel):
    """A row of the Posts list."""

    id: uuid.UUID
    request_id: uuid.UUID
    title: str
    subheader: str | None
    status: str
    word_count: int
    organization: str | None
    created_at: dt.datetime
    image_request_id: uuid.UUID | None
    image_status: str | None
    has_image: bool
    author: str
    author_id: int | None


class Post(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    title: str
    subheader: str | None
    meta_description: str
    outline: list[Any]
    body_markdown: str
    word_count: int
    organization: str | None
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    image_request_id: uuid.UUID | None
    request_status: str
    image_status: str | None
    image_error: str | None
    has_image: bool
    author: str
    author_id: int | None

    def as_markdown(self) -> str:
        """The post as one Markdown document, as the model wrote it (for copying or a .md file)."""
        parts = [f"# {self.title}"]
        if self.subheader:
            parts.append(f"*{self.subheader}*")
        parts.append(self.body_markdown.strip())
        return "\n\n".join(parts) + "\n"

    @property
    def file_name(self) -> str:
        words = re.findall(r"[a-z0-9]+", self.title.lower())
        return "-".join(words)[:80].strip("-") + ".md" if words else f"post-{self.id}.md"


class PostImage(BaseModel):
    post_id: uuid.UUID
    request_id: uuid.UUID
    content_type: str
    image: bytes
    width: int | None
    height: int | None
    description: str
    created_at: dt.datetime


class SavedPost(BaseModel):
    id: uuid.UUID
    image_request_id: uuid.UUID | None


async def save_post(
    conn: psycopg.AsyncConnection,
    *,
    request_id: uuid.UUID | str,
    title: str,
    subheader: str | None,
    meta_description: str,
    outline: list[Any],
    body_markdown: str,
    word_count: int,
    organization: str | None,
    status: str,
) -> SavedPost:
    """Insert the request's post, or rewrite it if this request saved one already."""
    async with conn.cursor(row_factory=class_row(SavedPost)) as cur:
        await cur.execute(
            QUERIES["save_post"],
            {
                "request_id": request_id,
                "title": title,
                "subheader": subheader,
                "meta_description": meta_description,
                "outline": Jsonb(outline),
                "body_markdown": body_markdown,
                "word_count": word_count,
                "organization": organization,
                "status": status,
            },
        )
        return await cur.fetchone()


async def insert_follow_up_request(conn: psycopg.AsyncConnection, request: NewRequest) -> None:
    """A request queued by a job (not by a person), in the caller's transaction."""
    await conn.execute(
        QUERIES["insert_requests"],
        {
            "ids": [request.id],
            "kinds": [request.kind],
            "inputs": [Jsonb(request.input)],
            "statuses": ["queued"],
            "requested_by": [request.requested_by],
            "queue_names": [request.queue_name],
            "scheduled_ats": [None],
            "job_ids": [request.job_id],
        },
    )


async def claim_post_image_request(
    conn: psycopg.AsyncConnection, post_id: uuid.UUID, image_request_id: uuid.UUID
) -> bool:
    """True if the post had no image request and now has this one."""
    cur = await conn.execute(
        QUERIES["claim_post_image_request"], {"post_id": post_id, "image_request_id": image_request_id}
    )
    return await cur.fetchone() is not None


async def get_post_image_request_id(conn: psycopg.AsyncConnection, post_id: uuid.UUID) -> uuid.UUID | None:
    cur = await conn.execute(QUERIES["get_post_image_request_id"], {"post_id": post_id})
    row = await cur.fetchone()
    return row[0] if row else None


async def get_post_async(conn: psycopg.AsyncConnection, post_id: uuid.UUID | str) -> Post | None:
    async with conn.cursor(row_factory=class_row(Post)) as cur:
        await cur.execute(QUERIES["get_post"], {"post_id": post_id, "request_id": None})
        return await cur.fetchone()


async def save_post_image(
    conn: psycopg.AsyncConnection,
    *,
    post_id: uuid.UUID | str,
    request_id: uuid.UUID | str,
    content_type: str,
    image: bytes,
    width: int | None,
    height: int | None,
    description: str,
) -> None:
    await conn.execute(
        QUERIES["save_post_image"],
        {
            "post_id": post_id,
            "request_id": request_id,
            "content_type": content_type,
            "image": image,
            "width": width,
            "height": height,
            "description": description,
        },
    )


def list_posts(conn: psycopg.Connection, limit: int = 200) -> list[PostSummary]:
    with conn.cursor(row_factory=class_row(PostSummary)) as cur:
        return cur.execute(QUERIES["list_posts"], {"limit": limit}).fetchall()


def get_post(conn: psycopg.Connection, post_id: uuid.UUID | str) -> Post | None:
    with conn.cursor(row_factory=class_row(Post)) as cur:
        return cur.execute(QUERIES["get_post"], {"post_id": post_id, "request_id": None}).fetchone()


def get_post_by_request(conn: psycopg.Connection, request_id: uuid.UUID | str) -> Post | None:
    with conn.cursor(row_factory=class_row(Post)) as cur:
        return cur.execute(QUERIES["get_post"], {"post_id": None, "request_id": request_id}).fetchone()


def get_post_image(conn: psycopg.Connection, post_id: uuid.UUID | str) -> PostImage | None:
    with conn.cursor(row_factory=class_row(PostImage)) as cur:
        return cur.execute(QUERIES["get_post_image"], {"post_id": post_id}).fetchone()


class PostNotFound(ActionRefused):
    """No such post, or one the acting user may not read (the two are not told apart)."""


def may_change_post(role: str, user_id: int, post: Post | PostSummary) -> bool:
    """What the database allows (migration 0120), so the page offers only actions that can work."""
    return role in POST_EDITORS or (role == "editor" and post.author_id == user_id)


def set_post_status(conn: psycopg.Connection, post_id: uuid.UUID | str, status: str) -> bool:
    """Publish ('published') or unpublish ('draft') as the acting user; False if it had that status.
    ActionRefused (PostNotFound) saying why when the database refuses."""
    with _refusals_as_action_refused(), conn.transaction():
        return conn.execute(QUERIES["set_post_status"], {"post_id": post_id, "status": status}).fetchone()[0]


def delete_post(conn: psycopg.Connection, post_id: uuid.UUID | str) -> None:
    """Delete the post and its image as the acting user; the request that wrote it keeps its result."""
    with _refusals_as_action_refused(), conn.transaction():
        conn.execute(QUERIES["delete_post"], {"post_id": post_id})


@contextlib.contextmanager
def _refusals_as_action_refused() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.NoDataFound as error:
        raise PostNotFound(error.diag.message_primary) from None
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidParameterValue) as error:
        raise ActionRefused(error.diag.message_primary) from None
