-- insert_requests --
-- Store requests (arrays of equal length, one element per request) with their queue jobs.
INSERT INTO inkwell.requests (id, kind, input, status, current_step, requested_by, queue_name, scheduled_at, job_id)
SELECT id, kind, input, status, CASE status WHEN 'scheduled' THEN 'Scheduled' ELSE 'Queued' END,
       requested_by, queue_name, scheduled_at, job_id
  FROM unnest(%(ids)s::uuid[], %(kinds)s::text[], %(inputs)s::jsonb[], %(statuses)s::text[],
              %(requested_by)s::text[], %(queue_names)s::text[], %(scheduled_ats)s::timestamptz[],
              %(job_ids)s::bigint[])
       AS t(id, kind, input, status, requested_by, queue_name, scheduled_at, job_id)

-- get_request --
-- One request by id.
SELECT * FROM inkwell.requests WHERE id = %(request_id)s

-- list_recent_requests --
-- The newest requests first, for the home page.
SELECT * FROM inkwell.requests ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- record_progress --
-- A running job reports how far it got; ignored once the job is no longer running.
UPDATE inkwell.requests
   SET progress = greatest(progress, %(progress)s),
       current_step = %(step)s,
       eta_seconds = %(eta_seconds)s,
       partial_text = %(partial_text)s,
       updated_at = now()
 WHERE id = %(request_id)s AND status = 'running'

-- store_result --
-- Keep the result of a request. Writing it again (a re-run after a crash) replaces, never adds.
UPDATE inkwell.requests
   SET result = %(result)s,
       model_name = %(model_name)s,
       offline_model = %(offline_model)s,
       progress = 100,
       current_step = 'Saving result',
       eta_seconds = NULL,
       partial_text = NULL,
       error_code = NULL,
       error_message = NULL,
       updated_at = now()
 WHERE id = %(request_id)s

-- record_error --
-- Why the latest attempt of a request failed (the status itself comes from the queue).
UPDATE inkwell.requests
   SET error_code = %(error_code)s,
       error_message = %(error_message)s,
       eta_seconds = NULL,
       updated_at = now()
 WHERE id = %(request_id)s

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
