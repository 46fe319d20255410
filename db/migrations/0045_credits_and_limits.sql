-- Credits, per-user limits and fair sharing (issue 7), enforced by the database in the submit
-- transaction, whoever inserts requests (submit, site builds, promotions, COPY, psql).
--
-- * Each kind has a price (inkwell.kind_costs). A request of an organization (its submitter was
--   signed in: 0040 fills user_id / organization_id from the acting user) gets its price in
--   `credits` (BEFORE INSERT, per row) and the organization pays for the whole statement at once
--   (AFTER INSERT, per statement, transition table): one conditional UPDATE per organization,
--   `credit_balance >= needed`, so concurrent submissions can never overspend; short, the
--   statement fails with SQLSTATE IK001 and nothing is queued. A request with no organization
--   (workers, scripts, submissions from before sign-in existed) costs nothing.
-- * A request that fails or is cancelled gets its credits back, once (credits_refunded_at); a
--   retry of it pays again.
-- * Per user: jobs in flight (scheduled, queued or running) and submissions per minute are capped
--   (inkwell.user_limits), checked in the same statement trigger under a per-user lock.
-- * Each submission (one transaction) writes one 'request.submitted' audit entry with its counts.
-- * inkwell.fair_share_priority() gives the Procrastinate priority a submission's jobs are
--   deferred with (queue_tasks/enqueue.py).
--
-- SQLSTATEs raised here (class IK, "Inkwell"; db/credits.py turns them into messages):
--   IK001 not enough credits, IK002 too many jobs in flight, IK003 too many submissions in the
--   last minute, IK004 the kind has no price.

-- --- Prices ---------------------------------------------------------------------------------------

