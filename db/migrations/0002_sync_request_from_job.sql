-- Procrastinate's job row is the queue's truth. Every change of a job's status is copied onto
-- its request inside the same transaction, so the two can never disagree about a job's state,
-- whoever changes it (worker, retry, cancel, stalled-job recovery, a DBA with psql).
CREATE FUNCTION inkwell.sync_request_from_job() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE inkwell.requests AS r
       SET status = CASE NEW.status
               WHEN 'todo' THEN
                   CASE WHEN NEW.attempts = 0 AND NEW.scheduled_at > now() THEN 'scheduled' ELSE 'queued' END
               WHEN 'doing' THEN 'running'
               WHEN 'succeeded' THEN 'succeeded'
               WHEN 'failed' THEN 'failed'
               ELSE 'cancelled'  -- cancelled before it ran, or aborted while running
           END,
           -- Each start is one attempt. (Procrastinate's own counter also counts a manual retry.)
           attempts = r.attempts + CASE WHEN NEW.status = 'doing' AND OLD.status <> 'doing' THEN 1 ELSE 0 END,
           current_step = CASE
               WHEN NEW.status = 'doing' AND NEW.abort_requested THEN 'Cancelling…'
               WHEN NEW.status = 'doing' AND OLD.status = 'doing' THEN r.current_step
               WHEN NEW.status = 'doing' THEN 'Starting'
               WHEN NEW.status = 'todo' AND NEW.attempts = 0 AND NEW.scheduled_at > now() THEN 'Scheduled'
               WHEN NEW.status = 'todo' AND NEW.attempts > 0 THEN 'Waiting to retry'
               WHEN NEW.status = 'todo' THEN 'Queued'
               WHEN NEW.status = 'succeeded' THEN 'Done'
               WHEN NEW.status = 'failed' THEN 'Failed'
               WHEN NEW.status = 'aborted' THEN 'Cancelled while running'
               ELSE 'Cancelled'
           END,
           progress = CASE
               WHEN NEW.status = 'succeeded' THEN 100
               WHEN NEW.status = 'todo' THEN 0
               ELSE r.progress
           END,
           eta_seconds = CASE WHEN NEW.status = 'doing' THEN r.eta_seconds END,
           partial_text = CASE WHEN NEW.status IN ('doing', 'failed', 'aborted') THEN r.partial_text END,
           error_code = CASE WHEN NEW.status = 'succeeded' THEN NULL ELSE r.error_code END,
           error_message = CASE WHEN NEW.status = 'succeeded' THEN NULL ELSE r.error_message END,
           started_at = CASE WHEN NEW.status = 'doing' THEN coalesce(r.started_at, now()) ELSE r.started_at END,
           finished_at = CASE
               WHEN NEW.status IN ('succeeded', 'failed', 'cancelled', 'aborted') THEN now()
           END,
           updated_at = now()
     WHERE r.job_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_sync_request_from_job
    AFTER UPDATE OF status, abort_requested ON procrastinate_jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.abort_requested IS DISTINCT FROM NEW.abort_requested)
    EXECUTE FUNCTION inkwell.sync_request_from_job();
