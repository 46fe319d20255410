"""Credits and per-user limits, enforced by the database in the submit transaction (migration 0045):
each request's price is reserved from its organization's balance, a submission that is short is
refused with what it needs and what is left (and nothing is queued), a failed or cancelled request
is refunded once and a retry pays again, only admins top up, and concurrent submissions never
overspend."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from db import credits
from db.connection import open_pool
from db.people import ActionRefused, acting_as
from db.requests import get_request
from queue_tasks.actions import cancel_request, job_manager_for, retry_request
from queue_tasks.blog_posts import BlogPostInput
from queue_tasks.models import TitlesInput
from queue_tasks.submit import JOB_KINDS, SubmitError, submit_requests
from tests.conftest import wait_for
from tests.support.llm_server import error
from tests.support.people import make_cast

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cast(db):
    return make_cast(db, credits=1_000)


@pytest.fixture
def manager(database_url):
    pool = open_pool(database_url)
    yield job_manager_for(pool)
    pool.close()


def topics(count: int, prefix: str = "topic") -> list[TitlesInput]:
    return [TitlesInput(topic=f"{prefix} {i}") for i in range(count)]


def submit_as(conn, user, inputs, kind: str = "titles") -> list[uuid.UUID]:
    with acting_as(conn, user):
        return submit_requests(conn, kind, inputs, requested_by=user.display_name)


def set_balance(db, organization_id: int, balance: int) -> None:
    db.execute("UPDATE inkwell.organizations SET credit_balance = %s WHERE id = %s", (balance, organization_id))


def scalar(db, query: str, *params):
    return db.execute(query, params).fetchone()[0]


def ledger_sum(db, organization_id: int, *reasons: str) -> int:
    return scalar(
        db, "SELECT coalesce(sum(delta), 0) FROM inkwell.credit_ledger WHERE organization_id = %s AND reason = ANY(%s)",
        organization_id, list(reasons),
    )


def submissions_audited(db) -> list[tuple]:
    return db.execute(
        "SELECT actor_name, organization_id, target_id, details FROM inkwell.audit_log "
        "WHERE action = 'request.submitted' ORDER BY id"
    ).fetchall()


def test_submitting_reserves_each_request_s_price_from_the_organization(db, cast):
    ids = submit_as(db, cast.ana, topics(3))

    acme = cast.ana.organization_id
    assert credits.balance(db, acme) == 1_000 - 3
    rows = db.execute("SELECT credits, credits_refunded_at, organization_id FROM inkwell.requests").fetchall()
    assert rows == [(1, None, acme)] * 3
    entries = credits.ledger(db, acme, limit=10)
    assert sorted((e.request_id, e.delta, e.reason, e.actor_name) for e in entries) == sorted(
        (request_id, -1, "reserve", "ana") for request_id in ids
    )
    assert credits.balance(db, cast.carl.organization_id) == 1_000, "another organization pays nothing"


def test_short_of_credits_the_submission_is_refused_saying_what_it_needs_and_nothing_is_queued(db, cast):
    acme = cast.ana.organization_id
    set_balance(db, acme, 12)

    with pytest.raises(SubmitError) as refusal:
        submit_as(db, cast.ana, topics(50))

    assert str(refusal.value) == "Not enough credits: this needs 50, Acme has 12 left. An admin adds credits on the Admin page, Organizations tab (Top up credits)."
    assert scalar(db, "SELECT count(*) FROM inkwell.requests") == 0
    assert scalar(db, "SELECT count(*) FROM procrastinate_jobs") == 0
    assert credits.balance(db, acme) == 12
    assert credits.ledger(db, acme, limit=10) == []
    assert submissions_audited(db) == []


def test_a_submission_that_fits_the_balance_exactly_is_accepted(db, cast):
    acme = cast.ana.organization_id
    set_balance(db, acme, 12)
    submit_as(db, cast.ana, topics(12))
    assert credits.balance(db, acme) == 0


def test_a_blog_post_with_visuals_also_pays_for_its_image(db, cast):
    costs = credits.kind_costs(db)
    plain = BlogPostInput(topic="sourdough for beginners")
    with_image = BlogPostInput(topic="sourdough for experts", include_visuals=True)
    submit_as(db, cast.ana, [plain, with_image], kind="blog_post")

    charged = [row[0] for row in db.execute("SELECT credits FROM inkwell.requests ORDER BY credits")]
    assert charged == [costs["blog_post"], costs["blog_post"] + costs["post_image"]]
    assert credits.balance(db, cast.ana.organization_id) == 1_000 - sum(charged)


def test_requests_submitted_with_no_one_signed_in_cost_nothing(db, cast):
    balances = db.execute("SELECT id, credit_balance FROM inkwell.organizations ORDER BY id").fetchall()
    submit_requests(db, "titles", topics(2), requested_by="nightly script")

    assert db.execute("SELECT credits, user_id, organization_id FROM inkwell.requests").fetchall() == [(0, None, None)] * 2
    assert scalar(db, "SELECT count(*) FROM inkwell.credit_ledger WHERE reason = 'reserve'") == 0
    assert db.execute("SELECT id, credit_balance FROM inkwell.organizations ORDER BY id").fetchall() == balances


def test_every_job_kind_has_a_price(db):
    assert set(JOB_KINDS) <= set(credits.kind_costs(db))


def test_each_submission_is_one_audit_entry_with_its_counts(db, cast):
    (single,) = submit_as(db, cast.ana, topics(1))
    submit_as(db, cast.bea, topics(4, "bulk"))

    entries = submissions_audited(db)
    acme = cast.ana.organization_id
    assert entries == [
        ("ana", acme, str(single), {"requests": 1, "credits": 1, "kinds": {"titles": 1}}),
        ("bea", acme, None, {"requests": 4, "credits": 4, "kinds": {"titles": 4}}),
    ]


def test_a_submission_written_in_several_statements_counts_as_one(db, cast):
    # As a bulk submission written in chunks (several INSERTs or COPYs in one transaction) would be.
    acme = cast.ana.organization_id
    with acting_as(db, cast.ana):
        submit_requests(db, "titles", topics(3, "first chunk"), requested_by="Ana")
        submit_requests(db, "titles", topics(2, "second chunk"), requested_by="Ana")
    (entry,) = submissions_audited(db)
    assert entry[3] == {"requests": 5, "credits": 5, "kinds": {"titles": 5}}

    set_balance(db, acme, 4)
    with pytest.raises(SubmitError) as refusal, acting_as(db, cast.ana):
        submit_requests(db, "titles", topics(3, "third chunk"), requested_by="Ana")
        submit_requests(db, "titles", topics(3, "fourth chunk"), requested_by="Ana")
    assert str(refusal.value) == "Not enough credits: this needs 6, Acme has 4 left. An admin adds credits on the Admin page, Organizations tab (Top up credits).", "the whole submission's figures"
    assert credits.balance(db, acme) == 4
    assert scalar(db, "SELECT count(*) FROM inkwell.requests") == 5


def test_the_submit_page_shows_the_refusal_and_queues_nothing(console_as, db):
    at = console_as("editor", "pages/1_Submit.py").run()
    user = at.session_state["signed_in_user"]
    set_balance(db, user.organization_id, 2)

    at.text_area(key="pasted_topics").input("urban beekeeping\nwinter gardening\nsourdough basics")
    at.button(key="pasted_submit").click().run()

    assert not at.exception
    assert [e.value for e in at.error] == ["Nothing was queued. Not enough credits: this needs 3, Acme has 2 left. An admin adds credits on the Admin page, Organizations tab (Top up credits)."]
    assert scalar(db, "SELECT count(*) FROM inkwell.requests") == 0


# --- concurrency ------------------------------------------------------------------------------------


def test_two_editors_racing_for_the_last_credits_cannot_overspend(database_url, db, cast):
    acme = cast.ana.organization_id
    set_balance(db, acme, 15)
    outcome: dict[str, object] = {}

    def bea_submits() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            outcome["bea_pid"] = conn.info.backend_pid
            try:
                outcome["bea"] = submit_as(conn, cast.bea, topics(10, "bea"))
            except SubmitError as refusal:
                outcome["bea"] = refusal

    with psycopg.connect(database_url, autocommit=True) as ana_conn:
        with acting_as(ana_conn, cast.ana):
            ana_ids = submit_requests(ana_conn, "titles", topics(10, "ana"), requested_by="Ana")
            # Ana's 10 are reserved but not committed; Bea asks for 10 of the same 15 now.
            bea = threading.Thread(target=bea_submits)
            bea.start()
            wait_for(
                lambda: "bea_pid" in outcome and scalar(
                    db, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", outcome["bea_pid"]
                ),
                message="Bea's submission waiting for Ana's reservation",
            )
        # Ana's transaction commits here; Bea's reservation is decided against what is left.
        bea.join(timeout=30)

    assert isinstance(outcome["bea"], SubmitError)
    assert str(outcome["bea"]) == "Not enough credits: this needs 10, Acme has 5 left. An admin adds credits on the Admin page, Organizations tab (Top up credits)."
    assert credits.balance(db, acme) == 5
    assert ledger_sum(db, acme, "reserve") == -10
    assert {row[0] for row in db.execute("SELECT id FROM inkwell.requests")} == set(ana_ids)
    assert scalar(db, "SELECT count(*) FROM procrastinate_jobs") == 10


def test_many_concurrent_submissions_never_spend_more_than_the_balance(database_url, db, cast):
    acme = cast.ana.organization_id
    set_balance(db, acme, 40)
    # Plenty of submissions a minute for this test: the rate limit has its own test.
    db.execute(
        "INSERT INTO inkwell.user_limits (user_id, max_jobs_in_flight, max_submissions_per_minute) "
        "VALUES (%s, 10000, 10000), (%s, 10000, 10000)",
        (cast.ana.id, cast.bea.id),
    )
    accepted: list[uuid.UUID] = []
    refusals: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def editor(user, batch: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            start.wait()
            for round_number in range(100):
                try:
                    ids = submit_as(conn, user, topics(batch, f"{user.username} {round_number}"))
                except SubmitError as refusal:
                    with lock:
                        refusals.append(str(refusal))
                    return
                with lock:
                    accepted.extend(ids)

    threads = [threading.Thread(target=editor, args=(user, batch))
               for user, batch in ((cast.ana, 1), (cast.ana, 3), (cast.bea, 2), (cast.bea, 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # The one-at-a-time thread stops only at 0: every credit was spent, none twice.
    assert credits.balance(db, acme) == 0
    assert len(accepted) == 40
    assert len(refusals) == 4 and all(r.startswith("Not enough credits: this needs ") for r in refusals), refusals
    assert ledger_sum(db, acme, "reserve") == -40
    assert scalar(db, "SELECT count(*) FROM inkwell.requests") == len(accepted)
    assert scalar(db, "SELECT count(*) FROM procrastinate_jobs") == len(accepted)


# --- refunds and retries ------------------------------------------------------------------------------


def test_cancelling_a_request_refunds_its_credits_once(db, cast, manager):
    acme = cast.ana.organization_id
    (request_id,) = submit_as(db, cast.ana, topics(1))
    assert credits.balance(db, acme) == 999

    with acting_as(db, cast.ana):
        assert cancel_request(db, manager, request_id) == "cancelled"
    request = get_request(db, request_id)
    assert request.status == "cancelled"
    assert credits.balance(db, acme) == 1_000
    refunded_at = scalar(db, "SELECT credits_refunded_at FROM inkwell.requests WHERE id = %s", request_id)
    assert refunded_at is not None

    # Writing the status again, or moving it between the two refunded states, refunds nothing more.
    db.execute("UPDATE inkwell.requests SET status = 'cancelled', updated_at = now() WHERE id = %s", (request_id,))
    db.execute("UPDATE inkwell.requests SET status = 'failed', updated_at = now() WHERE id = %s", (request_id,))
    assert credits.balance(db, acme) == 1_000
    refunds = db.execute(
        "SELECT delta, actor_user_id FROM inkwell.credit_ledger WHERE request_id = %s AND reason = 'refund'", (request_id,)
    ).fetchall()
    assert refunds == [(1, cast.ana.id)]


def test_a_retry_pays_again_and_a_second_cancel_refunds_again(db, cast, manager):
    acme = cast.ana.organization_id
    (request_id,) = submit_as(db, cast.ana, topics(1))
    with acting_as(db, cast.ana):
        cancel_request(db, manager, request_id)
    with acting_as(db, cast.ana):
        retry_request(db, manager, request_id)
    assert get_request(db, request_id).status == "queued"
    assert credits.balance(db, acme) == 999
    assert scalar(db, "SELECT credits_refunded_at FROM inkwell.requests WHERE id = %s", request_id) is None

    with acting_as(db, cast.ana):
        cancel_request(db, manager, request_id)
    assert credits.balance(db, acme) == 1_000
    reasons = [row[0] for row in db.execute(
        "SELECT reason || ' ' || delta FROM inkwell.credit_ledger WHERE request_id = %s ORDER BY id", (request_id,)
    )]
    assert reasons == ["reserve -1", "refund 1", "reserve -1", "refund 1"]


def test_a_retry_without_enough_credits_is_refused_and_the_request_stays_cancelled(db, cast, manager):
    acme = cast.ana.organization_id
    (request_id,) = submit_as(db, cast.ana, topics(1))
    with acting_as(db, cast.ana):
        cancel_request(db, manager, request_id)
    set_balance(db, acme, 0)

    with pytest.raises(ActionRefused) as refusal, acting_as(db, cast.ana):
        retry_request(db, manager, request_id)

    assert str(refusal.value) == "Not enough credits: this needs 1, Acme has 0 left. An admin adds credits on the Admin page, Organizations tab (Top up credits)."
    request = get_request(db, request_id)
    assert request.status == "cancelled"
    assert scalar(db, "SELECT count(*) FROM procrastinate_jobs") == 1, "no new job"
    assert credits.balance(db, acme) == 0


def test_a_failed_request_is_refunded_once_and_its_retry_pays_again(db, cast, manager, start_worker, llm_server):
    acme = cast.ana.organization_id
    llm_server.push(error(401))  # permanent: fails at once, no retries
    (request_id,) = submit_as(db, cast.ana, topics(1))
    start_worker()
    failed = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)
    assert failed.status == "failed"
    assert credits.balance(db, acme) == 1_000
    assert ledger_sum(db, acme, "refund") == 1

    set_balance(db, acme, 0)
    with pytest.raises(ActionRefused, match=r"^Not enough credits: this needs 1, Acme has 0 left\. An admin adds credits on the Admin page, Organizations tab \(Top up credits\)\.$"):
        with acting_as(db, cast.ana):
            retry_request(db, manager, request_id)  # Procrastinate's retry_job, refused by the trigger
    assert get_request(db, request_id).status == "failed"
    set_balance(db, acme, 1_000)

    with acting_as(db, cast.ana):
        retry_request(db, manager, request_id)  # the test server now answers normally
    done = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)
    assert done.status == "succeeded"
    assert credits.balance(db, acme) == 999, "the successful run is paid for"
    assert ledger_sum(db, acme, "refund") == 1, "refunded once, for the failed run only"
    assert ledger_sum(db, acme, "reserve", "refund") == -1


# --- top-ups ------------------------------------------------------------------------------------------


def test_an_admin_tops_up_and_the_ledger_and_audit_log_say_so(db, cast):
    acme = cast.ana.organization_id
    with acting_as(db, cast.admin):
        new_balance = credits.top_up(db, acme, 250, note="November invoice")
    assert new_balance == credits.balance(db, acme) == 1_250
    (entry,) = credits.ledger(db, acme, limit=1)
    assert (entry.delta, entry.reason, entry.actor_user_id, entry.note) == (250, "top_up", cast.admin.id, "November invoice")
    audit = db.execute(
        "SELECT actor_user_id, target_id, details FROM inkwell.audit_log WHERE action = 'credits.topped_up'"
    ).fetchall()
    assert audit == [(cast.admin.id, str(acme), {"credits": 250, "balance": 1_250, "note": "November invoice"})]


@pytest.mark.parametrize("who", ["ana", "olga", "ali", None])
def test_only_admins_can_top_up(db, cast, who):
    acme = cast.ana.organization_id
    if who is None:  # no one acting: the owner connection, as a script would use it
        with pytest.raises(ActionRefused, match="Only admins can top up credits"):
            credits.top_up(db, acme, 100)
    else:
        with pytest.raises(ActionRefused, match="Only admins can top up credits"):
            with acting_as(db, getattr(cast, who)):
                credits.top_up(db, acme, 100)
    assert credits.balance(db, acme) == 1_000
    assert ledger_sum(db, acme, "top_up") == 0


@pytest.mark.parametrize("amount", [0, -5])
def test_a_top_up_must_add_credits(db, cast, amount):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="from 1 to"):
        with acting_as(db, cast.admin):
            credits.top_up(db, cast.ana.organization_id, amount)
    assert credits.balance(db, cast.ana.organization_id) == 1_000


# --- per-user limits ----------------------------------------------------------------------------------


def test_too_many_jobs_in_flight_is_refused_with_the_count_and_the_limit(db, cast):
    db.execute("INSERT INTO inkwell.user_limits VALUES (%s, 5, 100)", (cast.ana.id,))
    submit_as(db, cast.ana, topics(3))

    with pytest.raises(SubmitError) as over:
        submit_as(db, cast.ana, topics(3, "more"))
    assert str(over.value) == (
        "You have 3 jobs in flight and this adds 3; the limit is 5 — wait for some to finish, or submit at most 2."
    )
    submit_as(db, cast.ana, topics(2, "fits"))
    with pytest.raises(SubmitError) as full:
        submit_as(db, cast.ana, topics(1, "one more"))
    assert str(full.value) == "You have 5 jobs in flight; the limit is 5 — wait for some to finish."

    assert scalar(db, "SELECT count(*) FROM inkwell.requests") == 5
    assert credits.balance(db, cast.ana.organization_id) == 995, "refused submissions reserve nothing"
    submit_as(db, cast.bea, topics(3, "bea"))  # the limit is per user: a colleague still submits


def test_finished_jobs_no_longer_count_as_in_flight(db, cast, manager):
    db.execute("INSERT INTO inkwell.user_limits VALUES (%s, 2, 100)", (cast.ana.id,))
    first, _ = submit_as(db, cast.ana, topics(2))
    with acting_as(db, cast.ana):
        cancel_request(db, manager, first)
    submit_as(db, cast.ana, topics(1, "now it fits"))
    assert scalar(db, "SELECT count(*) FROM inkwell.requests WHERE status = 'queued'") == 2


def test_too_many_submissions_in_a_minute_is_refused(db, cast):
    db.execute("INSERT INTO inkwell.user_limits VALUES (%s, 100, 2)", (cast.ana.id,))
    submit_as(db, cast.ana, topics(1, "first"))
    submit_as(db, cast.ana, topics(1, "second"))

    with pytest.raises(SubmitError, match=r"^You made 2 submissions in the last minute; the limit is 2 — try again in \d+ s\.$"):
        submit_as(db, cast.ana, topics(1, "third"))
    assert scalar(db, "SELECT count(*) FROM inkwell.requests") == 2
    submit_as(db, cast.bea, topics(1, "bea's first"))


# --- tokens -------------------------------------------------------------------------------------------


def test_tokens_reported_by_the_model_are_stored_on_the_request(db, cast, start_worker):
    (request_id,) = submit_as(db, cast.ana, topics(1))
    start_worker()
    request = wait_for(lambda: (r := get_request(db, request_id)).is_finished and r, timeout=30)
    assert request.status == "succeeded"
    tokens = scalar(db, "SELECT tokens_used FROM inkwell.requests WHERE id = %s", request_id)
    assert tokens is not None and tokens > 0
    assert tokens == request.result["tokens_used"]
