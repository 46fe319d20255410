-- history_page --
-- Requests matching the History filters, newest first, after a keyset (created_at, id); NULL filters match all.
-- Through inkwell.history_rows (0074): who may read what is applied there explicitly, so the text and requester
-- filters keep their indexes under row-level security; organization_id narrows an editor's reads to their
-- organization's index range.
SELECT * FROM inkwell.history_rows(%(statuses)s::text[], %(kind)s::text, %(requester)s::text,
                                   %(submitted_from)s::timestamptz, %(submitted_before)s::timestamptz,
                                   %(text_pattern)s::text, %(organization_id)s::bigint,
                                   %(after_created_at)s::timestamptz, %(after_id)s::uuid, %(limit)s::integer)

-- count_history_up_to --
-- How many requests match the History filters, counting no further than a limit (so it stays cheap).
SELECT inkwell.count_history(%(statuses)s::text[], %(kind)s::text, %(requester)s::text,
                             %(submitted_from)s::timestamptz, %(submitted_before)s::timestamptz,
                             %(text_pattern)s::text, %(organization_id)s::bigint, %(limit)s::integer)

-- request_events --
-- The event timeline of a request: what Procrastinate recorded for its current and earlier jobs, live or archived by housekeeping.
SELECT job_id, type, at
  FROM (SELECT id, job_id, type::text AS type, at
          FROM procrastinate_events
         WHERE job_id = ANY(%(job_ids)s::bigint[])
        UNION  -- an event is in both while it waits to be deleted from the queue
        SELECT id, job_id, type, at
          FROM inkwell.job_events_archive
         WHERE job_id = ANY(%(job_ids)s::bigint[])) AS events
 ORDER BY at, id
