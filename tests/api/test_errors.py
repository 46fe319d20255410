"""Every refusal has the one JSON error shape, the right status and a message a person can act on."""

from __future__ import annotations

import psycopg
import pytest

from db.embedded import EmbeddedPostgres
from db.migrate import migrate
from db.people import end_session, start_session
from tests.api.conftest import start_api_server
from tests.support.people import make_cast


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]


def _count_requests(db) -> int:
    return db.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0]


def test_invalid_bodies_answer_400_and_422_with_field_paths(api_server, cast, token_for):
    with api_server.client(token_for(cast.ana)) as client:
        _error(client.post("/api/v1/jobs/titles", content=b"{not json", headers={"Content-Type": "application/json"}),
               400, "invalid_json")
        error = _error(client.post("/api/v1/jobs/titles", json={"topic": "ab"}), 422, "validation_error")
        assert error["details"] == [{"field": "topic", "message": "must be at least 3 characters (after trimming spaces)"}]
        error = _error(client.post("/api/v1/jobs/content-generation", json={
            "topic": {"title": " x "}, "organizationId": str(cast.ana.organization_id)}), 422, "validation_error")
        assert error["details"][0]["field"] == "topic.title" and "topic.title: must be at least 3" in error["message"]
        error = _error(client.post("/api/v1/jobs/titles", json={"topic": "Bread", "colour": "red"}), 422, "validation_error")
        assert error["details"] == [{"field": "colour", "message": "is not a field of this request"}]
        error = _error(client.post("/api/v1/jobs/website-analysis", json={"url": "ftp://example.com/"}), 422, "validation_error")
        assert "http" in error["message"]
        _error(client.post("/api/v1/jobs/titles", json={"topic": "Bread", "scheduledAt": "2030-01-01T00:00:00"}),
               422, "validation_error")
        _error(client.post("/api/v1/jobs/titles", json={"topic": "Bread", "callbackUrl": "http://exa mple.com/"}),
               422, "validation_error")
        _error(client.get("/api/v1/jobs", params={"cursor": "garbage"}), 400, "invalid_cursor")
        # Found by the schemathesis run: a superscript digit passed str.isdigit and then broke int().
        error = _error(client.post("/api/images/generate-for-blog", json={
            "blogPostId": "x", "topic": "Bread", "organizationId": "\u00b2"}), 422, "validation_error")
        assert error["details"] == [{"field": "organizationId", "message": "must be an organization's id (digits)"}]
        _error(client.post("/api/v1/jobs/titles", json={"topic": "Bread"}, headers={"Idempotency-Key": "k" * 300}),
               400, "invalid_idempotency_key")


