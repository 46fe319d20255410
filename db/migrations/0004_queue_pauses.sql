-- Queue pauses. Procrastinate has none, so Inkwell stores them here and every worker's fetch honours
-- them (queue_tasks/job_manager.py calls inkwell.fetch_job_unless_paused instead of
-- procrastinate_fetch_job_v2). Being in the database, a pause holds for every worker, wherever it runs.
CREATE TABLE inkwell.queue_pauses (
    queue_name text PRIMARY KEY,
    paused_by  text NOT NULL,
    paused_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE inkwell.queue_pauses IS
    'Queues no worker fetches from. Delete the row to resume; waiting workers are woken at once.';

-- Procrastinate 3.10's procrastinate_fetch_job_v2, unchanged but for the one marked condition
-- (tests/integration/test_queues.py compares the two bodies). Jobs already running on a queue keep
-- running when it is paused: a pause stops new fetches, it aborts nothing.
CREATE FUNCTION inkwell.fetch_job_unless_paused(
    target_queue_names character varying[],
    p_worker_id bigint
)
    RETURNS procrastinate_jobs
    LANGUAGE plpgsql
AS $$
DECLARE
	found_jobs procrastinate_jobs;
BEGIN
    WITH candidate AS (
        SELECT jobs.*
            FROM procrastinate_jobs AS jobs
            WHERE
                -- reject the job if its lock has earlier or higher priority jobs
                NOT EXISTS (
                    SELECT 1
                        FROM procrastinate_jobs AS other_jobs
                        WHERE
                            jobs.lock IS NOT NULL
                            AND other_jobs.lock = jobs.lock
                            AND (
                                -- job with same lock is already running
                                other_jobs.status = 'doing'
                                OR
                                -- job with same lock is waiting and has higher priority (or same priority but was queued first)
                                (
                                    other_jobs.status = 'todo'
                                    AND (
                                        other_jobs.priority > jobs.priority
                                        OR (
                                        other_jobs.priority = jobs.priority
                                        AND other_jobs.id < jobs.id
                                        )
                                    )
                                )
                            )
                )
                AND jobs.status = 'todo'
                AND (target_queue_names IS NULL OR jobs.queue_name = ANY( target_queue_names ))
                AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
                -- inkwell: skip paused queues
                AND NOT EXISTS (SELECT 1 FROM inkwell.queue_pauses AS pauses WHERE pauses.queue_name = jobs.queue_name)
            ORDER BY jobs.priority DESC, jobs.id ASC LIMIT 1
            FOR UPDATE OF jobs SKIP LOCKED
    )
    UPDATE procrastinate_jobs
        SET status = 'doing', worker_id = p_worker_id
        FROM candidate
        WHERE procrastinate_jobs.id = candidate.id
        RETURNING procrastinate_jobs.* INTO found_jobs;

 RETURN found_jobs;
END;
$$;

-- Idle workers sleep until a NOTIFY or their next poll. A resumed queue wakes them the way a new
-- job does (same channels and payload as procrastinate_notify_queue_job_inserted_v1), whoever
-- deletes the pause: the console, or someone with psql. Nothing is sent when no job is waiting.
CREATE FUNCTION inkwell.notify_queue_resumed() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    first_waiting_job bigint;
    payload text;
BEGIN
    SELECT min(id) INTO first_waiting_job
      FROM procrastinate_jobs
     WHERE queue_name = OLD.queue_name AND status = 'todo';
    IF first_waiting_job IS NOT NULL THEN
        payload := json_build_object('type', 'job_inserted', 'job_id', first_waiting_job)::text;
        PERFORM pg_notify('procrastinate_queue_v1#' || OLD.queue_name, payload);
        PERFORM pg_notify('procrastinate_any_queue_v1', payload);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_notify_queue_resumed
    AFTER DELETE ON inkwell.queue_pauses
    FOR EACH ROW
    EXECUTE FUNCTION inkwell.notify_queue_resumed();
