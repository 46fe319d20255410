-- What the Workers and queues page shows of each worker beyond Procrastinate's id and heartbeat:
-- where it runs (host, process id), how many jobs it runs at once, since when, and how many jobs
-- it ended since it started. Procrastinate 3.10's procrastinate_workers has only id and
-- last_heartbeat, so the worker writes this row when it registers (queue_tasks/job_manager.py) and
-- its job counts with its heartbeats (no write per job). The row goes with the worker's: removed
-- when it stops, or when a silent worker is pruned (Procrastinate at a worker's start, or the
-- stalled-job check, inkwell.prune_dead_workers).
CREATE TABLE inkwell.worker_details (
    worker_id      bigint PRIMARY KEY REFERENCES procrastinate_workers (id) ON DELETE CASCADE,
    host           text NOT NULL,
    pid            integer NOT NULL,
    concurrency    integer NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    -- Jobs it ended since it started: succeeded, failed for good, handed back for another attempt.
    jobs_succeeded bigint NOT NULL DEFAULT 0,
    jobs_failed    bigint NOT NULL DEFAULT 0,
    jobs_retried   bigint NOT NULL DEFAULT 0
);

-- Read like procrastinate_workers (0041): by any acting user; written by the workers only.
ALTER TABLE inkwell.worker_details ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON inkwell.worker_details TO inkwell_console;
CREATE POLICY worker_details_read ON inkwell.worker_details FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_role()) IS NOT NULL);
CREATE POLICY workers_all ON inkwell.worker_details TO inkwell_worker USING (true) WITH CHECK (true);
