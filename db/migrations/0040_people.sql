-- People: organizations, users with one role each, credit balances and their ledger, the audit log,
-- and who made each request.
--
-- The acting user is set per transaction by the data layer (`db/people.py`):
--     SELECT set_config('inkwell.user_id', '<users.id>', true)
-- Everything below that needs "who is acting" reads it through inkwell.acting_user_id(), so the
-- request rows of a signed-in submission get their user and organization without the insert
-- naming them. Row-level security (0041) is keyed by the same setting.

CREATE TABLE inkwell.organizations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    -- Credits the organization can still spend; reserved at submit, returned on failure/cancel.
    credit_balance  bigint NOT NULL DEFAULT 0 CHECK (credit_balance >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE inkwell.organizations IS 'Groups of users; requests and credits belong to an organization.';

CREATE TABLE inkwell.users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES inkwell.organizations (id),
    -- Sign-in name, stored lower-case.
    username         text NOT NULL UNIQUE CHECK (username = lower(username) AND length(username) BETWEEN 1 AND 100),
    display_name     text NOT NULL CHECK (length(btrim(display_name)) BETWEEN 1 AND 100),
    role             text NOT NULL CHECK (role IN ('editor', 'operator', 'analyst', 'admin')),
    -- argon2 hash; NULL for accounts that sign in only through OpenID Connect.
    password_hash    text,
    -- OpenID Connect issuer + subject, for accounts linked to an identity provider.
    oidc_issuer      text,
    oidc_subject     text,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (oidc_issuer, oidc_subject)
);
CREATE INDEX users_organization_idx ON inkwell.users (organization_id);
COMMENT ON TABLE inkwell.users IS 'Console accounts. Roles: editor, operator, analyst, admin.';
COMMENT ON COLUMN inkwell.users.password_hash IS 'argon2 hash; never readable by the analyst role.';

-- The acting user of the current transaction (NULL when none is set: workers, migrations).
CREATE FUNCTION inkwell.acting_user_id() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('inkwell.user_id', true), '')::bigint
$$;

-- SECURITY DEFINER so that row-level security on inkwell.users (0041) cannot hide the acting
-- user's own organization and role from the policies that need them.
CREATE FUNCTION inkwell.acting_organization_id() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT organization_id FROM inkwell.users WHERE id = inkwell.acting_user_id()
$$;

CREATE FUNCTION inkwell.acting_role() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT role FROM inkwell.users WHERE id = inkwell.acting_user_id() AND active
$$;

ALTER TABLE inkwell.requests
    ADD COLUMN user_id             bigint REFERENCES inkwell.users (id) DEFAULT inkwell.acting_user_id(),
    ADD COLUMN organization_id     bigint REFERENCES inkwell.organizations (id) DEFAULT inkwell.acting_organization_id(),
    -- Credits reserved when the request was submitted (the kind's cost).
    ADD COLUMN credits             integer NOT NULL DEFAULT 0 CHECK (credits >= 0),
    -- Set when the reservation went back to the organization (the request failed or was cancelled).
    ADD COLUMN credits_refunded_at timestamptz,
    -- Tokens the model reported for this request's answer (prompt + completion), when it reports them.
    ADD COLUMN tokens_used         integer CHECK (tokens_used >= 0);
COMMENT ON COLUMN inkwell.requests.user_id IS 'Signed-in user who submitted (NULL: submitted before sign-in existed, or by the system).';
COMMENT ON COLUMN inkwell.requests.credits IS 'Credits reserved at submit; the cost unless credits_refunded_at is set.';

-- Editors list their own and their organization's requests newest first.
CREATE INDEX requests_user_created_idx ON inkwell.requests (user_id, created_at DESC, id DESC);
CREATE INDEX requests_organization_created_idx ON inkwell.requests (organization_id, created_at DESC, id DESC);

-- Every change of an organization's balance, with its reason.
CREATE TABLE inkwell.credit_ledger (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES inkwell.organizations (id),
    request_id       uuid,
    delta            bigint NOT NULL,
    reason           text NOT NULL CHECK (reason IN ('top_up', 'reserve', 'refund', 'adjustment')),
    actor_user_id    bigint REFERENCES inkwell.users (id),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_ledger_organization_idx ON inkwell.credit_ledger (organization_id, created_at DESC);
CREATE INDEX credit_ledger_request_idx ON inkwell.credit_ledger (request_id) WHERE request_id IS NOT NULL;

-- Who submitted, cancelled, retried, paused, changed roles or credits, and when.
CREATE TABLE inkwell.audit_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    actor_user_id    bigint REFERENCES inkwell.users (id),
    -- The actor's name at the time (users can be renamed); 'system' for the workers.
    actor_name       text NOT NULL,
    action           text NOT NULL,
    organization_id  bigint REFERENCES inkwell.organizations (id),
    target_type      text,
    target_id        text,
    details          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON inkwell.audit_log (at DESC, id DESC);
CREATE INDEX audit_log_organization_idx ON inkwell.audit_log (organization_id, at DESC);

-- One audit entry by the acting user (or 'system' when none is set), in the caller's transaction.
CREATE FUNCTION inkwell.audit(p_action text, p_target_type text, p_target_id text, p_details jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    INSERT INTO inkwell.audit_log (actor_user_id, actor_name, action, organization_id, target_type, target_id, details)
    SELECT u.id, coalesce(u.username, 'system'), p_action, u.organization_id, p_target_type, p_target_id,
           coalesce(p_details, '{}'::jsonb)
      FROM (SELECT inkwell.acting_user_id() AS user_id) AS acting
      LEFT JOIN inkwell.users AS u ON u.id = acting.user_id
$$;
