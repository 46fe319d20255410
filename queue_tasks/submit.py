"""Submitting requests: each request row and its queue job are written in one transaction.

Jobs and request rows are one statement on the caller's connection (queue_tasks/enqueue.py), so a
crash or an error at any point leaves either both or neither; `_submission_transaction` is the one
place the transaction around it is opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pydantic
from procrastinate.tasks import Task
from psycopg.pq import TransactionStatus

from db import idempotency, visitors
from db.connection import database_errors_as_unavailable
from db.credits import refusal, refusals_as
from db.people import User, organization_name
from inkwell_settings import get_settings
from queue_tasks import site_build, site_promotion
from queue_tasks.blog_posts import KIND as BLOG_POST, BlogPostInput, write_blog_post_task
from queue_tasks.enqueue import enqueue_requests
from queue_tasks.images import KIND as POST_IMAGE, PostImageInput, make_post_image
from queue_tasks.models import TitlesInput
from queue_tasks.titles import KIND as TITLES, generate_titles
from queue_tasks.website_analysis import KIND as WEBSITE_ANALYSIS, WebsiteAnalysisInput, analyse_website_task

logger = logging.getLogger("inkwell.jobs")


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    input_model: type[pydantic.BaseModel]
    task: Task
    # False for kinds queued only by other jobs or pages (a post's image, a site promotion).
    offered_on_submit: bool = True


JOB_KINDS: dict[str, JobKind] = {
    TITLES: JobKind(TITLES, "Titles", TitlesInput, generate_titles),
    BLOG_POST: JobKind(BLOG_POST, "Blog post", BlogPostInput, write_blog_post_task),
    WEBSITE_ANALYSIS: JobKind(WEBSITE_ANALYSIS, "Website analysis", WebsiteAnalysisInput, analyse_website_task),
    # One request per route × section; the Submit form starts a whole build (queue_tasks/site_build.py).
    site_build.KIND: JobKind(site_build.KIND, "Site build", site_build.SiteSectionInput, site_build.write_site_section),
    # Queued by a blog post with "include visuals".
    POST_IMAGE: JobKind(POST_IMAGE, "Post image", PostImageInput, make_post_image, offered_on_submit=False),
    # Started from a build on the Site builds page.
    site_promotion.KIND: JobKind(
        site_promotion.KIND, "Site promotion", site_promotion.SitePromotionInput, site_promotion.promote_site,
        offered_on_submit=False,
    ),
}
SUBMIT_PAGE_KINDS = [name for name, kind in JOB_KINDS.items() if kind.offered_on_submit]


DEFAULT_QUEUE = "default"
MAX_REQUESTER_CHARS = 100


class SubmitError(ValueError):
    """The submission was refused before anything was written.

    `sqlstate` names the database's refusal (db/credits.py: credits, limits), None for bad input.
    """

    sqlstate: str | None = None


def _check_requester(requested_by: str) -> str:
    name = (requested_by or "").strip()
    if not name:
        raise SubmitError("Say who is asking: the requester name is empty.")
    if len(name) > MAX_REQUESTER_CHARS:
        raise SubmitError(f"The requester name is longer than {MAX_REQUESTER_CHARS} characters.")
    return name


@contextlib.contextmanager
def _submission_transaction(conn: psycopg.Connection) -> Iterator[None]:
    """The transaction a submission commits in: the one place it is opened.

    Inside a transaction the caller opened (the console's acting_as, a script's own) it is psycopg's
    savepoint, so a refusal (credits, limits) undoes the submission only. On an idle autocommit
    connection nothing is opened: the submission is ONE statement (enqueue_requests), a transaction
    by itself, and psycopg's BEGIN and COMMIT would add two round trips to its one (psycopg sends
    BEGIN on its own round trip, even in pipeline mode). A second statement that must commit with
    the first needs `conn.transaction()` here instead of the shortcut.
    """
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        yield
    else:
        with conn.transaction():
            yield


def submit_requests(
    conn: psycopg.Connection,
    kind: str,
    inputs: Sequence[pydantic.BaseModel],
    *,
    requested_by: str,
    schedule_at: dt.datetime | None = None,
    queue: str = DEFAULT_QUEUE,
) -> list[uuid.UUID]:
    """Queue one request per input, all in one transaction (one statement); returns the request ids in order."""
    if kind not in JOB_KINDS:
        raise SubmitError(f"Unknown kind of job {kind!r}; known kinds: {', '.join(JOB_KINDS)}.")
    if not inputs:
        raise SubmitError("Nothing to submit.")
    if schedule_at is not None and schedule_at.tzinfo is None:
        raise SubmitError("A scheduled start needs a time zone.")
    job_kind = JOB_KINDS[kind]
    requester = _check_requester(requested_by)
    try:
        with database_errors_as_unavailable(), _submission_transaction(conn):
            queued = enqueue_requests(
                conn, job_kind.task, kind, inputs, requested_by=requester, schedule_at=schedule_at, queue=queue
            )
    except psycopg.Error as error:
        # The database refused it (credits, per-user limits: migration 0045); nothing was queued.
        if (found := refusal(error)) is None:
            raise
        refused = SubmitError(found[1])
        refused.sqlstate = found[0]
        raise refused from None
    request_ids = [request_id for request_id, _ in queued]
    job_ids = [job_id for _, job_id in queued]
    if len(request_ids) == 1:
        logger.info("request %s job %s (%s): queued by %s", request_ids[0], job_ids[0], kind, requester)
    else:
        logger.info("%d %s requests queued by %s (jobs %s–%s)", len(request_ids), kind, requester, job_ids[0], job_ids[-1])
    return request_ids


def submit_titles_request(
    conn: psycopg.Connection, data: TitlesInput, *, requested_by: str, schedule_at: dt.datetime | None = None
) -> uuid.UUID:
    return submit_requests(conn, TITLES, [data], requested_by=requested_by, schedule_at=schedule_at)[0]


# --- Submitting through the HTTP API -----------------------------------------------------------------


class SubmitForbidden(SubmitError):
    """The acting user may not submit this (another organization's name on it)."""


def organization_for_submission(conn: psycopg.Connection, user: User, organization_id: int) -> str:
    """The name of the organization a submission names: the user's own, or any for an admin."""
    if user.role != "admin" and organization_id != user.organization_id:
        raise SubmitForbidden(
            f"organizationId {organization_id} is not your organization ({user.organization_id}); "
            "only an admin may submit for another."
        )
    name = organization_name(conn, organization_id)
    if name is None:
        raise SubmitForbidden(f"There is no organization {organization_id} you may submit for.")
    return name


def submit_once(
    conn: psycopg.Connection,
    submit: Callable[[], dict[str, Any]],
    *,
    idempotency_key: str | None = None,
    request_hash: bytes = b"",
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Run `submit` (which answers what it queued) in one transaction with its idempotency key and
    callback; returns (the answer, whether this call queued it).

    With a key, the database makes sure one key queues once (db/idempotency.py): a repeat, even a
    concurrent one, gets the first answer and queues and charges nothing. Inside the caller's
    transaction (acting_as) it is part of that transaction: a refusal rolls back the key's claim
    with everything else.
    """
    # Inside the caller's transaction already (the API's acting_as): no savepoint, whose two round
    # trips would buy nothing (a refusal ends the whole call).
    in_transaction = conn.info.transaction_status != TransactionStatus.IDLE
    with database_errors_as_unavailable(), (contextlib.nullcontext() if in_transaction else conn.transaction()):
        if idempotency_key is not None:
            earlier = idempotency.claim(conn, idempotency_key, request_hash)
            if earlier is not None:
                return earlier, False
        answer = submit()
        if callback is not None:
            callback(answer)
        if idempotency_key is not None:
            idempotency.answer(conn, idempotency_key, answer)
    return answer, True


def submit_visitor_website_analysis(
    conn: psycopg.Connection,
    data: WebsiteAnalysisInput,
    *,
    session_id: str,
    client_address: str,
    schedule_at: dt.datetime | None = None,
) -> uuid.UUID:
    """A website analysis for an anonymous visitor, on a connection acting as that visitor
    (db.visitors.acting_as_visitor): counted against the per-session and per-address limits first,
    in the same transaction, so a refused one leaves nothing behind."""
    settings = get_settings()
    with refusals_as(SubmitError), database_errors_as_unavailable(), conn.transaction():
        visitors.admit_submission(
            conn, client_address,
            per_visitor=settings.api_visitor_submissions_per_minute,
            per_address=settings.api_address_submissions_per_minute,
        )
        return submit_requests(
            conn, WEBSITE_ANALYSIS, [data],
            requested_by=f"visitor {visitors.visitor_hash(session_id)[:10]}", schedule_at=schedule_at,
        )[0]
