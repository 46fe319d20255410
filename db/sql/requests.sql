-- insert_requests --
-- Store requests (arrays of equal length, one element per request) with their queue jobs.
INSERT INTO inkwell.requests (id, kind, input, status, current_step, requested_by, queue_name, scheduled_at, job_id)
SELECT id, kind, input, status, CASE status WHEN 'scheduled' THEN 'Scheduled' ELSE 'Queued' END,
       requested_by, queue_name, scheduled_at, job_id
  FROM unnest(%(ids)s::uuid[], %(kinds)s::text[], %(inputs)s::jsonb[], %(statuses)s::text[],
              %(requested_by)s::text[], %(queue_names)s::text[], %(scheduled_ats)s::timestamptz[],
              %(job_ids)s::bigint[])
       AS t(id, kind, input, status, requested_by, queue_name, scheduled_at, job_id)

-- insert_requests_with_jobs --
-- Queue requests: one Procrastinate job each (its procrastinate_defer_jobs_v1) and the request rows.
-- One statement, so both or neither, in one round trip. %(ids)s (uuid[]) and %(inputs)s (a JSON
-- array) hold one element per request, in the same order; everything else is the same for all.
-- The jobs are what Procrastinate's batch_defer writes (args {"request_id": id}), at the fair-share
-- priority of migration 0045 (computed before any row of this submission exists).
WITH new AS (
    SELECT t.position, t.id, t.input
      FROM ROWS FROM (unnest(%(ids)s::uuid[]), jsonb_array_elements(%(inputs)s::jsonb))
           WITH ORDINALITY AS t(id, input, position)
), fair AS MATERIALIZED (
    SELECT inkwell.fair_share_priority(cardinality(%(ids)s::uuid[]), %(requested_by)s::text) AS priority
), deferred AS MATERIALIZED (
    -- Job ids come back in the order of the array (Procrastinate's batch_defer relies on it too).
    -- Each CTE runs once: the priority is computed and the jobs are deferred once, however the
    -- statement is planned.
    SELECT procrastinate_defer_jobs_v1(ARRAY(
               SELECT ROW(%(queue_name)s::varchar, %(task_name)s::varchar, fair.priority, %(lock)s::text,
                          NULL::text, jsonb_build_object('request_id', new.id::text),
                          %(scheduled_at)s::timestamptz)::procrastinate_job_to_defer_v1
                 FROM new, fair
                ORDER BY new.position
           )) AS job_ids
)
INSERT INTO inkwell.requests (id, kind, input, status, current_step, requested_by, queue_name, scheduled_at, job_id)
SELECT new.id, %(kind)s, new.input,
       CASE WHEN %(scheduled_at)s::timestamptz > now() THEN 'scheduled' ELSE 'queued' END,
       CASE WHEN %(scheduled_at)s::timestamptz > now() THEN 'Scheduled' ELSE 'Queued' END,
       %(requested_by)s, %(queue_name)s, %(scheduled_at)s::timestamptz, deferred.job_ids[new.position::integer]
  FROM new, deferred
RETURNING id, job_id

-- get_request --
-- One request by id.
SELECT * FROM inkwell.requests WHERE id = %(request_id)s

-- list_recent_requests --
-- The newest requests first, for the home page; not the discarded ones (migration 0132).
SELECT * FROM inkwell.requests WHERE discarded_at IS NULL ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- record_progress --
-- A running job reports how far it got: written only by the job the request is linked to, while it
-- runs under this worker. Returns whether the job's cancellation was asked for (the job row decides);
-- no row when the job is not this worker's (any more).
UPDATE inkwell.requests AS r
   SET progress = greatest(r.progress, %(progress)s),
       current_step = %(step)s,
       eta_seconds = %(eta_seconds)s,
       partial_text = %(partial_text)s,
       updated_at = now()
  FROM procrastinate_jobs AS j
 WHERE r.id = %(request_id)s AND r.job_id = %(job_id)s AND r.status = 'running'
   AND j.id = %(job_id)s AND j.status = 'doing' AND j.worker_id IS NOT DISTINCT FROM %(worker_id)s
RETURNING j.abort_requested

-- lock_request --
-- One request by id, locked for the rest of the transaction (cancel and retry decide on its state).
SELECT * FROM inkwell.requests WHERE id = %(request_id)s FOR UPDATE

-- attach_new_job --
-- A request starts over on a new queue job; the old job id is kept for the event timeline.
UPDATE inkwell.requests
   SET previous_job_ids = CASE WHEN job_id IS NULL THEN previous_job_ids ELSE previous_job_ids || job_id END,
       job_id = %(job_id)s,
       status = 'queued',
       current_step = 'Queued',
       progress = 0,
       eta_seconds = NULL,
       partial_text = NULL,
       error_code = NULL,
       error_message = NULL,
       finished_at = NULL,
       updated_at = now()
 WHERE id = %(request_id)s

-- fair_share_priority --
-- The priority new jobs of a submission of this many requests get (migration 0045), for a job deferred outside insert_requests_with_jobs.
SELECT inkwell.fair_share_priority(%(new_requests)s, %(requested_by)s)

-- run_request_now --
-- Make a request waiting for a later time (scheduled, or waiting to retry) due now (migration 0131); its job id, or NULL.
SELECT inkwell.run_request_now(%(request_id)s) AS job_id

-- discard_finished_requests --
-- Clear finished requests out of the console's lists, selected ones or those finished before a time (migration 0132); how many.
SELECT inkwell.discard_finished_requests(%(request_ids)s::uuid[], %(finished_before)s::timestamptz) AS discarded
