"""Sign-in that survives a reload: the console's server-side session (inkwell.sessions, db.people)
behind an HttpOnly, SameSite=Lax cookie.

A Streamlit page talks over a websocket and cannot set a cookie, so after sign-in the page sends the
browser once through ADOPT_PATH, a plain HTTP route that console_server.py mounts beside Streamlit
(st.App). The page hands the session over with a one-time code that lives a few seconds in this
process (the route runs in the same process as the page; behind a load balancer, sticky sessions
keep both on one console): the token itself never appears in an address, a log or the history.
The route sets the cookie and sends the browser back to where it was. On every new page load the
console reads the cookie (st.context.cookies) and asks the database whether the session is still
live: sign-out, a password change or deactivation end it there, so the cookie then opens nothing.

This module does not import Streamlit's page API: the route runs outside any page.
"""

from __future__ import annotations

import secrets
import threading
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

COOKIE_NAME = "inkwell_session"
ADOPT_PATH = "/inkwell/session"
HANDOFF_SECONDS = 30.0


class SessionHandoffs:
    """One-time codes, each standing for a session token for HANDOFF_SECONDS."""

    def __init__(self) -> None:
        self._codes: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def offer(self, token: str) -> str:
        code = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for old in [c for c, (_, until) in self._codes.items() if until < now]:
                del self._codes[old]
            self._codes[code] = (token, now + HANDOFF_SECONDS)
        return code

    def take(self, code: str) -> str | None:
        """The token of a code offered a moment ago, once; None for anything else."""
        with self._lock:
            token, until = self._codes.pop(code, (None, 0.0))
        return token if token is not None and until >= time.monotonic() else None


HANDOFFS = SessionHandoffs()
_routes_mounted = threading.Event()


def session_routes() -> list[Route]:
    """The route for st.App (console_server.py); from then on sign-ins get a cookie."""
    _routes_mounted.set()
    return [Route(ADOPT_PATH, adopt_session, methods=["GET"])]


def cookies_available() -> bool:
    """Whether this process serves ADOPT_PATH (`streamlit run console_server.py`, as ./run does).
    Under `streamlit run app.py` or AppTest it does not: sign-in then lasts the browser tab."""
    return _routes_mounted.is_set()


def same_site_path(target: str | None) -> str:
    """Where to send the browser back to: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def adopt_session(request: Request) -> Response:
    token = HANDOFFS.take(request.query_params.get("code", ""))
    response = RedirectResponse(same_site_path(request.query_params.get("next")), status_code=303)
    if token is not None:
        response.set_cookie(
            COOKIE_NAME, token, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
        )
    response.headers["Cache-Control"] = "no-store"
    return response
