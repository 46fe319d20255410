"""Idempotency-Key: one key and body make one job and one charge, even when creates race."""

from __future__ import annotations

import concurrent.futures


def test_eight_concurrent_creates_with_one_key_make_one_job_and_one_charge(api_server, cast, token_for, db):
    token = token_for(cast.ana)
    body = {"topic": {"title": "One post, asked eight times"}, "organizationId": cast.ana.organization_id}
    balance = db.execute("SELECT credit_balance FROM inkwell.organizations WHERE id = %s", (cast.ana.organization_id,)).fetchone()[0]

    def create(_n):
        with api_server.client(token, **{"Idempotency-Key": "order-7f3a"}) as client:
            return client.post("/api/v1/jobs/content-generation", json=body)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    assert [a.status_code for a in answers] == [202] * 8, [a.text for a in answers]
    assert len({a.json()["jobId"] for a in answers}) == 1
    assert db.execute("SELECT count(*) FROM inkwell.requests WHERE kind = 'blog_post'").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'inkwell.write_blog_post'").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM inkwell.credit_ledger WHERE reason = 'reserve'").fetchone()[0] == 1
    after = db.execute("SELECT credit_balance FROM inkwell.organizations WHERE id = %s", (cast.ana.organization_id,)).fetchone()[0]
    assert balance - after == 10


def test_the_same_key_with_another_body_is_refused_and_keys_are_per_user(api_server, cast, token_for, db):
    with api_server.client(token_for(cast.ana), **{"Idempotency-Key": "k-1"}) as client:
        first = client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"})
        assert client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"}).json() == first.json()
        refused = client.post("/api/v1/jobs/titles", json={"topic": "Spelt bread"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "idempotency_key_reused"
        # Another endpoint with the same key is another body too.
        assert client.post("/api/v1/jobs/website-analysis", json={"url": "https://example.invalid/"}).status_code == 422
    with api_server.client(token_for(cast.bea), **{"Idempotency-Key": "k-1"}) as client:
        other = client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"})
        assert other.status_code == 202 and other.json()["jobId"] != first.json()["jobId"]
    assert db.execute("SELECT count(*) FROM inkwell.requests").fetchone()[0] == 2


def test_a_refused_create_does_not_use_up_its_key(api_server, cast, token_for, db):
    db.execute("UPDATE inkwell.organizations SET credit_balance = 0 WHERE id = %s", (cast.ana.organization_id,))
    with api_server.client(token_for(cast.ana), **{"Idempotency-Key": "retry-me"}) as client:
        assert client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"}).status_code == 402
        db.execute("UPDATE inkwell.organizations SET credit_balance = 5 WHERE id = %s", (cast.ana.organization_id,))
        assert client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"}).status_code == 202


def test_housekeeping_forgets_keys_older_than_a_day(api_server, cast, token_for, db, worker):
    with api_server.client(token_for(cast.ana), **{"Idempotency-Key": "old-key"}) as client:
        first = client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"}).json()["jobId"]
        client.headers["Idempotency-Key"] = "fresh-key"
        client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"})
    db.execute("UPDATE inkwell.idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old-key'")
    from tests.integration.test_housekeeping import run_housekeeping

    run_housekeeping(db)
    assert [row[0] for row in db.execute("SELECT key FROM inkwell.idempotency_keys")] == ["fresh-key"]
    # The old key now makes a new job.
    with api_server.client(token_for(cast.ana), **{"Idempotency-Key": "old-key"}) as client:
        assert client.post("/api/v1/jobs/titles", json={"topic": "Rye bread"}).json()["jobId"] != first
