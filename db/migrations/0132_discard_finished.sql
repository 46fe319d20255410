-- Discarding finished requests: an operator or admin clears finished requests out of the console's
-- lists (History, Home's latest requests) without deleting anything. A discarded request keeps its
-- row, result, events and audit trail: analysts' views (analytics.*, 0050), the Overview's counts and
-- a link to the request itself still see it, and it leaves the database only as the retention rules
-- say (INKWELL_HISTORY_RETENTION_DAYS; Procrastinate's job rows after INKWELL_QUEUE_RETENTION_DAYS).
--
-- Only through inkwell.discard_finished_requests, which checks the acting user is an operator or an
-- admin and writes one audit entry (requests.discarded) in the same transaction: inkwell_console has
-- no UPDATE on the column.
ALTER TABLE inkwell.requests ADD COLUMN discarded_at timestamptz;

CREATE FUNCTION inkwell.discard_finished_requests(p_request_ids uuid[], p_finished_before timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    _discarded bigint;
BEGIN
    IF inkwell.acting_role() IS NULL OR inkwell.acting_role() NOT IN ('operator', 'admin') THEN
        RAISE EXCEPTION 'Only operators and admins can discard finished requests.' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_request_ids IS NULL AND p_finished_before IS NULL THEN
        RAISE EXCEPTION 'Say which requests to discard: selected ones, or those finished before a time.'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE inkwell.requests
       SET discarded_at = now()
     WHERE status IN ('succeeded', 'failed', 'cancelled')
       AND discarded_at IS NULL
       AND (p_request_ids IS NULL OR id = ANY(p_request_ids))
       AND (p_finished_before IS NULL OR finished_at < p_finished_before);
    GET DIAGNOSTICS _discarded = ROW_COUNT;
    IF _discarded > 0 THEN
        PERFORM inkwell.audit('requests.discarded', 'requests', NULL,
                              jsonb_build_object('count', _discarded, 'finished_before', p_finished_before,
                                                 'request_ids', to_jsonb(p_request_ids)));
        -- History watches this counter (0090); a change of discarded_at alone does not move it.
        PERFORM nextval('inkwell.changes_request_status');
    END IF;
    RETURN _discarded;
END;
$$;
REVOKE ALL ON FUNCTION inkwell.discard_finished_requests(uuid[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.discard_finished_requests(uuid[], timestamptz) TO inkwell_console;

-- History no longer lists discarded requests (0074's functions, one condition added).
CREATE OR REPLACE FUNCTION inkwell.history_rows(
    p_statuses text[], p_kind text, p_requester text, p_submitted_from timestamptz, p_submitted_before timestamptz,
    p_text_pattern text, p_organization_id bigint, p_after_created_at timestamptz, p_after_id uuid, p_limit integer
) RETURNS TABLE (
    id uuid, kind text, status text, topic text, requested_by text, queue_name text, attempts integer,
    created_at timestamptz, started_at timestamptz, finished_at timestamptz, model_name text,
    error_code text, error_message text, titles jsonb
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    v record;
BEGIN
    SELECT * INTO v FROM inkwell.history_visibility();
    IF v.sees = 'none' THEN
        RETURN;
    END IF;
    -- EXECUTE: planned with this call's values, so each "parameter IS NULL" folds away and the
    -- planner picks the index for the filters actually set (as the client-side query did).
    RETURN QUERY EXECUTE $q$
        SELECT r.id, r.kind, r.status, r.input ->> 'topic', r.requested_by, r.queue_name, r.attempts,
               r.created_at, r.started_at, r.finished_at, r.model_name, r.error_code, r.error_message,
               CASE jsonb_typeof(r.result -> 'titles') WHEN 'array' THEN r.result -> 'titles' END
          FROM inkwell.requests AS r
         WHERE ((cardinality($1) = 1 AND r.status = $1[1]) OR (cardinality($1) <> 1 AND r.status = ANY($1)))
           AND ($2::text IS NULL OR r.kind = $2)
           AND ($3::text IS NULL OR lower(r.requested_by) = lower($3))
           AND ($4::timestamptz IS NULL OR r.created_at >= $4)
           AND ($5::timestamptz IS NULL OR r.created_at < $5)
           AND ($6::text IS NULL OR r.search_text ILIKE $6)
           AND ($7::bigint IS NULL OR r.organization_id = $7)
           AND ($8::timestamptz IS NULL OR (r.created_at, r.id) < ($8, $9::uuid))
           AND r.discarded_at IS NULL
           AND ($11 = 'all'
                OR r.user_id = $12 OR r.organization_id = $13
                OR (r.user_id IS NULL AND r.kind = 'post_image' AND inkwell.post_image_request_readable(r.id)))
         ORDER BY r.created_at DESC, r.id DESC
         LIMIT $10
    $q$ USING p_statuses, p_kind, p_requester, p_submitted_from, p_submitted_before, p_text_pattern,
              p_organization_id, p_after_created_at, p_after_id, p_limit, v.sees, v.user_id, v.organization_id;
END;
$$;

CREATE OR REPLACE FUNCTION inkwell.count_history(
    p_statuses text[], p_kind text, p_requester text, p_submitted_from timestamptz, p_submitted_before timestamptz,
    p_text_pattern text, p_organization_id bigint, p_limit integer
) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    v record;
    matching bigint;
BEGIN
    SELECT * INTO v FROM inkwell.history_visibility();
    IF v.sees = 'none' THEN
        RETURN 0;
    END IF;
    EXECUTE $q$
        SELECT count(*) FROM (
            SELECT 1
              FROM inkwell.requests AS r
             WHERE ((cardinality($1) = 1 AND r.status = $1[1]) OR (cardinality($1) <> 1 AND r.status = ANY($1)))
               AND ($2::text IS NULL OR r.kind = $2)
               AND ($3::text IS NULL OR lower(r.requested_by) = lower($3))
               AND ($4::timestamptz IS NULL OR r.created_at >= $4)
               AND ($5::timestamptz IS NULL OR r.created_at < $5)
               AND ($6::text IS NULL OR r.search_text ILIKE $6)
               AND ($7::bigint IS NULL OR r.organization_id = $7)
               AND r.discarded_at IS NULL
               AND ($9 = 'all'
                    OR r.user_id = $10 OR r.organization_id = $11
                    OR (r.user_id IS NULL AND r.kind = 'post_image' AND inkwell.post_image_request_readable(r.id)))
             LIMIT $8
        ) AS matching
    $q$ INTO matching
    USING p_statuses, p_kind, p_requester, p_submitted_from, p_submitted_before, p_text_pattern,
          p_organization_id, p_limit, v.sees, v.user_id, v.organization_id;
    RETURN matching;
END;
$$;
