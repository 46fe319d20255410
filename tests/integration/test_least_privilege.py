"""Least privilege with no way back up: raw SQL on the console's and the workers' own logins, as a bug
(or an injection) anywhere in them would run it. Every attack here is refused by the database.

The console logs in as inkwell_console and the workers as inkwell_worker (db/roles.py), as under ./run.
"""

from __future__ import annotations

import secrets
import uuid

import psycopg
import pytest

from db.connection import open_pool
from db.people import acting_as, start_session
from db.requests import get_request
from queue_tasks.actions import cancel_request, job_manager_for, retry_request
from queue_tasks.models import TitlesInput
from queue_tasks.submit import submit_titles_request
from tests.support.people import make_cast

DENIED = (psycopg.errors.InsufficientPrivilege,)


@pytest.fixture
def cast(db):
    return make_cast(db)


@pytest.fixture
def console(console_database_url):
    """A connection as the console logs in: role inkwell_console, autocommit."""
    with psycopg.connect(console_database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def worker(worker_database_url):
    with psycopg.connect(worker_database_url, autocommit=True) as conn:
        yield conn


def refused(conn: psycopg.Connection, statement: str, params=None, *, match: str = "") -> None:
    """`statement`, in its own transaction on `conn`, is refused (insufficient privilege)."""
    with pytest.raises(DENIED, match=match), conn.transaction():
        conn.execute(statement, params)


def session_of(db, user) -> str:
    return start_session(db, user.id)


def submit_on_console(console, token: str, topic: str) -> uuid.UUID:
    with acting_as(console, token):
        return submit_titles_request(console, TitlesInput(topic=topic), requested_by="someone")


# --- no way back up ---


@pytest.mark.parametrize("escape", ["RESET ROLE", "SET ROLE postgres", "SET ROLE inkwell_owner", "SET SESSION AUTHORIZATION postgres"])
def test_the_console_login_cannot_become_anyone_else(console, cast, escape):
    with console.transaction():
        if escape == "RESET ROLE":
            console.execute(escape)  # allowed, and gives back only the login's own role
        else:
            with pytest.raises(DENIED), console.transaction():
                console.execute(escape)
        assert console.execute("SELECT current_user, session_user").fetchone() == ("inkwell_console", "inkwell_console")
    refused(console, "SELECT password_hash FROM inkwell.users", match="permission denied")
    assert console.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() == (False, False)


def test_an_editors_transaction_cannot_reset_its_way_to_the_password_hashes(db, console, cast):
    token = session_of(db, cast.ana)
    with acting_as(console, token):
        console.execute("RESET ROLE")
        assert console.execute("SELECT current_user").fetchone() == ("inkwell_console",)
        with pytest.raises(DENIED, match="permission denied"), console.transaction():
            console.execute("SELECT password_hash FROM inkwell.users")


def test_setting_a_user_id_or_a_forged_session_token_on_the_console_login_is_nobody(db, console, cast):
    ana = session_of(db, cast.ana)
    with console.transaction():
        console.execute("SELECT set_config('inkwell.user_id', %s, true)", (str(cast.admin.id),))
        assert console.execute("SELECT inkwell.acting_role(), count(*) FROM inkwell.users").fetchone() == (None, 0)
        refused(console, "SELECT inkwell.set_user_role(%s, 'admin')", (cast.ana.id,), match="Only admins")
    with console.transaction():
        console.execute("SELECT set_config('inkwell.session_token', %s, true)", (secrets.token_urlsafe(32),))
        assert console.execute("SELECT inkwell.acting_role(), count(*) FROM inkwell.requests").fetchone() == (None, 0)
    with acting_as(console, ana):  # Ana's own live session: she is Ana, not more
        assert console.execute("SELECT inkwell.acting_role()").fetchone() == ("editor",)
        refused(console, "SELECT inkwell.start_session(%s, sha256('x'), 'console', NULL, NULL)", (cast.admin.id,),
                match="only by signing in")


@pytest.mark.parametrize("table", ["inkwell.sessions", "inkwell.sign_in_throttle", "inkwell.sign_in_secret", "inkwell.schema_migrations"])
def test_the_console_and_the_workers_cannot_read_sessions_throttling_or_secrets(console, worker, cast, table):
    refused(console, f"SELECT * FROM {table}", match="permission denied")
    refused(worker, f"SELECT * FROM {table}", match="permission denied")


def test_the_workers_login_reads_no_password_hash_makes_no_table_and_starts_no_session(worker, cast):
    refused(worker, "SELECT password_hash FROM inkwell.users", match="permission denied")
    refused(worker, "CREATE TABLE inkwell.stolen (x int)", match="permission denied")
    refused(worker, "UPDATE inkwell.users SET role = 'admin'", match="permission denied")
    refused(worker, "SELECT inkwell.start_session(1, sha256('x'), 'console', NULL, NULL)", match="only by signing in")
    refused(worker, "INSERT INTO inkwell.audit_log (actor_name, action) VALUES ('forged', 'x')", match="permission denied")
    # BYPASSRLS: the workers see every row through a policy anyway (test_worker_queueing_lock.py says why).
    assert worker.execute("SELECT rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() \
        == (False, False, True)


# --- the database refuses what the console never does ---


def test_the_console_cannot_raise_a_jobs_priority(db, console, cast):
    own = submit_on_console(console, session_of(db, cast.ana), "acme spring sale")
    job_id = get_request(db, own).job_id
    before = db.execute("SELECT priority FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()[0]
    for who in (cast.ana, cast.olga):  # the job's owner, and an operator who may act on every job
        with acting_as(console, session_of(db, who)):
            refused(console, "UPDATE procrastinate_jobs SET priority = 2000000000 WHERE id = %s", (job_id,),
                    match="priority is set by fair sharing")
    assert db.execute("SELECT priority FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()[0] == before


def test_the_console_cannot_queue_a_job_ahead_of_fair_sharing(db, console, cast):
    with acting_as(console, session_of(db, cast.ana)):
        refused(
            console,
            """SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('default', 'inkwell.generate_titles', 2000000000, NULL, NULL,
                   jsonb_build_object('request_id', gen_random_uuid()::text), NULL)::procrastinate_job_to_defer_v1])""",
            match="fair-share priority",
        )
        refused(console, """INSERT INTO procrastinate_jobs (queue_name, task_name, status, args, priority)
                            VALUES ('default', 'inkwell.generate_titles', 'doing', '{}', -2000000000)""",
                match="waiting")
    assert db.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)


def test_the_console_cannot_queue_a_bare_job_without_a_request(db, console, cast):
    with pytest.raises(DENIED, match="only for a request"), acting_as(console, session_of(db, cast.ana)):
        console.execute(
            """SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('default', 'inkwell.generate_titles', inkwell.highest_new_job_priority(),
                   NULL, NULL, jsonb_build_object('request_id', gen_random_uuid()::text), NULL)::procrastinate_job_to_defer_v1])"""
        )
    assert db.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)


def test_the_console_cannot_write_queue_events(db, console, cast):
    own = submit_on_console(console, session_of(db, cast.ana), "acme spring sale")
    job_id = get_request(db, own).job_id
    with acting_as(console, session_of(db, cast.olga)):
        refused(console, "INSERT INTO procrastinate_events (job_id, type) VALUES (%s, 'succeeded')", (job_id,),
                match="permission denied")
    assert [t for (t,) in db.execute("SELECT type::text FROM procrastinate_events WHERE job_id = %s", (job_id,))] == ["deferred"]


def test_the_console_cannot_insert_a_finished_request_or_one_without_its_job(db, console, cast):
    with acting_as(console, session_of(db, cast.ana)):
        refused(console, """INSERT INTO inkwell.requests (id, kind, input, status, requested_by)
                            VALUES (gen_random_uuid(), 'titles', '{"topic": "forged"}', 'succeeded', 'Ana')""",
                match="row-level security")
        refused(console, """INSERT INTO inkwell.requests (id, kind, input, status, requested_by)
                            VALUES (gen_random_uuid(), 'titles', '{"topic": "forged"}', 'queued', 'Ana')""",
                match="row-level security")
        refused(console, """INSERT INTO inkwell.requests (id, kind, input, status, requested_by, result, finished_at)
                            VALUES (gen_random_uuid(), 'titles', '{}', 'queued', 'Ana', '{"titles": []}', now())""",
                match="permission denied")
    other = submit_on_console(console, session_of(db, cast.ana), "acme spring sale")
    other_job = get_request(db, other).job_id
    with pytest.raises(DENIED, match="only with its own job"), acting_as(console, session_of(db, cast.ana)):
        # Another request's job: the row passes the policy, the commit does not.
        console.execute(
            """INSERT INTO inkwell.requests (id, kind, input, status, requested_by, job_id)
               VALUES (gen_random_uuid(), 'titles', '{"topic": "forged"}', 'queued', 'Ana', %s)""",
            (other_job + 1_000,),
        )
    assert db.execute("SELECT count(*) FROM inkwell.requests").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM analytics.requests WHERE status = 'succeeded'").fetchone() == (0,)


def test_what_the_console_does_still_works_on_its_own_login(db, console_database_url, cast):
    """Submit, cancel, retry of a cancelled request (a new job at the fair-share priority) and of a
    failed one (the same job, its priority kept), through the console's pool and Procrastinate's manager."""
    pool = open_pool(console_database_url)
    manager = job_manager_for(pool)
    try:
        token = start_session(db, cast.ana.id)
        with pool.connection() as conn:
            first = submit_on_console(conn, token, "acme spring sale")
            second = submit_on_console(conn, token, "acme autumn sale")
            with acting_as(conn, token):
                assert cancel_request(conn, manager, first) == "cancelled"
            with acting_as(conn, token):
                retry_request(conn, manager, first)
        retried = get_request(db, first)
        assert retried.status == "queued" and retried.previous_job_ids
        new_priority = db.execute("SELECT priority FROM procrastinate_jobs WHERE id = %s", (retried.job_id,)).fetchone()[0]
        assert new_priority < 0, "a retried request's new job waits its fair turn"

        job = get_request(db, second).job_id
        db.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job,))
        db.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (job,))
        with pool.connection() as conn, acting_as(conn, token):
            retry_request(conn, manager, second)
        assert get_request(db, second).status == "queued"
        events = [t for (t,) in db.execute("SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id", (job,))]
        assert events[-1] == "retried", "Procrastinate's own triggers still record the events"
    finally:
        pool.close()


def test_historys_own_reads_show_nobody_nothing_and_an_editor_only_their_organization(db, console, cast):
    """inkwell.history_rows / count_history (0074) apply the read policy themselves: called straight
    from the console's login they give a forged session nothing and an editor no other organization."""
    submit_on_console(console, session_of(db, cast.carl), "globex launch plan")
    acme = submit_on_console(console, session_of(db, cast.ana), "acme spring sale")
    rows = "SELECT id FROM inkwell.history_rows(ARRAY['queued'], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 100)"
    count = "SELECT inkwell.count_history(ARRAY['queued'], NULL, NULL, NULL, NULL, NULL, NULL, 100)"
    with console.transaction():
        console.execute("SELECT set_config('inkwell.session_token', %s, true)", (secrets.token_urlsafe(32),))
        assert console.execute(rows).fetchall() == [] and console.execute(count).fetchone() == (0,)
    with acting_as(console, session_of(db, cast.ana)):
        assert console.execute(rows).fetchall() == [(acme,)] and console.execute(count).fetchone() == (1,)
    with acting_as(console, session_of(db, cast.olga)):
        assert console.execute(count).fetchone() == (2,)
