-- The HTTP API's calls in fewer round trips: a status poll in ONE statement, and the acting
-- identity of any other call set and checked in one.
--
-- Until now each API call took BEGIN, the session settings (0070's act_with_session), the token
-- check (touch_session, through api_caller), its work and COMMIT: five round trips for a status
-- poll, the API's most frequent call (a frontend polls every 2 s). These functions do the same
-- steps inside the database. They are SECURITY INVOKER on purpose: they switch the caller's
-- connection to the role inkwell_console and name the token (or the visitor's hash) exactly as
-- the console's `act_with_session` / `act_as_visitor` do, so the same policies (0041, 0074, 0080)
-- decide what the read sees, with nothing they could do that their caller could not. The role and
-- the settings are set for the transaction (set_config(..., true)); a status poll is one
-- statement on an autocommit connection, so they end with it.

-- For the rest of this transaction: act through the session of this token, its use recorded (at
-- most once a minute, touch_session); answers its account, or no row when the session is not live
-- (unknown, revoked, expired, inactive account). Call it first in a transaction.
CREATE FUNCTION inkwell.act_with_api_token(p_token text)
RETURNS TABLE (id bigint, username text, display_name text, role text, organization_id bigint,
               organization_name text, active boolean)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('role', 'inkwell_console', true), set_config('inkwell.session_token', p_token, true);
    -- Read as inkwell_console now, under row-level security: the account's own row, as api_caller.
    RETURN QUERY
        SELECT u.id, u.username, u.display_name, u.role, u.organization_id, o.name, u.active
          FROM inkwell.users AS u
          JOIN inkwell.organizations AS o ON o.id = u.organization_id
         WHERE u.id = inkwell.touch_session();
END;
$$;

-- A status poll in one statement: acting through the API token p_token (its use recorded at most
-- once a minute) or, with no token, as the anonymous visitor of p_visitor_hash (hex sha256 of the
-- session id), the request p_request_id when that caller may read it; no row when it may not or
-- there is none (the API answers 404 for both). A token of no live session is refused with
-- SQLSTATE 28000 (invalid_authorization_specification): the API answers 401.
CREATE FUNCTION inkwell.api_read_request(p_token text, p_visitor_hash text, p_request_id uuid)
RETURNS SETOF inkwell.requests
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('role', 'inkwell_console', true);
    IF p_token IS NOT NULL THEN
        PERFORM set_config('inkwell.session_token', p_token, true);
        IF inkwell.touch_session() IS NULL THEN
            RAISE EXCEPTION 'This API token is unknown, revoked or expired.'
                USING ERRCODE = 'invalid_authorization_specification';
        END IF;
    ELSE
        PERFORM set_config('inkwell.visitor_hash', coalesce(p_visitor_hash, ''), true);
    END IF;
    -- As inkwell_console from here: row-level security decides what this sees.
    RETURN QUERY SELECT * FROM inkwell.requests WHERE id = p_request_id;
END;
$$;

REVOKE EXECUTE ON FUNCTION inkwell.act_with_api_token(text), inkwell.api_read_request(text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.act_with_api_token(text), inkwell.api_read_request(text, text, uuid) TO inkwell_console;
