"""One JSON error shape for every refusal: {"error": {"code", "message", "details"}}, never a traceback."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from db.connection import QueueUnavailable

logger = logging.getLogger("inkwell.api")

UNAVAILABLE_RETRY_AFTER_SECONDS = 5
# The database's refusals of a submission or a retry (db/credits.py), as HTTP statuses.
REFUSAL_STATUSES = {
    "IK001": (402, "insufficient_credits"),
    "IK002": (429, "too_many_jobs_in_flight"),
    "IK003": (429, "too_many_submissions"),
    "IK004": (409, "kind_has_no_price"),
    "IK005": (429, "too_many_anonymous_submissions"),
    "42501": (403, "forbidden"),  # the role or row-level security refused it (db.credits.role_refusal)
}
_WAIT = re.compile(r"try again in (\d+) s")
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               406: "not_acceptable", 409: "conflict", 413: "body_too_large", 415: "unsupported_media_type",
               422: "validation_error", 429: "rate_limited", 503: "service_unavailable"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def refusal_error(sqlstate: str | None, message: str) -> ApiError | None:
    """The database's refusal (credits, limits) as an ApiError; None when `sqlstate` is none of them."""
    if sqlstate not in REFUSAL_STATUSES:
        return None
    status, code = REFUSAL_STATUSES[sqlstate]
    headers = {}
    if status == 429:
        wait = _WAIT.search(message)
        headers["Retry-After"] = wait.group(1) if wait else "60"
    return ApiError(status, code, message, headers=headers)


def unavailable() -> ApiError:
    return ApiError(
        503, "service_unavailable", "Service temporarily unavailable: the database cannot be reached. Nothing was changed.",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


def field_problems(errors: list[dict[str, Any]], *, skip_prefix: tuple = (), names: dict[str, str] | None = None) -> list[dict[str, str]]:
    """pydantic errors as [{"field": "topic.title", "message": "..."}], in the words the console
    uses for them (queue_tasks.models.describe_validation_error)."""
    problems = []
    for item in errors[:20]:
        loc = [str(part) for part in item.get("loc", ())]
        if tuple(loc[: len(skip_prefix)]) == skip_prefix:
            loc = loc[len(skip_prefix):]
        field = ".".join(loc) or "body"
        if names:
            field = names.get(field, field)
        problems.append({"field": field, "message": _sentence(item)})
    return problems


def _sentence(item: dict[str, Any]) -> str:
    kind = item.get("type", "")
    ctx = item.get("ctx") or {}
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} characters (after trimming spaces)"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this request"
    if kind == "value_error" and ctx.get("error"):
        return str(ctx["error"])
    if kind == "too_few_visible_characters":
        return f"{item['msg']} (spaces and invisible characters do not count)"
    return item.get("msg", "is not valid")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.exception_handler(QueueUnavailable)
    async def _unavailable(_request: Request, _error: QueueUnavailable) -> JSONResponse:
        error = unavailable()
        return error_response(error.status, error.code, error.message, None, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        if any(item.get("type") == "json_invalid" for item in errors):
            return error_response(400, "invalid_json", "The body is not valid JSON.", field_problems(errors))
        problems = field_problems(errors, skip_prefix=("body",))
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:10])
        return error_response(422, "validation_error", message or "The request is not valid.", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
        return error_response(error.status_code, code, message, None, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal_error", "Something went wrong on our side; it was logged.")
