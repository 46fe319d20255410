"""The FastAPI application: routes, error shape, body cap, the pool and the event hub."""

from __future__ import annotations

import contextlib
import json
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.events import ChangeHub
from api.routes import router
from db.connection import open_async_pool, open_pool
from inkwell_settings import get_settings
from queue_tasks.actions import job_manager_for

TITLE = "Inkwell API"
DOCS_ASSETS = str(files("fastapi_offline") / "static")
DOCS_ASSETS_PATH = "/api/docs-assets"
DESCRIPTION = (
    "Create content jobs, follow them live (Server-Sent Events) or by polling, read results, retry or cancel. "
    "Authenticate with `Authorization: Bearer <token>` (console → API tokens). Every error is "
    '`{"error": {"code", "message", "details"}}`.'
)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse a body over `max_bytes` with 413 before it is read whole (Content-Length or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": {"code": "body_too_large",
                                     "message": f"The body is over {self.max_bytes:,} bytes; send less.",
                                     "details": {"maxBytes": self.max_bytes}}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(database_url: str | None = None) -> FastAPI:
    settings = get_settings()
    url = database_url or settings.database_url
    if not url:
        raise RuntimeError("DATABASE_URL is not set: the API needs the database.")

    # Calls act for their caller through `url` (the console's role); the event fan-out and the health
    # check read every row, through the workers' role when ./run gives one (else the same URL).
    reader_url = settings.api_reader_database_url or url

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # No liveness check per checkout (a round trip per call): db.connection.checked_connection
        # checks a pool after a failure instead.
        app.state.pool = open_pool(url, max_size=16, check_each_checkout=False)
        app.state.reader_pool = (open_pool(reader_url, max_size=2, check_each_checkout=False)
                                 if reader_url != url else app.state.pool)
        # Status polls and the event streams' first read: one statement each, on the event loop.
        app.state.read_pool = await open_async_pool(url, max_size=8)
        app.state.job_manager = job_manager_for(app.state.pool)
        app.state.hub = ChangeHub(reader_url)
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            await app.state.read_pool.close()
            app.state.pool.close()
            if app.state.reader_pool is not app.state.pool:
                app.state.reader_pool.close()

    app = FastAPI(
        title=TITLE, description=DESCRIPTION, version="1", lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
    )
    # The interactive docs with Swagger UI's files from the installed fastapi-offline package, not a CDN.
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json", title=f"{TITLE} — interactive docs",
            swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
        )

    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)

    def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(title=TITLE, version="1", description=DESCRIPTION, routes=app.routes)
        return app.openapi_schema

    app.openapi = openapi
    return app
