"""The whole flow a frontend written to the jobs API runs, against the real server, database,
worker and local model server: create, poll every 2 s and follow the event stream, read the
result, and the image follow-up."""

from __future__ import annotations

import time

from tests.api.sse import StreamReader
from tests.conftest import wait_for


def _blog_body(cast, **options):
    return {
        "topic": {"title": "Sourdough starters for busy parents", "subheader": "Ten minutes a day", "keywords": ["bread"]},
        "businessInfo": {"businessType": "neighbourhood bakery", "targetAudience": "young families", "brandVoice": "warm"},
        "organizationId": str(cast.ana.organization_id),
        "additionalInstructions": "Mention weekend classes.",
        "options": {"autoSave": True, "status": "draft", "includeVisuals": True, **options},
    }


def test_content_generation_polled_and_streamed_to_its_saved_post_and_image(api_server, cast, token_for, worker):
    token = token_for(cast.ana)
    with api_server.client(token) as client, api_server.client(token) as stream_client:
        created = client.post("/api/v1/jobs/content-generation", json=_blog_body(cast))
        assert created.status_code == 202, created.text
        job_id = created.json()["jobId"]
        assert created.headers["location"] == f"/api/v1/jobs/{job_id}/status"
        stream = StreamReader(stream_client, f"/api/v1/jobs/{job_id}/events").start()

        polled = []
        deadline = time.monotonic() + 120
        while True:
            document = client.get(created.headers["location"]).json()
            polled.append(document)
            if document["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(2)
        stream.wait(30)

    assert document["status"] == "succeeded", document
    assert document["kind"] == "content-generation"
    assert document["progress"] == 100 and document["finishedAt"] and document["createdAt"].endswith("Z")
    result = document["result"]
    assert result["data"]["title"] and result["data"]["body_markdown"]
    assert result["savedPost"]["status"] == "draft" and result["savedPost"]["id"]
    assert result["imageGeneration"]["needsImageGeneration"] is True
    image_job_id = result["imageGeneration"]["imageJobId"]
    assert image_job_id

    # The stream said the same, live, and ended with the terminal state.
    assert stream.status_code == 200
    kinds = [event.event for event in stream.events]
    assert "progress" in kinds, kinds
    assert stream.events[-1].event == "status" and stream.events[-1].data["status"] == "succeeded"
    assert stream.events[-1].data["result"]["savedPost"] == result["savedPost"]
    ids = [int(event.id) for event in stream.events if event.id is not None]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and stream.events[-1].id is not None

    with api_server.client(token) as client:
        image = wait_for(lambda: (d := client.get(f"/api/v1/jobs/{image_job_id}/status").json())["status"] == "succeeded" and d,
                         timeout=60, message="the image follow-up")
        assert image["kind"] == "post-image" and image["result"]["data"]["post_id"] == result["savedPost"]["id"]

        # A frontend can ask for another image of the saved post.
        again = client.post("/api/images/generate-for-blog", json={
            "blogPostId": result["savedPost"]["id"], "content": "A loaf on a kitchen table",
            "topic": "Sourdough", "organizationId": cast.ana.organization_id})
        assert again.status_code == 202, again.text
        done = wait_for(lambda: (d := client.get(f"/api/v1/jobs/{again.json()['jobId']}/status").json())["status"]
                        in ("succeeded", "failed") and d, timeout=60, message="the asked-for image")
        assert done["status"] == "succeeded", done


def test_titles_list_filters_and_cursor_me_and_health(api_server, cast, token_for, worker):
    token = token_for(cast.ana)
    with api_server.client(token) as client:
        ids = []
        for n in range(3):
            answer = client.post("/api/v1/jobs/titles", json={"topic": f"Bread topic number {n}", "count": 2})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["jobId"])
        analysis = client.post("/api/v1/jobs/website-analysis", json={"url": "https://example.invalid/"})
        assert analysis.status_code == 202
        for job_id in ids:
            wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}/status").json()["status"] == "succeeded", timeout=60)
        done = client.get(f"/api/v1/jobs/{ids[0]}/status").json()
        assert done["result"]["data"]["titles"], done

        first = client.get("/api/v1/jobs", params={"kind": "titles", "limit": 2})
        assert first.status_code == 200, first.text
        page1 = first.json()
        assert [j["jobId"] for j in page1["jobs"]] == [ids[2], ids[1]]
        page2 = client.get("/api/v1/jobs", params={"kind": "titles", "limit": 2, "cursor": page1["nextCursor"]}).json()
        assert [j["jobId"] for j in page2["jobs"]] == [ids[0]] and page2["nextCursor"] is None
        by_kind = client.get("/api/v1/jobs", params={"kind": "website-analysis"}).json()["jobs"]
        assert [j["jobId"] for j in by_kind] == [analysis.json()["jobId"]]
        assert client.get("/api/v1/jobs", params={"status": "succeeded", "kind": "titles"}).json()["jobs"]
        assert client.get("/api/v1/jobs", params={"since": "2999-01-01T00:00:00Z"}).json()["jobs"] == []

        me = client.get("/api/v1/me").json()
        assert me["username"] == "ana" and me["role"] == "editor" and me["organizationId"] == cast.ana.organization_id
        assert me["creditBalance"] == 1_000 - 3 * 1 - 3  # three titles, one website analysis

    with api_server.client() as anonymous:
        health = anonymous.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json()["database"] is True and health.json()["liveWorkers"] >= 1


