-- The audit log names its targets ("user edna", not "user 12"). Operators read the whole audit log
-- but not other people's accounts (users_read), so the name comes from this function: the target's
-- name alone, and only for an entry the acting user may read (the rule of audit_log_read).
CREATE FUNCTION inkwell.audit_target_name(p_entry_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT CASE a.target_type
               WHEN 'user' THEN (SELECT u.username FROM inkwell.users AS u WHERE u.id::text = a.target_id)
               WHEN 'organization' THEN (SELECT o.name FROM inkwell.organizations AS o WHERE o.id::text = a.target_id)
           END
      FROM inkwell.audit_log AS a
     WHERE a.id = p_entry_id
       AND ((SELECT inkwell.acting_role()) IN ('operator', 'admin')
            OR ((SELECT inkwell.acting_role()) IS NOT NULL AND a.actor_user_id = (SELECT inkwell.acting_user_id())))
$$;

REVOKE EXECUTE ON FUNCTION inkwell.audit_target_name(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.audit_target_name(bigint) TO inkwell_console;
