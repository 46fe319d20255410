-- Sessions: the identity the database trusts is a secret, not a number.
--
-- Until now row-level security keyed on `inkwell.user_id`, a number any SQL on the console's
-- connection could set. Now a signed-in person (or an API client) holds a random token; the
-- database keeps only its sha256 here, with its expiry, and the acting user of a transaction is
-- the user of the live session whose token the transaction names:
--     SELECT set_config('role', 'inkwell_console', true), set_config('inkwell.session_token', '<raw token>', true)
-- inkwell.acting_user_id() (and so acting_role() and acting_organization_id(), and every policy
-- of 0041) resolves that token through this table with the owner's rights. A made-up token, a
-- revoked or expired session, or an inactive account is nobody. Setting inkwell.user_id does
-- nothing any more.
--
-- Sign-out ends a session; a password reset, a role change and a deactivation end all of the
-- account's sessions (a deferred trigger, so the audit entry of the change is still written by
-- the admin who made it, even when they changed their own account).

CREATE TABLE inkwell.sessions (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES inkwell.users (id),
    -- sha256 of the raw token's UTF-8 bytes: the token itself is never stored.
    token_hash   bytea NOT NULL UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('console', 'api')),
    -- An API token's name (what it is for).
    name         text NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NULL,
    last_used_at timestamptz NULL,
    revoked_at   timestamptz NULL
);
CREATE INDEX sessions_live_by_user_idx ON inkwell.sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE inkwell.sessions IS
    'Console sign-ins and API tokens (sha256 of the token only). Read and written by the owner and SECURITY DEFINER functions only.';

REVOKE ALL ON inkwell.sessions FROM PUBLIC;
REVOKE ALL ON SEQUENCE inkwell.sessions_id_seq FROM PUBLIC;

-- The user of the transaction's live session, or NULL. STABLE: evaluated once per statement by the
-- policies (they call it through a scalar subquery).
CREATE OR REPLACE FUNCTION inkwell.acting_user_id() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT s.user_id
      FROM inkwell.sessions AS s
      JOIN inkwell.users AS u ON u.id = s.user_id
     WHERE s.token_hash = sha256(convert_to(nullif(current_setting('inkwell.session_token', true), ''), 'UTF8'))
       AND s.revoked_at IS NULL
       AND (s.expires_at IS NULL OR s.expires_at > now())
       AND u.active
$$;

-- A new session for p_user_id with the sha256 of a token the caller generated. Allowed to whoever
-- may write inkwell.sessions directly (the owner: sign-in, scripts), and to an acting user for
-- themselves (an API token made while signed in). Anyone else is refused.
CREATE FUNCTION inkwell.start_session(
    p_user_id bigint, p_token_hash bytea, p_kind text, p_name text, p_expires_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    new_id bigint;
    caller name;
BEGIN
    -- The caller's role: the login role, or the one it switched to (SET ROLE) when it did.
    caller := CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role') END;
    IF NOT has_table_privilege(caller, 'inkwell.sessions', 'INSERT')
       AND p_user_id IS DISTINCT FROM inkwell.acting_user_id() THEN
        RAISE EXCEPTION 'A session can be started only by signing in.' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF length(p_token_hash) <> 32 THEN
        RAISE EXCEPTION 'A session token hash is 32 bytes (sha256).' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO inkwell.sessions (user_id, token_hash, kind, name, expires_at)
    VALUES (p_user_id, p_token_hash, p_kind, p_name, p_expires_at)
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

-- Ends the session of this token (whoever knows a token may end it). False: none was live.
CREATE FUNCTION inkwell.end_session(p_token_hash bytea) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    WITH ended AS (
        UPDATE inkwell.sessions SET revoked_at = now()
         WHERE token_hash = p_token_hash AND revoked_at IS NULL
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM ended)
$$;

-- The acting session is in use: records it (at most once a minute, to spare writes) and returns
-- its user, or NULL when there is no live session.
CREATE FUNCTION inkwell.touch_session() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    WITH acting AS (SELECT inkwell.acting_user_id() AS user_id),
    touched AS (
        UPDATE inkwell.sessions SET last_used_at = now()
         WHERE token_hash = sha256(convert_to(nullif(current_setting('inkwell.session_token', true), ''), 'UTF8'))
           AND (SELECT user_id FROM acting) IS NOT NULL
           AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
        RETURNING 1)
    SELECT user_id FROM acting
$$;

-- Every live session of the account ends when its password, role or activity changes.
CREATE FUNCTION inkwell.end_sessions_of_changed_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    UPDATE inkwell.sessions SET revoked_at = now() WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END;
$$;

-- Deferred to the end of the transaction: the admin function that made the change writes its
-- audit entry first, still as its (possibly now ended) acting admin.
CREATE CONSTRAINT TRIGGER users_changed_end_sessions
AFTER UPDATE ON inkwell.users
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (OLD.role IS DISTINCT FROM NEW.role
      OR OLD.active IS DISTINCT FROM NEW.active
      OR (OLD.password_hash IS DISTINCT FROM NEW.password_hash
          AND coalesce(current_setting('inkwell.rehashing_password', true), '') <> 'on'))
EXECUTE FUNCTION inkwell.end_sessions_of_changed_user();

REVOKE EXECUTE ON FUNCTION inkwell.end_sessions_of_changed_user() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION inkwell.start_session(bigint, bytea, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.start_session(bigint, bytea, text, text, timestamptz) TO inkwell_console;