CREATE TABLE inkwell.kind_costs (
    kind        text PRIMARY KEY,
    credits     integer NOT NULL CHECK (credits >= 0),
    description text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE inkwell.kind_costs IS
    'Credits one request of each kind costs; reserved at submit, returned if it fails or is cancelled.';

-- One row per kind in queue_tasks/submit.py JOB_KINDS (a test checks that every kind has one).
INSERT INTO inkwell.kind_costs (kind, credits, description) VALUES
    ('titles',           1, 'One model call.'),
    ('website_analysis', 3, 'A page fetch and one model call.'),
    ('site_section',     2, 'One model call per route × section of a site build.'),
    ('blog_post',       10, 'Outline, 3–6 sections and a polish: up to eight model calls.'),
    ('post_image',       5, 'One images API call. Paid with the blog post that asks for it (include visuals): '
                            'the image request itself is queued by the worker and reserves nothing.'),
    ('site_promotion',   0, 'Copies content between environments; no model call.');

ALTER TABLE inkwell.credit_ledger ADD COLUMN note text CHECK (length(note) <= 200);

-- The price of a new request of an organization. The worker queues a blog post's image with no
-- acting user (so no organization): the blog post pays for it when it is submitted, while the
-- organization can still be told it is short.
CREATE FUNCTION inkwell.price_new_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    price integer;
BEGIN
    SELECT c.credits INTO price FROM inkwell.kind_costs AS c WHERE c.kind = NEW.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'IK004',
            MESSAGE = format('%s requests have no price yet; ask an admin to set one (inkwell.kind_costs).', NEW.kind);
    END IF;
    IF NEW.kind = 'blog_post' AND NEW.input->>'include_visuals' = 'true' THEN
        price := price + coalesce((SELECT c.credits FROM inkwell.kind_costs AS c WHERE c.kind = 'post_image'), 0);
    END IF;
    NEW.credits := price;
    NEW.credits_refunded_at := NULL;
    RETURN NEW;
END;
$$;

CREATE TRIGGER inkwell_price_new_request
    BEFORE INSERT ON inkwell.requests
    FOR EACH ROW
    WHEN (NEW.organization_id IS NOT NULL)
    EXECUTE FUNCTION inkwell.price_new_request();

-- --- Per-user limits ------------------------------------------------------------------------------

CREATE TABLE inkwell.user_limits (
    -- NULL: the default for every user without a row of their own.
    user_id                    bigint UNIQUE REFERENCES inkwell.users (id) ON DELETE CASCADE,
    max_jobs_in_flight         integer NOT NULL CHECK (max_jobs_in_flight > 0),
    max_submissions_per_minute integer NOT NULL CHECK (max_submissions_per_minute > 0)
);
CREATE UNIQUE INDEX user_limits_one_default_idx ON inkwell.user_limits ((true)) WHERE user_id IS NULL;
COMMENT ON TABLE inkwell.user_limits IS
    'Per-user caps on jobs in flight (scheduled, queued or running) and on submissions per minute; the row with user_id NULL is the default.';
-- Room for two 5,000-topic uploads; a person does not submit more than 30 times a minute.
INSERT INTO inkwell.user_limits (user_id, max_jobs_in_flight, max_submissions_per_minute) VALUES (NULL, 10000, 30);

-- A submitter's unfinished requests: counted for the in-flight limit and the fair-share priority.
CREATE INDEX requests_unfinished_by_submitter_idx ON inkwell.requests (user_id, requested_by)
    WHERE status IN ('scheduled', 'queued', 'running');
-- A user's submissions of the last minute.
CREATE INDEX audit_log_submissions_idx ON inkwell.audit_log (actor_user_id, at) WHERE action = 'request.submitted';

-- --- Admission: limits, reservation, audit (one statement at a time) ------------------------------

CREATE FUNCTION inkwell.admit_new_requests() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    -- What earlier statements of this transaction (the same submission) already admitted:
    -- {"audit_id", "requests", "credits"}; a submission written in several statements (COPY in
    -- chunks) is one audit entry and one figure in the messages.
    earlier     jsonb := nullif(current_setting('inkwell.submission', true), '')::jsonb;
    acting_org  bigint := inkwell.acting_organization_id();
    this_count  bigint;
    this_credits bigint;
    kinds       jsonb;
    submitter   record;
    payer       record;
    limits      record;
    in_flight   bigint;
    before_this bigint;
    recent      record;
    org_name    text;
    left_over   bigint;
    already     bigint;
    audit_id    bigint;
BEGIN
    SELECT count(*), coalesce(sum(credits) FILTER (WHERE organization_id IS NOT NULL), 0)
      INTO this_count, this_credits
      FROM new_requests;
    IF this_count = 0 THEN
        RETURN NULL;
    END IF;

    FOR submitter IN
        SELECT user_id, count(*) AS requests FROM new_requests WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY user_id
    LOOP
        -- One submission per user at a time from here to commit: the counts below then see every
        -- earlier submission of theirs, committed.
        PERFORM pg_advisory_xact_lock(7415045, hashint8(submitter.user_id));
        SELECT l.max_jobs_in_flight, l.max_submissions_per_minute INTO limits
          FROM inkwell.user_limits AS l
         WHERE l.user_id = submitter.user_id OR l.user_id IS NULL
         ORDER BY l.user_id NULLS LAST
         LIMIT 1;
        IF NOT FOUND THEN
            CONTINUE;  -- no default row: no limits
        END IF;

        SELECT count(*) INTO in_flight
          FROM inkwell.requests AS r
         WHERE r.user_id = submitter.user_id AND r.status IN ('scheduled', 'queued', 'running');
        IF in_flight > limits.max_jobs_in_flight THEN
            already := CASE WHEN earlier IS NOT NULL THEN (earlier->>'requests')::bigint ELSE 0 END;
            before_this := greatest(in_flight - submitter.requests - already, 0);
            IF before_this >= limits.max_jobs_in_flight THEN
                RAISE EXCEPTION USING ERRCODE = 'IK002',
                    MESSAGE = format('You have %s jobs in flight; the limit is %s — wait for some to finish.',
                                     to_char(before_this, 'FM999,999,999,990'), to_char(limits.max_jobs_in_flight, 'FM999,999,999,990'));
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'IK002',
                MESSAGE = format('You have %s jobs in flight and this adds %s; the limit is %s — wait for some to finish, or submit at most %s.',
                                 to_char(before_this, 'FM999,999,999,990'), to_char(submitter.requests + already, 'FM999,999,999,990'),
                                 to_char(limits.max_jobs_in_flight, 'FM999,999,999,990'),
                                 to_char(limits.max_jobs_in_flight - before_this, 'FM999,999,999,990'));
        END IF;

        IF earlier IS NULL THEN  -- the first statement of this submission
            SELECT count(*) AS submissions, min(a.at) AS oldest INTO recent
              FROM inkwell.audit_log AS a
             WHERE a.actor_user_id = submitter.user_id AND a.action = 'request.submitted'
               AND a.at > clock_timestamp() - interval '1 minute';
            IF recent.submissions >= limits.max_submissions_per_minute THEN
                RAISE EXCEPTION USING ERRCODE = 'IK003',
                    MESSAGE = format('You made %s submissions in the last minute; the limit is %s — try again in %s s.',
                                     recent.submissions, limits.max_submissions_per_minute,
                                     greatest(1, ceil(extract(epoch FROM recent.oldest + interval '1 minute' - clock_timestamp())))::bigint);
            END IF;
        END IF;
    END LOOP;

    FOR payer IN
        SELECT organization_id, sum(credits) AS credits
          FROM new_requests
         WHERE organization_id IS NOT NULL
         GROUP BY organization_id
        HAVING sum(credits) > 0
         ORDER BY organization_id
    LOOP
        UPDATE inkwell.organizations
           SET credit_balance = credit_balance - payer.credits
         WHERE id = payer.organization_id AND credit_balance >= payer.credits;
        IF NOT FOUND THEN
            SELECT o.name, o.credit_balance INTO org_name, left_over FROM inkwell.organizations AS o WHERE o.id = payer.organization_id;
            -- Say what the whole submission needs, and what was left before it.
            already := CASE WHEN earlier IS NOT NULL AND payer.organization_id = acting_org
                            THEN (earlier->>'credits')::bigint ELSE 0 END;
            RAISE EXCEPTION USING ERRCODE = 'IK001',
                MESSAGE = format('Not enough credits: this needs %s, %s has %s left.',
                                 to_char(payer.credits + already, 'FM999,999,999,990'), org_name,
                                 to_char(left_over + already, 'FM999,999,999,990')),
                HINT = 'Ask an admin to top up, or submit fewer requests.';
        END IF;
    END LOOP;

    INSERT INTO inkwell.credit_ledger (organization_id, request_id, delta, reason, actor_user_id)
    SELECT organization_id, id, -credits, 'reserve', user_id
      FROM new_requests
     WHERE organization_id IS NOT NULL AND credits > 0;

    SELECT jsonb_object_agg(kind, n) INTO kinds FROM (SELECT kind, count(*) AS n FROM new_requests GROUP BY kind) AS k;
    IF earlier IS NULL THEN
        PERFORM inkwell.audit(
            'request.submitted',
            'request',
            CASE WHEN this_count = 1 THEN (SELECT id::text FROM new_requests) END,  -- many: see details
            jsonb_build_object('requests', this_count, 'credits', this_credits, 'kinds', kinds)
        );
        audit_id := currval(pg_get_serial_sequence('inkwell.audit_log', 'id'));
        earlier := jsonb_build_object('audit_id', audit_id, 'requests', 0, 'credits', 0);
    ELSE
        audit_id := (earlier->>'audit_id')::bigint;
        UPDATE inkwell.audit_log AS a
           SET target_id = NULL,
               details = a.details || jsonb_build_object(
                   'requests', (earlier->>'requests')::bigint + this_count,
                   'credits', (earlier->>'credits')::bigint + this_credits,
                   'kinds', (SELECT jsonb_object_agg(key, total)
                               FROM (SELECT key, sum(value::bigint) AS total
                                       FROM (SELECT * FROM jsonb_each_text(a.details->'kinds')
                                             UNION ALL SELECT * FROM jsonb_each_text(kinds)) AS both_
                                      GROUP BY key) AS summed))
         WHERE a.id = audit_id;
    END IF;
    PERFORM set_config('inkwell.submission', jsonb_build_object(
        'audit_id', audit_id,
        'requests', (earlier->>'requests')::bigint + this_count,
        'credits', (earlier->>'credits')::bigint + this_credits)::text, true);
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_admit_new_requests
    AFTER INSERT ON inkwell.requests
    REFERENCING NEW TABLE AS new_requests
    FOR EACH STATEMENT
    EXECUTE FUNCTION inkwell.admit_new_requests();

-- --- Refund on failure or cancel; a retry pays again ----------------------------------------------

CREATE FUNCTION inkwell.settle_request_credits() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    org_name  text;
    left_over bigint;
BEGIN
    IF NEW.status IN ('failed', 'cancelled') THEN
        IF NEW.credits_refunded_at IS NULL THEN
            UPDATE inkwell.organizations SET credit_balance = credit_balance + NEW.credits WHERE id = NEW.organization_id;
            INSERT INTO inkwell.credit_ledger (organization_id, request_id, delta, reason, actor_user_id)
            VALUES (NEW.organization_id, NEW.id, NEW.credits, 'refund', inkwell.acting_user_id());
            NEW.credits_refunded_at := now();
        END IF;
    ELSIF NEW.credits_refunded_at IS NOT NULL THEN
        -- A failed or cancelled request runs again (retry): it is paid for again, at its own price.
        UPDATE inkwell.organizations
           SET credit_balance = credit_balance - NEW.credits
         WHERE id = NEW.organization_id AND credit_balance >= NEW.credits;
        IF NOT FOUND THEN
            SELECT o.name, o.credit_balance INTO org_name, left_over FROM inkwell.organizations AS o WHERE o.id = NEW.organization_id;
            RAISE EXCEPTION USING ERRCODE = 'IK001',
                MESSAGE = format('Not enough credits: this needs %s, %s has %s left.',
                                 to_char(NEW.credits, 'FM999,999,999,990'), org_name, to_char(left_over, 'FM999,999,999,990')),
                HINT = 'Ask an admin to top up.';
        END IF;
        INSERT INTO inkwell.credit_ledger (organization_id, request_id, delta, reason, actor_user_id)
        VALUES (NEW.organization_id, NEW.id, -NEW.credits, 'reserve', inkwell.acting_user_id());
        NEW.credits_refunded_at := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER inkwell_settle_request_credits
    BEFORE UPDATE OF status ON inkwell.requests
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.organization_id IS NOT NULL AND NEW.credits > 0
          AND (NEW.status IN ('failed', 'cancelled') OR OLD.status IN ('failed', 'cancelled')))
    EXECUTE FUNCTION inkwell.settle_request_credits();