def test_missing_bad_and_revoked_tokens_answer_401_at_once(api_server, cast, db):
    token = start_session(db, cast.ana.id, kind="api", name="site")
    with api_server.client() as client:
        error = _error(client.get("/api/v1/me"), 401, "unauthorized")
        assert "Bearer" in error["message"]
        assert client.get("/api/v1/me").headers["www-authenticate"] == "Bearer"
        _error(client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
        _error(client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"}), 401, "invalid_token")
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        status = client.post("/api/v1/jobs/titles", json={"topic": "Bread", "scheduledAt": "2999-01-01T00:00:00Z"},
                             headers={"Authorization": f"Bearer {token}"}).headers["location"]
        assert client.get(status, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        end_session(db, token)
        _error(client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")
        # The status poll checks its token in its one statement: refused at once too, not a 404.
        _error(client.get(status, headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")
        _error(client.post("/api/v1/jobs/titles", json={"topic": "Bread"}, headers={"Authorization": f"Bearer {token}"}),
               401, "invalid_token")


def test_not_enough_credits_answers_402_and_queues_nothing(api_server, cast, token_for, db):
    db.execute("UPDATE inkwell.organizations SET credit_balance = 12 WHERE id = %s", (cast.ana.organization_id,))
    before = _count_requests(db)
    with api_server.client(token_for(cast.ana)) as client:
        error = _error(client.post("/api/v1/jobs/content-generation", json={
            "topic": {"title": "Sourdough"}, "organizationId": cast.ana.organization_id,
            "options": {"includeVisuals": True}}), 402, "insufficient_credits")
    assert error["message"] == "Not enough credits: this needs 15, Acme has 12 left. An admin adds credits on the Admin page, Organizations tab (Top up credits)."
    assert _count_requests(db) == before
    assert db.execute("SELECT credit_balance FROM inkwell.organizations WHERE id = %s", (cast.ana.organization_id,)).fetchone()[0] == 12


def test_another_organization_in_the_body_answers_403_except_for_admins(api_server, cast, token_for):
    body = {"topic": {"title": "Sourdough"}, "organizationId": str(cast.carl.organization_id)}
    with api_server.client(token_for(cast.ana)) as client:
        error = _error(client.post("/api/v1/jobs/content-generation", json=body), 403, "forbidden")
        assert "not your organization" in error["message"]
    with api_server.client(token_for(cast.admin)) as client:
        assert client.post("/api/v1/jobs/content-generation", json=body).status_code == 202
        _error(client.post("/api/v1/jobs/content-generation", json={**body, "organizationId": "999999"}), 403, "forbidden")


def test_unknown_ids_answer_404_and_finished_jobs_409(api_server, cast, token_for):
    with api_server.client(token_for(cast.ana)) as client:
        _error(client.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000/status"), 404, "not_found")
        _error(client.get("/api/v1/jobs/not-a-uuid/status"), 404, "not_found")
        _error(client.post("/api/v1/jobs/00000000-0000-4000-8000-000000000000/cancel"), 404, "not_found")
        _error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_a_body_over_the_cap_answers_413(api_server, cast, token_for):
    with api_server.client(token_for(cast.ana)) as client:
        error = _error(client.post("/api/v1/jobs/titles", content=b"{" + b" " * 1_100_000 + b"}",
                                   headers={"Content-Type": "application/json"}), 413, "body_too_large")
        assert error["details"] == {"maxBytes": 1_000_000}


def test_submission_limits_answer_429_with_retry_after(api_server, cast, token_for, db):
    db.execute("INSERT INTO inkwell.user_limits (user_id, max_jobs_in_flight, max_submissions_per_minute) VALUES (%s, 100, 1)",
               (cast.ana.id,))
    with api_server.client(token_for(cast.ana)) as client:
        assert client.post("/api/v1/jobs/titles", json={"topic": "First bread"}).status_code == 202
        response = client.post("/api/v1/jobs/titles", json={"topic": "Second bread"})
        error = _error(response, 429, "too_many_submissions")
        assert "the limit is 1" in error["message"]
        assert 1 <= int(response.headers["retry-after"]) <= 60


def test_anonymous_sessions_are_limited_per_session_and_per_address(api_server, db):
    with api_server.client() as client:
        for n in range(5):
            answer = client.post("/api/v1/jobs/website-analysis", json={"url": f"https://example.invalid/{n}"},
                                 headers={"x-session-id": "visitor-one-123"})
            assert answer.status_code == 202, answer.text
        response = client.post("/api/v1/jobs/website-analysis", json={"url": "https://example.invalid/6"},
                               headers={"x-session-id": "visitor-one-123"})
        error = _error(response, 429, "too_many_anonymous_submissions")
        assert "limit is 5" in error["message"] and int(response.headers["retry-after"]) >= 1
        # New session ids from the same address: the address limit (20 a minute) stops them too.
        codes = [client.post("/api/v1/jobs/website-analysis", json={"url": "https://example.invalid/"},
                             headers={"x-session-id": f"visitor-many-{n:04d}"}).status_code for n in range(20)]
        assert codes.count(202) == 15 and codes[15:] == [429] * 5
    assert db.execute("SELECT count(*) FROM inkwell.requests WHERE visitor_hash IS NOT NULL").fetchone()[0] == 20


def test_database_stopped_answers_503_with_retry_after_and_writes_nothing(inkwell_env, tmp_path, monkeypatch):
    server = EmbeddedPostgres(tmp_path / "own-pg", durable=False)
    url = server.start()
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            cast = make_cast(conn)
            token = start_session(conn, cast.ana.id, kind="api", name="outage")
        env = {**inkwell_env, "DATABASE_URL": url}
        monkeypatch.setenv("DATABASE_URL", url)
        api = start_api_server(env, tmp_path / "api.log")
        try:
            with api.client(token) as client:
                assert client.get("/api/v1/health").status_code == 200
                server.stop("fast")
                unknown = "00000000-0000-4000-8000-000000000000"
                for response in (client.post("/api/v1/jobs/titles", json={"topic": "During the outage"}),
                                 client.get("/api/v1/health"), client.get("/api/v1/me"),
                                 client.get(f"/api/v1/jobs/{unknown}/status")):
                    error = _error(response, 503, "service_unavailable")
                    assert error["message"].startswith("Service temporarily unavailable")
                    assert response.headers["retry-after"] == "5"
                server.start()
                with psycopg.connect(url, autocommit=True) as conn:
                    assert conn.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0] == 0
                recovered = None
                for _ in range(50):
                    recovered = client.post("/api/v1/jobs/titles", json={"topic": "After the outage"})
                    if recovered.status_code == 202:
                        break
                assert recovered.status_code == 202, recovered.text
                polled = None
                for _ in range(50):
                    polled = client.get(recovered.headers["location"])
                    if polled.status_code == 200:
                        break
                assert polled.status_code == 200, polled.text
        finally:
            api.stop()
    finally:
        server.stop("fast")
