"""Live job events: Server-Sent Events fanned out from one LISTEN connection per API process."""

from __future__ import annotations

import time

from tests.api.sse import StreamReader
from tests.conftest import wait_for
from tests.support.llm_server import ok


def _listen_connections(db) -> int:
    return db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'inkwell-api-listen'").fetchone()[0]


def test_many_streams_share_one_listening_connection_and_each_ends_with_the_terminal_state(
    api_server, cast, token_for, llm_server, db, start_worker, api_env
):
    llm_server.default_behaviour = ok(delay_per_chunk=0.25, chunks=12)
    token = token_for(cast.ana)
    with api_server.client(token) as client:
        job_id = client.post("/api/v1/jobs/titles", json={"topic": "Streaming bread", "count": 3}).json()["jobId"]
        clients = [api_server.client(token) for _ in range(20)]
        streams = [StreamReader(c, f"/api/v1/jobs/{job_id}/events").start() for c in clients]
        wait_for(lambda: all(s.status_code == 200 for s in streams), timeout=10, message="20 streams open")
        time.sleep(1.5)  # idle: a heartbeat comment each (INKWELL_API_HEARTBEAT_SECONDS=1)
        assert _listen_connections(db) == 1
        start_worker(concurrency=2, extra_env=api_env)
        for stream in streams:
            stream.wait(60)
        for c in clients:
            c.close()
    for stream in streams:
        assert stream.comments >= 1
        assert stream.events[0].event == "status" and stream.events[0].data["status"] == "queued"
        assert stream.events[-1].data["status"] == "succeeded"
        kinds = {event.event for event in stream.events}
        assert {"status", "progress", "partial"} <= kinds, kinds
    assert _listen_connections(db) == 1
    # The hub followed the job while its streams ran (its changes were announced), and no longer.
    wait_for(lambda: db.execute("SELECT count(*) FROM inkwell.followed_requests").fetchone()[0] == 0,
             timeout=10, message="the ended streams' request no longer followed")


def test_last_event_id_resumes_after_what_the_client_saw(api_server, cast, token_for, llm_server, worker):
    llm_server.default_behaviour = ok(delay_per_chunk=0.3, chunks=12)
    token = token_for(cast.ana)
    with api_server.client(token) as client:
        job_id = client.post("/api/v1/jobs/titles", json={"topic": "Resumed bread", "count": 3}).json()["jobId"]
        path = f"/api/v1/jobs/{job_id}/events"
        # Read until the first progress of the running job, then drop the connection.
        seen = []
        with client.stream("GET", path) as response:
            event = {}
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line == "" and event:
                    seen.append(event)
                    event = {}
                    if seen[-1].get("event") in ("progress", "partial") and "id" in seen[-1]:
                        break
        last_id = max(e["id"] for e in seen if "id" in e)
        resumed = StreamReader(client, path, headers={"Last-Event-ID": str(last_id)}).start().wait(60)
        ids = [int(e.id) for e in resumed.events if e.id is not None]
        assert ids and min(ids) > last_id
        assert resumed.events[-1].data["status"] == "succeeded"
        assert not any(e.event == "status" and e.data["status"] == "queued" for e in resumed.events)

        # Resuming a finished job's stream from its last id answers the terminal state again and ends.
        final = StreamReader(client, path, headers={"Last-Event-ID": str(ids[-1])}).start().wait(10)
        assert [e.data["status"] for e in final.events] == ["succeeded"]
        bad = client.get(path, headers={"Last-Event-ID": "yesterday"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_last_event_id"


def test_a_dropped_listening_connection_is_replaced_and_no_change_is_lost(api_server, cast, token_for, db):
    token = token_for(cast.ana)
    with api_server.client(token) as client, api_server.client(token) as stream_client:
        job_id = client.post("/api/v1/jobs/titles", json={"topic": "Later bread", "scheduledAt": "2999-01-01T00:00:00Z"}).json()["jobId"]
        stream = StreamReader(stream_client, f"/api/v1/jobs/{job_id}/events").start()
        wait_for(lambda: stream.events, timeout=10, message="the first event")
        assert stream.events[0].data["status"] == "scheduled"
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'inkwell-api-listen'")
        # Cancelled right after the listener dropped (before or after it is back: the hub re-reads
        # every followed request when it reconnects, so either way the stream hears of it).
        assert client.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        stream.wait(30)
    assert stream.events[-1].data["status"] == "cancelled"
    wait_for(lambda: _listen_connections(db) == 1, timeout=10, message="the listener back")
    assert "event listener lost its connection" in api_server.log
