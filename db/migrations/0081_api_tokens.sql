-- API tokens: sessions of kind 'api' (0070) that people make, name, list and revoke on the console's
-- API tokens page. The sessions table stays unreadable to inkwell_console; these functions show
-- and end exactly what the acting user may: their own tokens, or anyone's for an admin. Tokens
-- are created with 0070's inkwell.start_session (the acting user, for themselves).

CREATE FUNCTION inkwell.list_api_tokens()
RETURNS TABLE (id bigint, user_id bigint, username text, name text, created_at timestamptz,
               expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT s.id, s.user_id, u.username, s.name, s.created_at, s.expires_at, s.last_used_at, s.revoked_at
      FROM inkwell.sessions AS s
      JOIN inkwell.users AS u ON u.id = s.user_id
     WHERE s.kind = 'api'
       AND (s.user_id = inkwell.acting_user_id() OR inkwell.acting_role() = 'admin')
     ORDER BY s.revoked_at IS NOT NULL, s.created_at DESC, s.id DESC
$$;

-- Ends an API token at once (the next call with it is refused). False: not one the acting user may
-- revoke, or already revoked. The audit entry is written in the same transaction.
CREATE FUNCTION inkwell.revoke_api_token(p_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    owner_id bigint;
BEGIN
    UPDATE inkwell.sessions AS s SET revoked_at = now()
     WHERE s.id = p_id AND s.kind = 'api' AND s.revoked_at IS NULL
       AND inkwell.acting_user_id() IS NOT NULL
       AND (s.user_id = inkwell.acting_user_id() OR inkwell.acting_role() = 'admin')
    RETURNING s.user_id INTO owner_id;
    IF owner_id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM inkwell.audit('api_token.revoked', 'session', p_id::text, jsonb_build_object('user_id', owner_id));
    RETURN true;
END;
$$;

REVOKE EXECUTE ON FUNCTION inkwell.list_api_tokens(), inkwell.revoke_api_token(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.list_api_tokens(), inkwell.revoke_api_token(bigint) TO inkwell_console;
