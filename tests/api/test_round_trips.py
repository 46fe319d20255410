"""What an API call costs the database in statements (issue 13: 1,000 frontends polling every 2 s on one
API process): a status poll is one statement, a create checks its token in the statement that sets
who is acting. Counted from the server's own log (log_statement = 'all' for the test's database)."""

from __future__ import annotations

import re
import time

import psycopg

from tests.api.conftest import start_api_server

_STATEMENT = re.compile(r"\[(\d+)\] LOG:  (?:statement|execute [^:]*): (.*)")


def _statements_during(postgres, db: psycopg.Connection, call) -> list[str]:
    """The statements other connections of this database ran while `call()` ran (own ones left out)."""
    own_pid = db.info.backend_pid
    with open(postgres.log_path, "rb") as log:
        log.seek(0, 2)
        start = log.tell()
        call()
        time.sleep(0.3)  # the server writes its log line before answering, but give the file a moment
        log.seek(start)
        lines = log.read().decode(errors="replace").splitlines()
    return [m.group(2) for line in lines if (m := _STATEMENT.search(line)) and int(m.group(1)) != own_pid]


def test_a_status_poll_is_one_statement_and_a_create_acts_in_one(postgres, db, api_env, tmp_path, cast, token_for):
    db.execute(f"ALTER DATABASE {db.info.dbname} SET log_statement = 'all'")  # for connections made from now on
    server = start_api_server(api_env, tmp_path / "api.log")
    try:
        with server.client(token_for(cast.ana)) as client:
            job = client.post("/api/v1/jobs/titles", json={"topic": "Counted bread"}).json()["jobId"]
            for _ in range(3):  # the pools' connections opened, psycopg's statements prepared
                assert client.get(f"/api/v1/jobs/{job}/status").status_code == 200

            def poll() -> None:
                for _ in range(10):
                    assert client.get(f"/api/v1/jobs/{job}/status").status_code == 200

            polls = _statements_during(postgres, db, poll)
            assert len(polls) == 10, polls
            assert all("api_read_request" in statement for statement in polls), polls

            def create() -> None:
                assert client.post("/api/v1/jobs/titles", json={"topic": "Counted toast"}).status_code == 202

            created = _statements_during(postgres, db, create)
            # BEGIN, acting as the token's user with its check, the submission (with its savepoint), COMMIT.
            assert len(created) <= 6, created
            assert sum("act_with_api_token" in statement for statement in created) == 1, created
    finally:
        server.stop()