-- --- Top up (admins only) -------------------------------------------------------------------------

CREATE FUNCTION inkwell.top_up_credits(p_organization_id bigint, p_credits bigint, p_note text DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE
    new_balance bigint;
BEGIN
    PERFORM inkwell.require_admin('top up credits');  -- 0042: insufficient_privilege otherwise
    IF p_credits IS NULL OR p_credits < 1 OR p_credits > 1000000000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'Top up by a whole number of credits from 1 to 1,000,000,000.';
    END IF;
    UPDATE inkwell.organizations SET credit_balance = credit_balance + p_credits
     WHERE id = p_organization_id
    RETURNING credit_balance INTO new_balance;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found', MESSAGE = format('No organization %s.', p_organization_id);
    END IF;
    INSERT INTO inkwell.credit_ledger (organization_id, request_id, delta, reason, actor_user_id, note)
    VALUES (p_organization_id, NULL, p_credits, 'top_up', inkwell.acting_user_id(), nullif(btrim(p_note), ''));
    PERFORM inkwell.audit('credits.topped_up', 'organization', p_organization_id::text,
                          jsonb_strip_nulls(jsonb_build_object('credits', p_credits, 'balance', new_balance,
                                                               'note', nullif(btrim(p_note), ''))));
    RETURN new_balance;
END;
$$;
COMMENT ON FUNCTION inkwell.top_up_credits(bigint, bigint, text) IS
    'Adds credits to an organization (admins only); returns the new balance. Ledger and audit entries in the same transaction.';

-- --- Fair sharing ---------------------------------------------------------------------------------

-- The priority for the jobs of a new submission of p_new_requests requests. Procrastinate takes
-- jobs by priority DESC, id ASC; this is
--     -(the submitter's unfinished requests + this submission's size) - (seconds since 2026-01-01)
-- so a small submission, or one from a user with a short backlog, goes before a long backlog;
-- two equal backlogs stay in submission order; and a request waits at most as many seconds as
-- the backlog it is behind is long, before newcomers stop overtaking it (no one starves).
-- The submitter is the acting user, or (no one signed in) the requester's name.
CREATE FUNCTION inkwell.fair_share_priority(p_new_requests integer, p_requested_by text) RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT (-least(
               backlog + greatest(p_new_requests, 0)
               + floor(extract(epoch FROM clock_timestamp() - timestamptz '2026-01-01 00:00:00+00'))::bigint,
               2147483647))::integer
      FROM (SELECT CASE WHEN inkwell.acting_user_id() IS NOT NULL
                        THEN (SELECT count(*) FROM inkwell.requests AS r
                               WHERE r.user_id = inkwell.acting_user_id() AND r.status IN ('scheduled', 'queued', 'running'))
                        ELSE (SELECT count(*) FROM inkwell.requests AS r
                               WHERE r.user_id IS NULL AND r.requested_by = p_requested_by
                                 AND r.status IN ('scheduled', 'queued', 'running'))
                   END AS backlog) AS b
$$;

-- The console (inkwell_console, 0041) submits and tops up through these; workers run as the owner.
REVOKE EXECUTE ON FUNCTION inkwell.top_up_credits(bigint, bigint, text), inkwell.fair_share_priority(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.top_up_credits(bigint, bigint, text), inkwell.fair_share_priority(integer, text) TO inkwell_console;
GRANT SELECT ON inkwell.kind_costs, inkwell.user_limits TO inkwell_console;
