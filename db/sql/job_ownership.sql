-- finish_job_if_owned --
-- End a job (succeeded, failed, aborted) only if it is still running under this worker id
-- (migration 0030); its new status, or NULL when it was not this worker's to end.
SELECT inkwell.finish_job_if_owned(%(job_id)s, %(worker_id)s, %(status)s, %(delete_job)s)::text AS status

-- retry_job_if_owned --
-- Hand a job back for a retry only if it is still running under this worker id (migration 0030);
-- its new status (todo, or aborted if its cancellation was asked for), or NULL.
SELECT inkwell.retry_job_if_owned(%(job_id)s, %(worker_id)s, %(retry_at)s, %(new_priority)s,
                                  %(new_queue_name)s, %(new_lock)s)::text AS status
