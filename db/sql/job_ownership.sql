-- finish_job_if_owned --
-- End a job (succeeded, failed, aborted) only if it is still running under this worker id
-- (migration 0030); its new status, or NULL when it was not this worker's to end.
SELECT inkwell.finish_job_if_owned(%(job_id)s, %(worker_id)s, %(status)s, %(delete_job)s)::text AS status

-- retry_job_if_owned --
-- Hand a job back for a retry only if it is still running under this worker id (migration 0030);
-- its new status (todo, or aborted if its cancellation was asked for), or NULL.
SELECT inkwell.retry_job_if_owned(%(job_id)s, %(worker_id)s, %(retry_at)s, %(new_priority)s,
                                  %(new_queue_name)s, %(new_lock)s)::text AS status

-- finish_request_job --
-- A job succeeded: its result and the job's `succeeded`, in one transaction (migration 0060); false
-- when the job is not the request's or no longer runs under this worker (nothing written).
SELECT inkwell.finish_request_job(%(request_id)s, %(job_id)s, %(worker_id)s, %(result)s, %(model_name)s,
                                  %(offline_model)s, %(tokens_used)s, %(model_answered)s) AS finished

-- end_failed_attempt --
-- An attempt failed: outcome, error and the job's next status together (migration 0060); the new
-- status (todo, failed, aborted, held) or NULL when the job was not this worker's to end.
SELECT inkwell.end_failed_attempt(%(request_id)s, %(job_id)s, %(worker_id)s, %(code)s, %(message)s,
                                  %(retry_at)s, %(endpoint_down)s, %(model_answered)s,
                                  %(endpoint_not_answering)s) AS status

-- end_stalled_job --
-- A job of a worker that stopped beating: re-queued, or failed as worker_lost on its last attempt
-- (migration 0060); the new status, or NULL when it no longer runs under that worker.
SELECT inkwell.end_stalled_job(%(job_id)s, %(worker_id)s, %(max_attempts)s) AS status

-- prune_dead_workers --
-- Remove the rows of workers silent this long whose jobs have all been re-queued.
SELECT inkwell.prune_dead_workers(%(seconds)s) AS worker_id

-- job_abort_requested --
-- Whether a running job's cancellation was really asked for: the job row decides, not a notification.
SELECT coalesce((SELECT abort_requested FROM procrastinate_jobs WHERE id = %(job_id)s AND status = 'doing'), false)
       AS abort_requested

-- model_outage --
-- The model endpoint's outage, if it is down: since when, how many model jobs wait, the last error.
SELECT * FROM inkwell.model_outage() WHERE down_since IS NOT NULL
