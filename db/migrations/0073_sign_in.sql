-- Sign-in for a console that cannot read password hashes, resisting guessing.
--
-- The console logs in as inkwell_console, which can read no password hash and start no session
-- for anyone else (0070). To sign someone in it asks the database for the argon2 settings of the
-- account (algorithm, cost and salt: not secret), computes the hash of the password typed with
-- them (db/people.py, sign_in) and hands over only that hash's digest part. The database compares
-- it with the stored one and, when they match, starts the session with the token hash given. So
-- whoever runs SQL on the console's connection still needs the password (or the stored hash, which
-- it cannot read) to become anyone.
--
-- Throttling, per account (the username tried, known or not) and per client address:
--   * failures within THROTTLE_WINDOW (15 min) are counted; older ones are forgotten;
--   * from the 3rd failure on, the next try must wait 2^(failures − 3) s (1, 2, 4, … up to 60 s);
--     an earlier one is refused without computing any hash;
--   * at 10 failures of an account, or 50 from one address, it is locked for 15 minutes.
-- A success resets the account's count (not the address's: one valid account must not reset a
-- guesser's count). Failed, refused and locked sign-ins are written to the audit log.

CREATE TABLE inkwell.sign_in_throttle (
    scope            text NOT NULL CHECK (scope IN ('account', 'address')),
    key              text NOT NULL,
    failures         integer NOT NULL DEFAULT 0,
    last_failure_at  timestamptz,
    locked_until     timestamptz,
    PRIMARY KEY (scope, key)
);
REVOKE ALL ON inkwell.sign_in_throttle FROM PUBLIC;
COMMENT ON TABLE inkwell.sign_in_throttle IS 'Failed sign-ins per account and per client address (0073); owner and SECURITY DEFINER functions only.';