def test_scheduled_job_waits_then_cancel_and_retry_follow_the_rules(api_server, cast, token_for, worker):
    token = token_for(cast.ana)
    with api_server.client(token) as client:
        scheduled = client.post("/api/v1/jobs/titles", json={"topic": "Later bread", "scheduledAt": "2999-01-01T00:00:00Z"})
        assert scheduled.status_code == 202
        job_id = scheduled.json()["jobId"]
        assert client.get(f"/api/v1/jobs/{job_id}/status").json()["status"] == "scheduled"

        cancelled = client.post(f"/api/v1/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = client.post(f"/api/v1/jobs/{job_id}/cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        assert "already cancelled" in again.json()["error"]["message"]

        retried = client.post(f"/api/v1/jobs/{job_id}/retry")
        assert retried.status_code == 202 and retried.json()["status"] == "queued"
        wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}/status").json()["status"] == "succeeded", timeout=60)
        refused = client.post(f"/api/v1/jobs/{job_id}/retry")
        assert refused.status_code == 409
        assert refused.json()["error"]["message"].startswith("This request is succeeded")
        assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409

        minute = client.post("/api/v1/jobs/titles", json={"topic": "A minute from now", "scheduledAt":
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))})
        assert client.get(f"/api/v1/jobs/{minute.json()['jobId']}/status").json()["status"] == "scheduled"


def test_a_site_build_answers_its_build_and_section_jobs_which_run(api_server, cast, token_for, worker):
    definition = {
        "site": "Acme Bakery", "business": {"business_type": "bakery", "target_audience": "families", "brand_voice": "warm"},
        "routes": [{"path": "/", "sections": [{"template": "hero"}, {"template": "faq"}]},
                   {"path": "/pricing", "sections": [{"template": "pricing", "name": "plans", "brief": "three plans"}]}],
    }
    with api_server.client(token_for(cast.ana)) as client:
        built = client.post("/api/v1/jobs/site-build", json=definition)
        assert built.status_code == 202, built.text
        answer = built.json()
        assert answer["buildId"] and len(answer["jobIds"]) == 3 and answer["skippedSections"] == 0
        for job_id in answer["jobIds"]:
            done = wait_for(lambda: (d := client.get(f"/api/v1/jobs/{job_id}/status").json())["status"] == "succeeded" and d,
                            timeout=60, message="a section")
            assert done["kind"] == "site-section" and done["result"]["data"]
        refused = client.post("/api/v1/jobs/site-build", json={**definition, "routes": [{"path": "/", "sections": [{"template": "carousel"}]}]})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_site_definition"
        assert refused.json()["error"]["message"].startswith("routes.0.sections.0.template: must be 'hero'")
        later = client.post("/api/v1/jobs/site-build", json={**definition, "scheduledAt": "2999-01-01T00:00:00Z"})
        assert all(client.get(f"/api/v1/jobs/{j}/status").json()["status"] == "scheduled" for j in later.json()["jobIds"])
