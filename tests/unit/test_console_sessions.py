"""The session cookie's handoff: a one-time code, a redirect that stays on this site."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from console_sessions import COOKIE_NAME, HANDOFFS, SessionHandoffs, adopt_session, same_site_path


def test_a_handoff_code_gives_its_token_once():
    handoffs = SessionHandoffs()
    code = handoffs.offer("the-token")
    assert handoffs.take(code) == "the-token"
    assert handoffs.take(code) is None
    assert handoffs.take("a-guessed-code") is None


def test_the_redirect_stays_on_this_site():
    assert same_site_path("/History?request=abc") == "/History?request=abc"
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None, "History"):
        assert same_site_path(elsewhere) == "/"


def request_for(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/inkwell/session", "query_string": query.encode(),
                    "headers": [], "scheme": "http", "server": ("127.0.0.1", 8501)})


def test_the_route_sets_an_http_only_same_site_cookie_and_sends_the_browser_back():
    code = HANDOFFS.offer("the-token")
    response = asyncio.run(adopt_session(request_for(f"code={code}&next=%2FHistory%3Frequest%3Dabc")))
    assert response.status_code == 303 and response.headers["location"] == "/History?request=abc"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=the-token;") and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_the_route_sets_no_cookie_for_an_unknown_code():
    response = asyncio.run(adopt_session(request_for("code=nothing&next=/")))
    assert response.status_code == 303 and "set-cookie" not in response.headers
