"""A request as the HTTP API and completion webhooks show it: the jobs API's status document.

The contract the content teams' frontends were written to (README, "HTTP API"): camelCase names,
ISO-8601 UTC times, the kind under the API's name, and for a finished blog post the post, the
saved draft and the image follow-up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from db.requests import GenerationRequest

# Inkwell's kinds under the names the API uses (and accepts in the `kind` filter).
API_KIND_NAMES = {
    "blog_post": "content-generation",
    "website_analysis": "website-analysis",
    "titles": "titles",
    "site_section": "site-section",
    "post_image": "post-image",
    "site_promotion": "site-promotion",
}
KINDS_BY_API_NAME = {api_name: kind for kind, api_name in API_KIND_NAMES.items()}


def iso_utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_document(request: GenerationRequest) -> dict[str, Any] | None:
    """What a succeeded request made; None until it succeeded."""
    if request.status != "succeeded" or request.result is None:
        return None
    document: dict[str, Any] = {"data": request.result}
    if request.kind == "blog_post":
        post_id = request.result.get("post_id")
        wanted_image = bool(request.input.get("include_visuals"))
        document["savedPost"] = (
            {"id": post_id, "status": request.input.get("status", "draft")} if post_id is not None else None
        )
        document["imageGeneration"] = {
            "needsImageGeneration": wanted_image,
            "imageJobId": request.result.get("image_request_id"),
        }
    return document


def status_document(request: GenerationRequest) -> dict[str, Any]:
    return {
        "jobId": str(request.id),
        "kind": API_KIND_NAMES.get(request.kind, request.kind),
        "status": request.status,
        "progress": request.progress,
        "currentStep": request.current_step,
        "estimatedTimeRemaining": request.eta_seconds if request.status == "running" else None,
        "error": request.error_message if request.status != "succeeded" else None,
        "errorCode": request.error_code if request.status != "succeeded" else None,
        "result": result_document(request),
        "attempts": request.attempts,
        "createdAt": iso_utc(request.created_at),
        "updatedAt": iso_utc(request.updated_at),
        "startedAt": iso_utc(request.started_at),
        "finishedAt": iso_utc(request.finished_at),
    }
