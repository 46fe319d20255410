-- A job is ended (finished or handed back for a retry) only by the worker that runs it.
--
-- Procrastinate's procrastinate_finish_job_v1 and procrastinate_retry_job_v2 end a job whatever
-- worker asks. A worker that stopped beating (frozen, cut off from the database, starved of CPU)
-- has its jobs re-queued by the stalled-job check (queue_tasks/maintenance.py) and started by
-- another worker; if the first one comes back, its late "succeeded" / "retry" would end the job
-- the other worker is running. These wrappers lock the job row and call Procrastinate's function
-- only while the job is still `doing` under the caller's worker id (the stalled-job check passes
-- the silent worker's id, which is still the job's). They return the job's new status, or NULL
-- when the job was not the caller's to end. queue_tasks/job_manager.py calls them instead of the
-- plain functions.
--
-- A job whose cancellation was asked for is not retried or failed but ended as `aborted` (its
-- request shows "cancelled"). Procrastinate's retry marks it `failed`, leaving no error code on
-- the request: a job cancelled just before its worker died, then re-queued by the stalled-job check.

CREATE FUNCTION inkwell.finish_job_if_owned(
    p_job_id bigint, p_worker_id bigint, p_status procrastinate_job_status, p_delete_job boolean
) RETURNS procrastinate_job_status
    LANGUAGE plpgsql
AS $$
DECLARE
    _abort_requested boolean;
    _status procrastinate_job_status := p_status;
BEGIN
    SELECT abort_requested INTO _abort_requested FROM procrastinate_jobs
     WHERE id = p_job_id AND status = 'doing' AND worker_id IS NOT DISTINCT FROM p_worker_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF _abort_requested AND p_status = 'failed' THEN
        _status := 'aborted';
    END IF;
    PERFORM procrastinate_finish_job_v1(p_job_id, _status, p_delete_job);
    RETURN _status;
END;
$$;

CREATE FUNCTION inkwell.retry_job_if_owned(
    p_job_id bigint, p_worker_id bigint, p_retry_at timestamptz, p_priority integer, p_queue_name varchar,
    p_lock varchar
) RETURNS procrastinate_job_status
    LANGUAGE plpgsql
AS $$
DECLARE
    _abort_requested boolean;
BEGIN
    SELECT abort_requested INTO _abort_requested FROM procrastinate_jobs
     WHERE id = p_job_id AND status = 'doing' AND worker_id IS NOT DISTINCT FROM p_worker_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF _abort_requested THEN
        PERFORM procrastinate_finish_job_v1(p_job_id, 'aborted', false);
        RETURN 'aborted';
    END IF;
    PERFORM procrastinate_retry_job_v2(p_job_id, p_retry_at, p_priority, p_queue_name, p_lock);
    RETURN 'todo';
END;
$$;
