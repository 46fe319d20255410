-- The HTTP API (api/): anonymous website-analysis visitors, idempotency keys, live change
-- notifications and completion webhooks. Every rule here is the database's, like the console's.

-- ---------------------------------------------------------------------------------------------
-- Anonymous visitors. A website analysis may be asked for without an account, by a visitor who
-- names a session id (the x-session-id header). The API acts for such a visitor as the role
-- inkwell_console with the sha256 of that id set for the transaction:
--     SELECT set_config('role', 'inkwell_console', true), set_config('inkwell.visitor_hash', '<hex>', true)
-- The request rows keep that hash (never the id itself); the policies below let a visitor read,
-- cancel and retry only the requests of the same id, and submit only website analyses. A
-- visitor has no user and no organization, so the credits triggers of 0045 charge nothing: the
-- per-id and per-address limits of inkwell.admit_visitor_submission are what bounds them.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION inkwell.acting_visitor_hash() RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT decode(nullif(current_setting('inkwell.visitor_hash', true), ''), 'hex')
$$;

ALTER TABLE inkwell.requests ADD COLUMN visitor_hash bytea DEFAULT inkwell.acting_visitor_hash();
COMMENT ON COLUMN inkwell.requests.visitor_hash IS
    'sha256 of the anonymous visitor''s session id (API website analyses without a token); NULL otherwise.';
CREATE INDEX requests_visitor_idx ON inkwell.requests (visitor_hash, created_at DESC) WHERE visitor_hash IS NOT NULL;

CREATE POLICY requests_visitor_read ON inkwell.requests FOR SELECT TO inkwell_console
USING (visitor_hash = (SELECT inkwell.acting_visitor_hash()));

CREATE POLICY requests_visitor_submit ON inkwell.requests FOR INSERT TO inkwell_console
WITH CHECK (
    kind = 'website_analysis' AND user_id IS NULL AND organization_id IS NULL
    AND visitor_hash = (SELECT inkwell.acting_visitor_hash())
);

CREATE POLICY requests_visitor_act ON inkwell.requests FOR UPDATE TO inkwell_console
USING (visitor_hash = (SELECT inkwell.acting_visitor_hash()))
WITH CHECK (status = 'queued' AND visitor_hash = (SELECT inkwell.acting_visitor_hash()));

CREATE POLICY jobs_visitor_read ON procrastinate_jobs FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_visitor_hash()) IS NOT NULL);

CREATE POLICY jobs_visitor_defer ON procrastinate_jobs FOR INSERT TO inkwell_console
WITH CHECK ((SELECT inkwell.acting_visitor_hash()) IS NOT NULL AND task_name = 'inkwell.analyse_website');

CREATE POLICY jobs_visitor_act ON procrastinate_jobs FOR UPDATE TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.requests AS r
                WHERE r.job_id = procrastinate_jobs.id AND r.visitor_hash = (SELECT inkwell.acting_visitor_hash())));

CREATE POLICY events_visitor_record ON procrastinate_events FOR INSERT TO inkwell_console
WITH CHECK ((SELECT inkwell.acting_visitor_hash()) IS NOT NULL);

-- Each visitor submission, for the per-id and per-address limits (hashes only; kept an hour).
CREATE TABLE inkwell.visitor_submissions (
    at            timestamptz NOT NULL DEFAULT now(),
    visitor_hash  bytea NOT NULL,
    address_hash  bytea NOT NULL
);
CREATE INDEX visitor_submissions_visitor_idx ON inkwell.visitor_submissions (visitor_hash, at);
CREATE INDEX visitor_submissions_address_idx ON inkwell.visitor_submissions (address_hash, at);
REVOKE ALL ON inkwell.visitor_submissions FROM PUBLIC;

