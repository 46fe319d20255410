"""Who sees what: tokens act as their users under row-level security; anonymous sessions see only their own."""

from __future__ import annotations

import hashlib

from tests.conftest import wait_for


def test_organizations_tokens_cannot_see_or_touch_each_others_jobs(api_server, cast, token_for, worker):
    ana, carl = token_for(cast.ana), token_for(cast.carl)
    with api_server.client(ana) as as_ana, api_server.client(carl) as as_carl:
        ana_job = as_ana.post("/api/v1/jobs/titles", json={"topic": "Acme bread", "scheduledAt": "2999-01-01T00:00:00Z"}).json()["jobId"]
        carl_job = as_carl.post("/api/v1/jobs/titles", json={"topic": "Globex bread"}).json()["jobId"]
        unknown = "00000000-0000-4000-8000-000000000000"
        for client, theirs in ((as_ana, carl_job), (as_carl, ana_job)):
            for method, path in (("GET", "status"), ("POST", "cancel"), ("POST", "retry"), ("GET", "events")):
                foreign = client.request(method, f"/api/v1/jobs/{theirs}/{path}")
                missing = client.request(method, f"/api/v1/jobs/{unknown}/{path}")
                assert foreign.status_code == missing.status_code == 404, (path, foreign.text)
                assert foreign.json()["error"]["message"].replace(theirs, "ID") == missing.json()["error"]["message"].replace(unknown, "ID")
            assert theirs not in [job["jobId"] for job in client.get("/api/v1/jobs").json()["jobs"]]
        # Each still sees and acts on its own.
        assert as_ana.post(f"/api/v1/jobs/{ana_job}/cancel").json()["status"] == "cancelled"
        wait_for(lambda: as_carl.get(f"/api/v1/jobs/{carl_job}/status").json()["status"] == "succeeded", timeout=60)


def test_a_colleague_may_read_but_not_cancel_and_an_operator_may_do_both(api_server, cast, token_for):
    with api_server.client(token_for(cast.ana)) as as_ana:
        job = as_ana.post("/api/v1/jobs/titles", json={"topic": "Acme bread", "scheduledAt": "2999-01-01T00:00:00Z"}).json()["jobId"]
    with api_server.client(token_for(cast.bea)) as as_bea:
        assert as_bea.get(f"/api/v1/jobs/{job}/status").status_code == 200
        refused = as_bea.post(f"/api/v1/jobs/{job}/cancel")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    with api_server.client(token_for(cast.olga)) as as_olga:  # operator of the other organization
        assert as_olga.post(f"/api/v1/jobs/{job}/cancel").json()["status"] == "cancelled"


def test_anonymous_sessions_see_only_their_own_analyses(api_server, cast, token_for, db):
    with api_server.client(**{"x-session-id": "visitor-aaaa-1111"}) as first, \
            api_server.client(**{"x-session-id": "visitor-bbbb-2222"}) as second, api_server.client() as nobody:
        job = first.post("/api/v1/jobs/website-analysis", json={"url": "https://example.invalid/", "scheduledAt": "2999-01-01T00:00:00Z"})
        assert job.status_code == 202, job.text
        job_id = job.json()["jobId"]
        assert first.get(f"/api/v1/jobs/{job_id}/status").json()["kind"] == "website-analysis"
        for method, path in (("GET", "status"), ("POST", "cancel"), ("POST", "retry")):
            assert second.request(method, f"/api/v1/jobs/{job_id}/{path}").status_code == 404
            assert nobody.request(method, f"/api/v1/jobs/{job_id}/{path}").status_code == 401
        # Tokens of signed-in users of an organization do not see it either (it has none); an operator does.
        with api_server.client(token_for(cast.ana)) as as_ana:
            assert as_ana.get(f"/api/v1/jobs/{job_id}/status").status_code == 404
        # A visitor may ask only for website analyses, and never lists anyone's history.
        assert first.post("/api/v1/jobs/titles", json={"topic": "Bread"}).status_code == 401
        assert first.get("/api/v1/jobs").status_code == 401
        # The session id in the body works like the header.
        body_session = nobody.post("/api/v1/jobs/website-analysis", json={"url": "https://example.invalid/", "sessionId": "visitor-cccc-3333"})
        assert body_session.status_code == 202
        assert first.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        assert first.post(f"/api/v1/jobs/{job_id}/retry").json()["status"] == "queued"
    stored = db.execute("SELECT user_id, organization_id, credits, encode(visitor_hash, 'hex') FROM inkwell.requests WHERE id = %s",
                        (job_id,)).fetchone()
    assert stored == (None, None, 0, hashlib.sha256(b"visitor-aaaa-1111").hexdigest())
