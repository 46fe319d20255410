-- History at the speed of the owner's reads, for every role, under row-level security.
--
-- Row-level security evaluates a policy's condition before any condition of the query that is not
-- "leakproof", and a condition that must wait cannot use an index. History's text search
-- (`search_text ILIKE …`, the trigram index) and requester filter (`lower(requested_by) = …`) are
-- such conditions: through a console session they became filters over every row of the
-- organization, or of the whole table for operators (bench/history_scale.py: p95 of a first page
-- 2.4–3.7 s at 1,000,000 requests, against 34–100 ms on the owner's connection in the same run).
--
-- So History's two reads are functions with the owner's rights that apply the requests_read
-- policy of 0041 themselves, as an explicit condition, and the query's filters with their indexes:
--   * inkwell_console with no live session: nothing;
--   * operator, admin, analyst: every request;
--   * editor: own requests, the organization's, and the image requests of posts they may read;
--   * any other caller (the owner, workers): every request, as without row-level security.
-- The caller is the login role, or the role it switched to (SET ROLE), as in 0070.

CREATE FUNCTION inkwell.history_visibility() RETURNS TABLE (sees text, user_id bigint, organization_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    caller name := CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role') END;
    acting_role text;
BEGIN
    IF caller <> 'inkwell_console' THEN
        RETURN QUERY SELECT 'all'::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    acting_role := inkwell.acting_role();
    RETURN QUERY SELECT CASE WHEN acting_role IN ('operator', 'admin', 'analyst') THEN 'all'
                             WHEN acting_role = 'editor' THEN 'editor'
                             ELSE 'none' END,
                        inkwell.acting_user_id(), inkwell.acting_organization_id();
END;
$$;

CREATE FUNCTION inkwell.history_rows(
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
           AND ($11 = 'all'
                OR r.user_id = $12 OR r.organization_id = $13
                OR (r.user_id IS NULL AND r.kind = 'post_image' AND inkwell.post_image_request_readable(r.id)))
         ORDER BY r.created_at DESC, r.id DESC
         LIMIT $10
    $q$ USING p_statuses, p_kind, p_requester, p_submitted_from, p_submitted_before, p_text_pattern,
              p_organization_id, p_after_created_at, p_after_id, p_limit, v.sees, v.user_id, v.organization_id;
END;
$$;

CREATE FUNCTION inkwell.count_history(
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

REVOKE EXECUTE ON FUNCTION inkwell.history_visibility() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    inkwell.history_rows(text[], text, text, timestamptz, timestamptz, text, bigint, timestamptz, uuid, integer),
    inkwell.count_history(text[], text, text, timestamptz, timestamptz, text, bigint, integer)
TO inkwell_console;