-- Admit one submission of the acting visitor from this (hashed) client address, or refuse it with
-- IK005 and the seconds to wait: at most p_per_visitor a minute per session id and p_per_address
-- per address. Serialised per address, so concurrent submissions are counted one after the other.
CREATE FUNCTION inkwell.admit_visitor_submission(p_address_hash bytea, p_per_visitor integer, p_per_address integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    visitor bytea := inkwell.acting_visitor_hash();
    recent record;
BEGIN
    IF visitor IS NULL THEN
        RAISE EXCEPTION 'No visitor is acting.' USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(7415080, hashtext(encode(p_address_hash, 'hex')));
    PERFORM pg_advisory_xact_lock(7415081, hashtext(encode(visitor, 'hex')));
    DELETE FROM inkwell.visitor_submissions WHERE at < now() - interval '1 hour' AND address_hash = p_address_hash;
    SELECT count(*) AS n, min(at) AS oldest INTO recent
      FROM inkwell.visitor_submissions WHERE visitor_hash = visitor AND at > clock_timestamp() - interval '1 minute';
    IF recent.n >= p_per_visitor THEN
        RAISE EXCEPTION USING ERRCODE = 'IK005',
            MESSAGE = format('This session made %s submissions in the last minute; the limit is %s — try again in %s s.',
                             recent.n, p_per_visitor,
                             greatest(1, ceil(extract(epoch FROM recent.oldest + interval '1 minute' - clock_timestamp())))::bigint);
    END IF;
    SELECT count(*) AS n, min(at) AS oldest INTO recent
      FROM inkwell.visitor_submissions WHERE address_hash = p_address_hash AND at > clock_timestamp() - interval '1 minute';
    IF recent.n >= p_per_address THEN
        RAISE EXCEPTION USING ERRCODE = 'IK005',
            MESSAGE = format('Too many anonymous submissions from your address in the last minute (limit %s) — try again in %s s.',
                             p_per_address,
                             greatest(1, ceil(extract(epoch FROM recent.oldest + interval '1 minute' - clock_timestamp())))::bigint);
    END IF;
    INSERT INTO inkwell.visitor_submissions (visitor_hash, address_hash) VALUES (visitor, p_address_hash);
END;
$$;
REVOKE EXECUTE ON FUNCTION inkwell.admit_visitor_submission(bytea, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.admit_visitor_submission(bytea, integer, integer) TO inkwell_console;

-- ---------------------------------------------------------------------------------------------
-- Idempotency keys: a create with an Idempotency-Key header answers the same job for the same key
-- and body, once per owner (a user, or a visitor) and 24 hours. The key's row is inserted first in
-- the submission's transaction; a concurrent create with the same key waits on that insert (the
-- primary key) and then reads the answer the first one committed, so one key makes one job and
-- one charge however many creates race.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION inkwell.acting_idempotency_owner() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce('user:' || inkwell.acting_user_id(), 'visitor:' || encode(inkwell.acting_visitor_hash(), 'hex'))
$$;

CREATE TABLE inkwell.idempotency_keys (
    owner       text NOT NULL DEFAULT inkwell.acting_idempotency_owner(),
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- sha256 of the endpoint and the body as received: the same key with another body is refused.
    body_hash   bytea NOT NULL,
    -- What the create answered (the document the API sends back); NULL only inside the first
    -- create's transaction, which no one else can see.
    response    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_idx ON inkwell.idempotency_keys (created_at);
COMMENT ON TABLE inkwell.idempotency_keys IS 'Idempotency-Key headers of API creates, per owner, for 24 hours.';

ALTER TABLE inkwell.idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_own ON inkwell.idempotency_keys FOR ALL TO inkwell_console
USING (owner = (SELECT inkwell.acting_idempotency_owner()))
WITH CHECK (owner = (SELECT inkwell.acting_idempotency_owner()));
GRANT SELECT, INSERT, DELETE ON inkwell.idempotency_keys TO inkwell_console;
GRANT UPDATE (response) ON inkwell.idempotency_keys TO inkwell_console;

-- ---------------------------------------------------------------------------------------------
-- Live changes. Every change of what a request's watcher sees (status, progress, step, time
-- left, streamed text) sends its id on one channel; each API process LISTENs once and fans the
-- change out to the event streams that follow that request (api/events.py). NOTIFY is sent at
-- commit, so no stream sees a change that is rolled back.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION inkwell.notify_request_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('inkwell_request_changes', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_notify_request_change
    AFTER UPDATE ON inkwell.requests
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.progress IS DISTINCT FROM NEW.progress
          OR OLD.current_step IS DISTINCT FROM NEW.current_step
          OR OLD.eta_seconds IS DISTINCT FROM NEW.eta_seconds
          OR OLD.partial_text IS DISTINCT FROM NEW.partial_text
          OR OLD.result IS DISTINCT FROM NEW.result)
    EXECUTE FUNCTION inkwell.notify_request_change();

-- ---------------------------------------------------------------------------------------------
-- Completion webhooks: a create may name a callback URL; when its request reaches a terminal
-- state, a delivery job (inkwell.deliver_webhook, queue_tasks/webhooks.py) is deferred in the same
-- transaction, so no terminal state is ever missed. Each attempt is recorded.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE inkwell.request_callbacks (
    request_id  uuid PRIMARY KEY REFERENCES inkwell.requests (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    user_id     bigint NOT NULL REFERENCES inkwell.users (id) DEFAULT inkwell.acting_user_id(),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Each user's signing secret ("whsec_" and base64 of 32 random bytes, the Standard Webhooks form).
CREATE TABLE inkwell.webhook_secrets (
    user_id     bigint PRIMARY KEY REFERENCES inkwell.users (id),
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON inkwell.webhook_secrets FROM PUBLIC;

CREATE TABLE inkwell.webhook_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id   uuid NOT NULL REFERENCES inkwell.requests (id) ON DELETE CASCADE,
    -- The message id (webhook-id header): the same for every attempt of one delivery.
    webhook_id   text NOT NULL,
    attempt      integer NOT NULL,
    url          text NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  integer,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_request_idx ON inkwell.webhook_deliveries (request_id, id);

CREATE FUNCTION inkwell.defer_webhook_delivery() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inkwell.request_callbacks WHERE request_id = NEW.id) THEN
        PERFORM procrastinate_defer_jobs_v1(ARRAY[
            ROW(NEW.queue_name, 'inkwell.deliver_webhook', 0, NULL, NULL,
                jsonb_build_object('request_id', NEW.id::text, 'webhook_id', 'msg_' || replace(gen_random_uuid()::text, '-', '')),
                NULL)::procrastinate_job_to_defer_v1]);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_defer_webhook_delivery
    AFTER UPDATE OF status ON inkwell.requests
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('succeeded', 'failed', 'cancelled'))
    EXECUTE FUNCTION inkwell.defer_webhook_delivery();

ALTER TABLE inkwell.request_callbacks ENABLE ROW LEVEL SECURITY;
CREATE POLICY request_callbacks_read ON inkwell.request_callbacks FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.id = request_callbacks.request_id));
CREATE POLICY request_callbacks_add ON inkwell.request_callbacks FOR INSERT TO inkwell_console
WITH CHECK (user_id = (SELECT inkwell.acting_user_id())
            AND EXISTS (SELECT 1 FROM inkwell.requests AS r
                         WHERE r.id = request_callbacks.request_id AND r.user_id = (SELECT inkwell.acting_user_id())));
GRANT SELECT, INSERT ON inkwell.request_callbacks TO inkwell_console;

ALTER TABLE inkwell.webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_read ON inkwell.webhook_deliveries FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.id = webhook_deliveries.request_id));
GRANT SELECT ON inkwell.webhook_deliveries TO inkwell_console;

-- The acting user's signing secret, made on first use. The secret is the caller's to choose (made
-- with a CSPRNG in db/webhooks.py); an existing one is kept.
CREATE FUNCTION inkwell.webhook_secret(p_new_secret text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    acting bigint := inkwell.acting_user_id();
    found_secret text;
BEGIN
    IF acting IS NULL THEN
        RAISE EXCEPTION 'Only a signed-in user has a webhook secret.' USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO inkwell.webhook_secrets (user_id, secret) VALUES (acting, p_new_secret) ON CONFLICT (user_id) DO NOTHING;
    SELECT secret INTO found_secret FROM inkwell.webhook_secrets WHERE user_id = acting;
    RETURN found_secret;
END;
$$;
REVOKE EXECUTE ON FUNCTION inkwell.webhook_secret(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.webhook_secret(text) TO inkwell_console;