-- A per-database secret: unknown usernames get a salt derived from it, the same on every try, so
-- the settings returned do not tell which usernames exist.
CREATE TABLE inkwell.sign_in_secret (secret bytea NOT NULL);
INSERT INTO inkwell.sign_in_secret
SELECT sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8'));
REVOKE ALL ON inkwell.sign_in_secret FROM PUBLIC;
-- (0071's default privileges would give the workers these two tables.)
REVOKE ALL ON inkwell.sign_in_throttle, inkwell.sign_in_secret FROM inkwell_worker;

-- Seconds this scope/key must still wait (0: may try now).
CREATE FUNCTION inkwell.sign_in_wait(p_scope text, p_key text) RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT coalesce(max(greatest(
               extract(epoch FROM t.locked_until - now()),
               CASE WHEN t.failures >= 3
                    THEN extract(epoch FROM t.last_failure_at + least(power(2, t.failures - 3), 60) * interval '1 second' - now())
                    ELSE 0 END,
               0)), 0)::double precision
      FROM inkwell.sign_in_throttle AS t
     WHERE t.scope = p_scope AND t.key = p_key
       AND (t.last_failure_at > now() - interval '15 minutes' OR t.locked_until > now())
$$;

CREATE FUNCTION inkwell.record_sign_in_failure(p_scope text, p_key text, p_lock_at integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    count integer;
BEGIN
    INSERT INTO inkwell.sign_in_throttle AS t (scope, key, failures, last_failure_at)
    VALUES (p_scope, p_key, 1, now())
    ON CONFLICT (scope, key) DO UPDATE
       SET failures = CASE WHEN t.last_failure_at > now() - interval '15 minutes' THEN t.failures + 1 ELSE 1 END,
           last_failure_at = now()
    RETURNING failures INTO count;
    IF count >= p_lock_at THEN
        UPDATE inkwell.sign_in_throttle SET locked_until = now() + interval '15 minutes', failures = 0
         WHERE scope = p_scope AND key = p_key;
    END IF;
    RETURN count;
END;
$$;

CREATE FUNCTION inkwell.audit_sign_in(p_action text, p_username text, p_address text, p_user_id bigint, p_details jsonb)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    INSERT INTO inkwell.audit_log (actor_user_id, actor_name, action, organization_id, target_type, target_id, details)
    SELECT p_user_id, 'sign-in', p_action, (SELECT organization_id FROM inkwell.users WHERE id = p_user_id),
           'user', coalesce(p_user_id::text, left(p_username, 100)),
           jsonb_strip_nulls(jsonb_build_object('username', left(p_username, 100), 'address', p_address)) || p_details
$$;

-- The wait before this username may try again from this address (0: now), and the account's argon2
-- settings: "$argon2id$v=19$m=…,t=…,p=…$<salt>" and the length of its hash part (base64 characters).
CREATE FUNCTION inkwell.sign_in_challenge(p_username text, p_address text)
RETURNS TABLE (wait_seconds double precision, settings text, hash_chars integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    stored text;
    wait double precision;
BEGIN
    wait := greatest(inkwell.sign_in_wait('account', p_username),
                     CASE WHEN p_address IS NULL THEN 0 ELSE inkwell.sign_in_wait('address', p_address) END);
    IF wait > 0 THEN
        RETURN QUERY SELECT wait, NULL::text, NULL::integer;
        RETURN;
    END IF;
    SELECT u.password_hash INTO stored FROM inkwell.users AS u WHERE u.username = p_username;
    IF stored IS NULL OR stored !~ '^\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$' THEN
        -- Unknown username, or an account without a password: settings that look the same.
        stored := '$argon2id$v=19$m=65536,t=3,p=4$'
                  || rtrim(encode(substring(sha256((SELECT secret FROM inkwell.sign_in_secret LIMIT 1)
                                                   || convert_to(p_username, 'UTF8')) FROM 1 FOR 16), 'base64'), '=')
                  || '$' || repeat('A', 43);
    END IF;
    RETURN QUERY SELECT 0::double precision,
                        array_to_string((string_to_array(stored, '$'))[1:5], '$'),
                        length(split_part(stored, '$', 6));
END;
$$;

-- Signs in: compares the hash part computed from the typed password with the stored one; on a
-- match starts a console session with p_token_hash (and stores p_new_password_hash, when given,
-- in place of a hash made with older settings) and returns the user's id; else NULL, counted.
-- Refused while throttled (SQLSTATE IK010, with the seconds to wait in the message).
CREATE FUNCTION inkwell.sign_in(
    p_username text, p_password_hash_part text, p_address text, p_token_hash bytea,
    p_expires_at timestamptz, p_new_password_hash text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    account record;
    wait double precision;
    account_failures integer;
    address_failures integer := 0;
BEGIN
    wait := greatest(inkwell.sign_in_wait('account', p_username),
                     CASE WHEN p_address IS NULL THEN 0 ELSE inkwell.sign_in_wait('address', p_address) END);
    IF wait > 0 THEN
        PERFORM inkwell.audit_sign_in('sign_in.throttled', p_username, p_address,
                                      (SELECT id FROM inkwell.users WHERE username = p_username),
                                      jsonb_build_object('wait_seconds', ceil(wait)));
        -- The audit entry must outlive the refusal: return it as a result, not an error.
        RETURN -ceil(wait)::bigint;
    END IF;
    SELECT id, active, password_hash INTO account FROM inkwell.users WHERE username = p_username;
    IF account.id IS NOT NULL AND account.active AND account.password_hash IS NOT NULL
       AND p_password_hash_part IS NOT NULL AND length(p_password_hash_part) > 0
       AND split_part(account.password_hash, '$', 6) = p_password_hash_part THEN
        DELETE FROM inkwell.sign_in_throttle WHERE scope = 'account' AND key = p_username;
        IF p_new_password_hash IS NOT NULL AND p_new_password_hash LIKE '$argon2id$%' THEN
            PERFORM set_config('inkwell.rehashing_password', 'on', true);
            UPDATE inkwell.users SET password_hash = p_new_password_hash WHERE id = account.id;
        END IF;
        INSERT INTO inkwell.sessions (user_id, token_hash, kind, expires_at)
        VALUES (account.id, p_token_hash, 'console', p_expires_at);
        RETURN account.id;
    END IF;
    account_failures := inkwell.record_sign_in_failure('account', p_username, 10);
    IF p_address IS NOT NULL THEN
        address_failures := inkwell.record_sign_in_failure('address', p_address, 50);
    END IF;
    PERFORM inkwell.audit_sign_in(
        CASE WHEN account_failures >= 10 OR address_failures >= 50 THEN 'sign_in.locked' ELSE 'sign_in.failed' END,
        p_username, p_address, account.id,
        jsonb_build_object('account_failures', account_failures, 'address_failures', address_failures,
                           'reason', CASE WHEN account.id IS NULL THEN 'unknown username'
                                          WHEN NOT account.active THEN 'inactive account'
                                          WHEN account.password_hash IS NULL THEN 'no password'
                                          ELSE 'wrong password' END));
    RETURN NULL;
END;
$$;

-- Single sign-on: the identity provider's answer is checked by the console (Streamlit's st.login),
-- not here; this starts a session for the active account linked to that issuer and subject.
CREATE FUNCTION inkwell.sign_in_with_identity(p_issuer text, p_subject text, p_token_hash bytea, p_expires_at timestamptz)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    INSERT INTO inkwell.sessions (user_id, token_hash, kind, expires_at)
    SELECT id, p_token_hash, 'console', p_expires_at
      FROM inkwell.users WHERE oidc_issuer = p_issuer AND oidc_subject = p_subject AND active
    RETURNING user_id
$$;

-- The account linked to an identity, for the console's refusal message (no credentials).
CREATE FUNCTION inkwell.identity_account(p_issuer text, p_subject text)
RETURNS TABLE (id bigint, active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT id, active FROM inkwell.users WHERE oidc_issuer = p_issuer AND oidc_subject = p_subject
$$;

REVOKE EXECUTE ON FUNCTION
    inkwell.sign_in_wait(text, text),
    inkwell.record_sign_in_failure(text, text, integer),
    inkwell.audit_sign_in(text, text, text, bigint, jsonb),
    inkwell.sign_in_challenge(text, text),
    inkwell.sign_in(text, text, text, bytea, timestamptz, text),
    inkwell.sign_in_with_identity(text, text, bytea, timestamptz),
    inkwell.identity_account(text, text)
FROM PUBLIC, inkwell_worker;
GRANT EXECUTE ON FUNCTION
    inkwell.sign_in_challenge(text, text),
    inkwell.sign_in(text, text, text, bytea, timestamptz, text),
    inkwell.sign_in_with_identity(text, text, bytea, timestamptz),
    inkwell.identity_account(text, text)
TO inkwell_console;
