-- history_page --
-- Requests matching the History filters, newest first, after a keyset (created_at, id); NULL filters match all.
SELECT id, kind, status, input ->> 'topic' AS topic, requested_by, queue_name, attempts,
       created_at, started_at, finished_at, model_name, error_code, error_message,
       CASE jsonb_typeof(result -> 'titles') WHEN 'array' THEN result -> 'titles' END AS titles
  FROM inkwell.requests
 WHERE ((cardinality(%(statuses)s::text[]) = 1 AND status = (%(statuses)s::text[])[1])
        OR (cardinality(%(statuses)s::text[]) <> 1 AND status = ANY(%(statuses)s::text[])))
   AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
   AND (%(requester)s::text IS NULL OR lower(requested_by) = lower(%(requester)s::text))
   AND (%(submitted_from)s::timestamptz IS NULL OR created_at >= %(submitted_from)s::timestamptz)
   AND (%(submitted_before)s::timestamptz IS NULL OR created_at < %(submitted_before)s::timestamptz)
   AND (%(text_pattern)s::text IS NULL OR search_text ILIKE %(text_pattern)s::text)
   AND (%(after_created_at)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_created_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s

-- count_history_up_to --
-- How many requests match the History filters, counting no further than a limit (so it stays cheap).
SELECT count(*) FROM (
    SELECT 1
      FROM inkwell.requests
     WHERE ((cardinality(%(statuses)s::text[]) = 1 AND status = (%(statuses)s::text[])[1])
            OR (cardinality(%(statuses)s::text[]) <> 1 AND status = ANY(%(statuses)s::text[])))
       AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
       AND (%(requester)s::text IS NULL OR lower(requested_by) = lower(%(requester)s::text))
       AND (%(submitted_from)s::timestamptz IS NULL OR created_at >= %(submitted_from)s::timestamptz)
       AND (%(submitted_before)s::timestamptz IS NULL OR created_at < %(submitted_before)s::timestamptz)
       AND (%(text_pattern)s::text IS NULL OR search_text ILIKE %(text_pattern)s::text)
     LIMIT %(limit)s
) AS matching

-- request_events --
-- The event timeline of a request: what Procrastinate recorded for its current and earlier jobs, live or archived by housekeeping, with what ended each failed attempt (migration 0060).
SELECT job_id, type, at
  FROM (SELECT id, job_id, type::text AS type, at
          FROM procrastinate_events
         WHERE job_id = ANY(%(job_ids)s::bigint[])
        UNION  -- an event is in both while it waits to be deleted from the queue
        SELECT id, job_id, type, at
          FROM inkwell.job_events_archive
         WHERE job_id = ANY(%(job_ids)s::bigint[])
        UNION ALL
        SELECT id, job_id,
               'attempt failed: ' || outcome
               || CASE WHEN counted THEN '' ELSE ' (model endpoint down: the attempt was given back)' END,
               at
          FROM inkwell.attempt_outcomes
         WHERE job_id = ANY(%(job_ids)s::bigint[])) AS events
 ORDER BY at, id
