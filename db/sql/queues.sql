-- fetch_job_unless_paused --
-- Procrastinate's fetch_job, through the copy of its fetch function that skips paused queues.
SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at, queue_name, attempts, worker_id
    FROM inkwell.fetch_job_unless_paused(%(queues)s::varchar[], %(worker_id)s);

-- fetch_job --
-- What workers fetch through: the pause-aware fetch that also holds model jobs back while the
-- model endpoint is down, letting one through per probe (migration 0060).
SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at, queue_name, attempts, worker_id
    FROM inkwell.fetch_job_v2(%(queues)s::varchar[], %(worker_id)s);

-- queue_summaries --
-- Per queue: jobs waiting (due now), scheduled for later, running, requests failed in the last hour, and its pause.
WITH jobs AS (
    SELECT queue_name,
           count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())) AS waiting,
           count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
           count(*) FILTER (WHERE status = 'doing') AS running
      FROM procrastinate_jobs
     WHERE status IN ('todo', 'doing')
     GROUP BY queue_name
), failures AS (
    SELECT queue_name, count(*) AS failed_last_hour
      FROM inkwell.requests
     WHERE finished_at > now() - interval '1 hour' AND status = 'failed'
     GROUP BY queue_name
), names AS (
    SELECT queue_name FROM jobs
    UNION SELECT queue_name FROM failures
    UNION SELECT queue_name FROM inkwell.queue_pauses
    UNION SELECT unnest(%(always_listed)s::text[])
)
SELECT names.queue_name,
       coalesce(jobs.waiting, 0) AS waiting,
       coalesce(jobs.scheduled, 0) AS scheduled,
       coalesce(jobs.running, 0) AS running,
       coalesce(failures.failed_last_hour, 0) AS failed_last_hour,
       pauses.paused_by,
       pauses.paused_at
  FROM names
  LEFT JOIN jobs USING (queue_name)
  LEFT JOIN failures USING (queue_name)
  LEFT JOIN inkwell.queue_pauses AS pauses USING (queue_name)
 ORDER BY names.queue_name

-- pause_queue --
-- Stop workers fetching from a queue; returns nothing when it was already paused.
INSERT INTO inkwell.queue_pauses (queue_name, paused_by)
VALUES (%(queue_name)s, %(paused_by)s)
ON CONFLICT (queue_name) DO NOTHING
RETURNING queue_name

-- resume_queue --
-- Let workers fetch from a queue again (a trigger wakes them); returns the pause that was lifted, if any.
DELETE FROM inkwell.queue_pauses
 WHERE queue_name = %(queue_name)s
RETURNING queue_name, paused_by, paused_at

-- list_workers --
-- Registered workers, their last heartbeat, whether it is too old, and how many jobs each is running.
SELECT workers.id,
       workers.last_heartbeat,
       now() - workers.last_heartbeat > make_interval(secs => %(stale_after_seconds)s) AS is_stale,
       (SELECT count(*) FROM procrastinate_jobs AS jobs
         WHERE jobs.worker_id = workers.id AND jobs.status = 'doing') AS running_jobs
  FROM procrastinate_workers AS workers
 ORDER BY workers.id

-- job_status --
-- A queue job's status (no row once housekeeping removed the job).
SELECT status::text FROM procrastinate_jobs WHERE id = %(job_id)s

-- queue_pauses --
-- The paused queues, with who paused them and when.
SELECT queue_name, paused_by, paused_at FROM inkwell.queue_pauses ORDER BY queue_name

-- register_worker_with_details --
-- Procrastinate's registration of a starting worker, with where it runs and its concurrency (migration 0130).
INSERT INTO inkwell.worker_details (worker_id, host, pid, concurrency)
SELECT worker_id, %(host)s, %(pid)s, %(concurrency)s FROM procrastinate_register_worker_v1()
RETURNING worker_id

-- beat_with_job_counts --
-- Procrastinate's heartbeat of a worker, and the jobs it ended since it started, in one statement.
WITH beat AS (SELECT procrastinate_update_heartbeat_v1(%(worker_id)s))
UPDATE inkwell.worker_details
   SET jobs_succeeded = %(succeeded)s, jobs_failed = %(failed)s, jobs_retried = %(retried)s
 WHERE worker_id = %(worker_id)s AND EXISTS (SELECT FROM beat)

-- worker_details --
-- Every registered worker: heartbeat, where it runs, since when, jobs it ended; NULL details for a
-- worker that registered without them (an older Inkwell, Procrastinate's own CLI on another app).
SELECT workers.id,
       workers.last_heartbeat,
       now() - workers.last_heartbeat > make_interval(secs => %(stale_after_seconds)s) AS is_stale,
       details.host, details.pid, details.concurrency, details.started_at,
       now() - details.started_at AS uptime,
       coalesce(details.jobs_succeeded, 0) AS jobs_succeeded,
       coalesce(details.jobs_failed, 0) AS jobs_failed,
       coalesce(details.jobs_retried, 0) AS jobs_retried
  FROM procrastinate_workers AS workers
  LEFT JOIN inkwell.worker_details AS details ON details.worker_id = workers.id
 ORDER BY workers.id

-- jobs_running_on_workers --
-- The jobs each worker runs now, with their request when they have one (walks the index of running jobs' workers).
SELECT jobs.worker_id, jobs.id AS job_id, jobs.task_name, jobs.queue_name,
       requests.id AS request_id, requests.kind, requests.input ->> 'topic' AS topic,
       requests.progress, requests.started_at
  FROM procrastinate_jobs AS jobs
  LEFT JOIN inkwell.requests AS requests ON requests.job_id = jobs.id
 WHERE jobs.worker_id IS NOT NULL AND jobs.status = 'doing'
 ORDER BY jobs.worker_id, jobs.id
