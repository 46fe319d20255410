"""The endpoints of the contract. Each maps the contract's body onto Inkwell's own input model and
calls queue_tasks / db acting as the caller; the rules (who may, what it costs, limits, states)
are theirs and the database's."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Header, Query, Request, Response, Security
from fastapi.security import HTTPBearer
from fastapi.responses import JSONResponse, StreamingResponse

from api.errors import ApiError, ErrorBody, field_problems, refusal_error
from api.events import StreamState, heartbeat
from api.identity import Caller, acting, identify, read_request
from api.models import (
    ContentGenerationCreate, CreateOptions, Health, ImageForBlogCreate, JobAccepted, JobKindName, JobList,
    JobStatus, JobStatusName, Me, SiteBuildAccepted, TitlesCreate, WebsiteAnalysisCreate,
)
from db import credits, idempotency, webhooks
from db.connection import checked_connection
from db.posts import get_post
from db.queues import service_health
from db.requests import TERMINAL_STATUSES, get_request, list_own_requests
from inkwell_settings import get_settings
from queue_tasks import actions, site_build, submit
from queue_tasks.blog_posts import BlogPostInput
from queue_tasks.blog_posts import BusinessInfo as BlogBusinessInfo
from queue_tasks.images import PostImageInput
from queue_tasks.job_status import KINDS_BY_API_NAME, status_document
from queue_tasks.models import TitlesInput
from queue_tasks.webhooks import check_callback_url
from queue_tasks.website_analysis import WebsiteAnalysisInput

_ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 402, 403, 404, 409, 413, 422, 429, 503)}
bearer = HTTPBearer(auto_error=False, description="An API token from the console's API tokens page.")
router = APIRouter(prefix="/api", responses=_ERRORS, dependencies=[Security(bearer)])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description="Same key and body within 24 h: the same job.")]
SessionIdHeader = Annotated[str | None, Header(alias="x-session-id", description="An anonymous visitor's session id.")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]

# Inkwell's field names → the contract's, so a refusal names the field the frontend sent.
_BLOG_FIELDS = {
    "topic": "topic.title", "subheader": "topic.subheader", "business.business_type": "businessInfo.businessType",
    "business.target_audience": "businessInfo.targetAudience", "business.brand_voice": "businessInfo.brandVoice",
    "additional_instructions": "additionalInstructions", "auto_save": "options.autoSave", "status": "options.status",
    "include_visuals": "options.includeVisuals", "organization": "organizationId",
}
_IMAGE_FIELDS = {"post_id": "blogPostId", "description": "content"}


def _pool(request: Request):
    return request.app.state.pool


def _caller(request: Request, session_id: str | None = None, *, visitors: bool = False) -> Caller:
    # The Authorization header is read here, not declared per route: the OpenAPI document states it
    # once, as the bearer security scheme (router dependency below).
    return identify(
        authorization=request.headers.get("authorization"), session_id=session_id,
        address=request.client.host if request.client else "", visitors_allowed=visitors,
    )


def _validated(model: type[pydantic.BaseModel], data: dict[str, Any], names: dict[str, str] | None = None):
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        problems = field_problems(error.errors(), names=names)
        raise ApiError(422, "validation_error", "; ".join(f"{p['field']}: {p['message']}" for p in problems),
                       details=problems) from None


def _schedule(options: CreateOptions) -> dt.datetime | None:
    return options.scheduledAt


def _callback(options: CreateOptions, caller: Caller) -> str | None:
    if options.callbackUrl is None:
        return None
    if caller.is_visitor:
        raise ApiError(422, "validation_error", "callbackUrl: needs an API token (webhooks are signed with your account's secret)",
                       details=[{"field": "callbackUrl", "message": "needs an API token"}])
    try:
        return check_callback_url(options.callbackUrl)
    except ValueError as error:
        raise ApiError(422, "validation_error", f"callbackUrl: {error}",
                       details=[{"field": "callbackUrl", "message": str(error)}]) from None


def _idempotency(key: str | None, endpoint: str, body: pydantic.BaseModel) -> tuple[str | None, bytes]:
    if key is None:
        return None, b""
    try:
        idempotency.check_key(key)
    except ValueError as error:
        raise ApiError(400, "invalid_idempotency_key", str(error)) from None
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
    return key, idempotency.body_hash(endpoint, canonical)


def _organization_id(value: str | int) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ApiError(422, "validation_error", "organizationId: must be an organization's id (digits)",
                       details=[{"field": "organizationId", "message": "must be an organization's id (digits)"}])
    return int(text)


def _create(
    caller: Caller,
    pool,
    response: Response,
    *,
    endpoint: str,
    body: pydantic.BaseModel,
    key: str | None,
    queue: Callable[[Any], dict[str, Any]],
    callback_url: str | None = None,
) -> dict[str, Any]:
    """Queue through `queue(conn)` acting as the caller, once per idempotency key; 202 and Location."""
    key, request_hash = _idempotency(key, endpoint, body)
    try:
        with acting(pool, caller) as conn:
            def add_callback(answer: dict[str, Any]) -> None:
                if callback_url is not None:
                    for job_id in answer.get("jobIds") or [answer["jobId"]]:
                        webhooks.add_callback(conn, uuid.UUID(job_id), callback_url)

            answer, _created = submit.submit_once(
                conn, lambda: queue(conn), idempotency_key=key, request_hash=request_hash, callback=add_callback
            )
    except idempotency.IdempotencyKeyReused as error:
        raise ApiError(422, "idempotency_key_reused", str(error)) from None
    except submit.SubmitForbidden as error:
        raise ApiError(403, "forbidden", str(error)) from None
    except (submit.SubmitError, site_build.BuildRefused, site_build.SiteDefinitionError) as error:
        if refused := refusal_error(getattr(error, "sqlstate", None), str(error)):
            raise refused from None
        raise ApiError(422, "invalid_request", str(error)) from None
    response.status_code = 202
    if "jobId" in answer:
        response.headers["Location"] = f"/api/v1/jobs/{answer['jobId']}/status"
    return answer


# --- Creates ----------------------------------------------------------------------------------------


@router.post("/v1/jobs/content-generation", status_code=202, response_model=JobAccepted, tags=["jobs"])
def create_content_generation(
    body: ContentGenerationCreate, request: Request, response: Response,
    idempotency_key: IdempotencyKey = None,
):
    """A blog post: outline, sections, polish; saved as a post with `autoSave`, an image queued with `includeVisuals`."""
    caller = _caller(request)
    organization_id = _organization_id(body.organizationId)
    callback_url = _callback(body, caller)

    def queue(conn) -> dict[str, Any]:
        organization = submit.organization_for_submission(conn, caller.user, organization_id)
        data = _validated(BlogPostInput, {
            "topic": body.topic.title, "subheader": body.topic.subheader,
            "business": {"business_type": body.businessInfo.businessType,
                         "target_audience": body.businessInfo.targetAudience,
                         "brand_voice": body.businessInfo.brandVoice},
            "organization": organization, "additional_instructions": body.additionalInstructions,
            "auto_save": body.options.autoSave, "status": body.options.status, "include_visuals": body.options.includeVisuals,
        }, _BLOG_FIELDS)
        request_id = submit.submit_requests(conn, "blog_post", [data], requested_by=caller.user.username,
                                            schedule_at=_schedule(body))[0]
        return {"jobId": str(request_id)}

    return _create(caller, _pool(request), response, endpoint="content-generation", body=body, key=idempotency_key,
                   queue=queue, callback_url=callback_url)


@router.post("/v1/jobs/website-analysis", status_code=202, response_model=JobAccepted, tags=["jobs"])
def create_website_analysis(
    body: WebsiteAnalysisCreate, request: Request, response: Response,
    x_session_id: SessionIdHeader = None,
    idempotency_key: IdempotencyKey = None,
):
    """A website analysis, for a signed-in caller or an anonymous visitor (x-session-id, or `sessionId`)."""
    caller = _caller(request, x_session_id or body.sessionId, visitors=True)
    callback_url = _callback(body, caller)
    data = _validated(WebsiteAnalysisInput, {"url": body.url})

    def queue(conn) -> dict[str, Any]:
        if caller.is_visitor:
            request_id = submit.submit_visitor_website_analysis(
                conn, data, session_id=caller.session_id, client_address=caller.address, schedule_at=_schedule(body))
        else:
            request_id = submit.submit_requests(conn, "website_analysis", [data], requested_by=caller.user.username,
                                                schedule_at=_schedule(body))[0]
        return {"jobId": str(request_id)}

    return _create(caller, _pool(request), response, endpoint="website-analysis",
                   body=body.model_copy(update={"sessionId": None}), key=idempotency_key, queue=queue,
                   callback_url=callback_url)


@router.post("/v1/jobs/titles", status_code=202, response_model=JobAccepted, tags=["jobs"])
def create_titles(
    body: TitlesCreate, request: Request, response: Response,
    idempotency_key: IdempotencyKey = None,
):
    """Post titles for a topic."""
    caller = _caller(request)
    callback_url = _callback(body, caller)
    data = _validated(TitlesInput, {"topic": body.topic, "audience": body.audience, "tone": body.tone, "count": body.count})

    def queue(conn) -> dict[str, Any]:
        request_id = submit.submit_requests(conn, "titles", [data], requested_by=caller.user.username,
                                            schedule_at=_schedule(body))[0]
        return {"jobId": str(request_id)}

    return _create(caller, _pool(request), response, endpoint="titles", body=body, key=idempotency_key, queue=queue,
                   callback_url=callback_url)


@router.post("/v1/jobs/site-build", status_code=202, response_model=SiteBuildAccepted, tags=["jobs"])
def create_site_build(
    definition: dict[str, Any], request: Request, response: Response,
    idempotency_key: IdempotencyKey = None,
):
    """A site build from a site definition (`site`, `business`, `routes`, as on the Submit page), plus
    optional `scheduledAt` and `callbackUrl` (each section's final status is posted there)."""
    caller = _caller(request)
    definition = dict(definition)
    options = _validated(CreateOptions, {k: definition.pop(k) for k in ("scheduledAt", "callbackUrl") if k in definition})
    callback_url = _callback(options, caller)
    try:
        parsed = site_build.parse_site_definition(json.dumps(definition), filename="site.json")
    except site_build.SiteDefinitionError as error:
        raise ApiError(422, "invalid_site_definition", str(error)) from None

    def queue(conn) -> dict[str, Any]:
        built = site_build.submit_site_build(conn, parsed, requested_by=caller.user.username, schedule_at=options.scheduledAt)
        return {"buildId": str(built.batch_id), "jobIds": [str(i) for i in built.request_ids], "skippedSections": built.skipped}

    class _Body(pydantic.BaseModel):
        definition: dict[str, Any]
        options: CreateOptions

    return _create(caller, _pool(request), response, endpoint="site-build",
                   body=_Body(definition=definition, options=options), key=idempotency_key, queue=queue,
                   callback_url=callback_url)


@router.post("/images/generate-for-blog", status_code=202, response_model=JobAccepted, tags=["jobs"])
def create_image_for_blog(
    body: ImageForBlogCreate, request: Request, response: Response,
    idempotency_key: IdempotencyKey = None,
):
    """An image for a saved blog post (a post-image job)."""
    caller = _caller(request)
    organization_id = _organization_id(body.organizationId)
    callback_url = _callback(body, caller)
    try:
        post_id = uuid.UUID(body.blogPostId)
    except ValueError:
        raise ApiError(404, "not_found", f"No blog post {body.blogPostId}.") from None

    def queue(conn) -> dict[str, Any]:
        submit.organization_for_submission(conn, caller.user, organization_id)
        post = get_post(conn, post_id)
        if post is None:
            raise ApiError(404, "not_found", f"No blog post {body.blogPostId}.")
        data = _validated(PostImageInput, {
            "topic": (body.topic or post.title)[:200], "post_id": post.id, "parent_request_id": post.request_id,
            "description": (body.content or f"{post.title}")[:1_000] or post.title,
        }, _IMAGE_FIELDS)
        request_id = submit.submit_requests(conn, "post_image", [data], requested_by=caller.user.username,
                                            schedule_at=_schedule(body))[0]
        return {"jobId": str(request_id)}

    return _create(caller, _pool(request), response, endpoint="generate-for-blog", body=body, key=idempotency_key,
                   queue=queue, callback_url=callback_url)


# --- Reading and acting on a job -----------------------------------------------------------------------


def _request_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise ApiError(404, "not_found", f"No job {job_id}.") from None


def _read_status(conn, request_id: uuid.UUID) -> dict[str, Any]:
    found = get_request(conn, request_id)
    if found is None:
        raise ApiError(404, "not_found", f"No job {request_id}.")
    return status_document(found)


@router.get("/v1/jobs/{jobId}/status", response_model=JobStatus, tags=["jobs"])
async def job_status(
    jobId: str, request: Request,
    x_session_id: SessionIdHeader = None,
):
    """The job's status, progress, result and times. Another organization's job answers 404, like an unknown id."""
    # The call frontends poll every 2 s: one statement on the event loop (no thread hop), and the document
    # sent as built (status_document makes it in JobStatus's shape; response_model is for the OpenAPI document).
    caller = _caller(request, x_session_id, visitors=True)
    return JSONResponse(status_document(await _visible_request(request, caller, _request_id(jobId))))


def _act(request: Request, caller: Caller, job_id: str, action) -> dict[str, Any]:
    request_id = _request_id(job_id)
    try:
        with acting(_pool(request), caller) as conn:
            action(conn, request.app.state.job_manager, request_id)
            return _read_status(conn, request_id)
    except actions.RequestNotFound:
        raise ApiError(404, "not_found", f"No job {job_id}.") from None
    except actions.ActionForbidden as error:
        raise ApiError(403, "forbidden", str(error)) from None
    except actions.ActionRefused as error:
        if refused := refusal_error(getattr(error, "sqlstate", None), str(error)):
            raise refused from None
        raise ApiError(409, "conflict", str(error)) from None


@router.post("/v1/jobs/{jobId}/cancel", response_model=JobStatus, tags=["jobs"])
def cancel_job(
    jobId: str, request: Request,
    x_session_id: SessionIdHeader = None,
):
    """Cancel a queued or scheduled job at once, or stop a running one (its status follows). 409 once it finished."""
    caller = _caller(request, x_session_id, visitors=True)
    return _act(request, caller, jobId, actions.cancel_request)


@router.post("/v1/jobs/{jobId}/retry", status_code=202, response_model=JobStatus, tags=["jobs"])
def retry_job(
    jobId: str, request: Request, response: Response,
    x_session_id: SessionIdHeader = None,
):
    """Queue a failed or cancelled job again (it pays its credits again). 409 for any other state."""
    caller = _caller(request, x_session_id, visitors=True)
    document = _act(request, caller, jobId, actions.retry_request)
    response.headers["Location"] = f"/api/v1/jobs/{document['jobId']}/status"
    return document


def _encode_cursor(created_at: dt.datetime, request_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{request_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, request_id = text.partition("|")
        moment = dt.datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError
        return moment, uuid.UUID(request_id)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out; start again without it.") from None


@router.get("/v1/jobs", response_model=JobList, tags=["jobs"])
def list_jobs(
    request: Request,
    status: Annotated[JobStatusName | None, Query()] = None,
    kind: Annotated[JobKindName | None, Query()] = None,
    since: Annotated[dt.datetime | None, Query(description="Only jobs created at or after this time (ISO-8601).")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
):
    """The caller's own jobs, newest first, `limit` at a time; follow `nextCursor` for older ones."""
    caller = _caller(request)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    before = _decode_cursor(cursor) if cursor else None
    with acting(_pool(request), caller) as conn:
        rows = list_own_requests(conn, limit=limit + 1, status=status, kind=KINDS_BY_API_NAME.get(kind) if kind else None,
                                 since=since, before=before)
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return {"jobs": [status_document(row) for row in page], "nextCursor": next_cursor}


@router.get("/v1/me", response_model=Me, tags=["account"])
def me(request: Request):
    """The token's user, role and organization, with the organization's credit balance."""
    caller = _caller(request)
    with acting(_pool(request), caller) as conn:
        user = caller.user
        balance = credits.balance(conn, user.organization_id)
    return {"id": user.id, "username": user.username, "displayName": user.display_name, "role": user.role,
            "organizationId": user.organization_id, "organizationName": user.organization_name, "creditBalance": balance}


@router.get("/v1/health", response_model=Health, tags=["service"], openapi_extra={"security": []})
def health(request: Request):
    """For load balancers: 200 when the database answers (with live workers and queue depth), else 503."""
    with checked_connection(request.app.state.reader_pool) as conn:
        figures = service_health(conn, get_settings().stalled_worker_seconds)
    return {"status": "ok", "database": True, "liveWorkers": figures.live_workers, "queueDepth": figures.queue_depth}


# --- Live events -----------------------------------------------------------------------------------------


@router.get(
    "/v1/jobs/{jobId}/events", tags=["jobs"], response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events: status, progress, partial."}},
)
async def job_events(
    jobId: str, request: Request,
    x_session_id: SessionIdHeader = None,
    last_event_id: LastEventId = None,
):
    """Server-Sent Events for one job: `status` (the status document) when the status changes, `progress`
    (progress, currentStep, estimatedTimeRemaining), `partial` (model text as it streams: `append`, or
    the whole `text`), heartbeat comments while idle; the stream ends after the terminal status. Each
    event has an id; reconnect with `Last-Event-ID` to get only what changed since."""
    caller = _caller(request, x_session_id, visitors=True)
    request_id = _request_id(jobId)
    try:
        resume_from = int(last_event_id) if last_event_id else None
    except ValueError:
        raise ApiError(400, "invalid_last_event_id", "Last-Event-ID must be an event id this stream sent.") from None
    hub = request.app.state.hub
    heartbeat_seconds = get_settings().api_heartbeat_seconds
    # Follow first, then read: a change between the two is not lost (it arrives on the queue).
    follower = hub.follow(request_id)
    queue = await follower.__aenter__()
    try:
        current = await _visible_request(request, caller, request_id)
    except BaseException:
        await follower.__aexit__(None, None, None)
        raise

    async def stream():
        state = StreamState(resume_from)
        try:
            row = current
            while True:
                for chunk in state.events(row):
                    yield chunk
                if row.status in TERMINAL_STATUSES:
                    return
                while True:
                    try:
                        row = await asyncio.wait_for(queue.get(), timeout=heartbeat_seconds)
                        break
                    except TimeoutError:
                        yield heartbeat()
        finally:
            await follower.__aexit__(None, None, None)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _visible_request(request: Request, caller: Caller, request_id: uuid.UUID):
    found = await read_request(request.app.state.read_pool, caller, request_id)
    if found is None:
        raise ApiError(404, "not_found", f"No job {request_id}.")
    return found
