-- list_live_requests --
-- Waiting and running requests, newest first, filtered; reads only the partial index requests_unfinished_idx.
-- A request waiting to retry carries its next attempt's time (its job's; looked up for the rows returned only).
-- Only what a Live card shows (db.live.LiveRequest), not the result. The partial text comes whole: an
-- expression on it (right(partial_text, 300)) would run on every unfinished row before the sort and
-- LIMIT, detoasting each (1,000 running rows: 14.8 ms instead of 1.8).
SELECT id, kind, input, status, progress, current_step, eta_seconds, partial_text,
       attempts, requested_by, user_id, queue_name, scheduled_at, created_at, started_at, finished_at,
       (SELECT j.scheduled_at FROM procrastinate_jobs AS j
         WHERE j.id = requests.job_id AND j.status = 'todo' AND j.attempts > 0 AND j.scheduled_at > now()
       ) AS next_attempt_at
  FROM inkwell.requests
 WHERE status IN ('scheduled', 'queued', 'running')
   AND status = ANY(%(statuses)s::text[])
   AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
   AND (%(requested_by)s::text IS NULL OR requested_by = %(requested_by)s::text)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s

-- count_live_requests --
-- How many waiting and running requests match the filters (asked only when the list is cut short).
SELECT count(*)
  FROM inkwell.requests
 WHERE status IN ('scheduled', 'queued', 'running')
   AND status = ANY(%(statuses)s::text[])
   AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
   AND (%(requested_by)s::text IS NULL OR requested_by = %(requested_by)s::text)

-- list_live_requests_by_id --
-- Given requests in their current state, newest first (requests someone just acted on), as Live cards.
SELECT id, kind, input, status, progress, current_step, eta_seconds, partial_text,
       attempts, requested_by, user_id, queue_name, scheduled_at, created_at, started_at, finished_at,
       (SELECT j.scheduled_at FROM procrastinate_jobs AS j
         WHERE j.id = requests.job_id AND j.status = 'todo' AND j.attempts > 0 AND j.scheduled_at > now()
       ) AS next_attempt_at
  FROM inkwell.requests
 WHERE id = ANY(%(ids)s::uuid[])
 ORDER BY created_at DESC, id DESC

-- typical_run_seconds --
-- Per kind, the median run time (first start to end) of its latest 20 succeeded requests: what a running request's time left is learned from. Walks requests_kind_status_created_idx.
SELECT k.kind,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
          FROM (SELECT started_at, finished_at
                  FROM inkwell.requests
                 WHERE kind = k.kind AND status = 'succeeded'
                 ORDER BY created_at DESC, id DESC
                 LIMIT 20) AS r
         WHERE r.started_at IS NOT NULL AND r.finished_at IS NOT NULL) AS seconds
  FROM unnest(%(kinds)s::text[]) AS k(kind)

-- nav_counts --
-- Beside Live and History in the navigation: requests queued and running (the partial index of unfinished
-- requests), and failed in the last hour (the finished_at index); the ones this reader may see.
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'running') AS running,
       (SELECT count(*) FROM inkwell.requests
         WHERE finished_at > now() - interval '1 hour' AND status = 'failed') AS failed_last_hour
  FROM inkwell.requests
 WHERE status IN ('scheduled', 'queued', 'running')
