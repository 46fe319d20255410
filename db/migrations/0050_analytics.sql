-- The analysts' interface: a schema of stable views over Inkwell's history, and a read-only role
-- that can read those views and nothing else. Documented in docs/ANALYTICS.md.
--
-- Stability: columns of these views are only ever added, never renamed, retyped or removed; a
-- change of meaning gets a new column. The views read inkwell.requests (kept after the queue
-- tables are cleaned up) and the job events, live ones and those housekeeping archived, so the
-- history here outlives Procrastinate's retention.
--
-- The views are owned by the migrating role and read the tables with its rights; the analyst role
-- gets no privilege on any table, so it cannot read password hashes, request results, settings
-- or Procrastinate's tables directly.

CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS 'Stable read-only views for analysts (docs/ANALYTICS.md). Columns are only ever added.';

CREATE VIEW analytics.organizations AS
SELECT id AS organization_id, name, credit_balance, created_at
  FROM inkwell.organizations;
COMMENT ON VIEW analytics.organizations IS 'Organizations and their current credit balance.';

-- No password hash, no identity-provider link.
CREATE VIEW analytics.users AS
SELECT id AS user_id, username, display_name, role, organization_id, active, created_at
  FROM inkwell.users;
COMMENT ON VIEW analytics.users IS 'Console accounts, without credentials.';

CREATE VIEW analytics.requests AS
SELECT r.id                                   AS request_id,
       r.kind,
       r.status,
       -- NULL while the request is scheduled, queued or running.
       CASE WHEN r.status IN ('succeeded', 'failed', 'cancelled') THEN r.status END AS outcome,
       r.error_code,
       r.error_message,
       r.attempts,
       r.requested_by,
       r.user_id,
       u.username,
       r.organization_id,
       o.name                                 AS organization,
       r.queue_name,
       coalesce(r.input ->> 'topic', r.input ->> 'url') AS topic,
       r.input,
       r.model_name,
       r.offline_model,
       r.tokens_used,
       r.credits                              AS credits_reserved,
       CASE WHEN r.credits_refunded_at IS NULL THEN r.credits ELSE 0 END AS credits_spent,
       r.credits_refunded_at,
       r.created_at,
       r.scheduled_at,
       r.started_at,
       r.finished_at,
       -- From when the request could start (its scheduled time, if later) to its first start.
       extract(epoch FROM r.started_at - greatest(r.created_at, coalesce(r.scheduled_at, r.created_at)))::double precision
                                              AS wait_seconds,
       -- From the first start to the end, retries included.
       extract(epoch FROM r.finished_at - r.started_at)::double precision AS run_seconds,
       extract(epoch FROM r.finished_at - r.created_at)::double precision AS total_seconds,
       r.job_id
  FROM inkwell.requests AS r
  LEFT JOIN inkwell.users AS u ON u.id = r.user_id
  LEFT JOIN inkwell.organizations AS o ON o.id = r.organization_id;
COMMENT ON VIEW analytics.requests IS
    'One row per request with outcome, timings in seconds (wait, run, total), attempts, requester, organization, tokens and credits.';

-- Every queue event of every job that carried a request: a request retried after a cancel has
-- had several jobs (previous_job_ids). Archived events are read once housekeeping removed the job.
CREATE VIEW analytics.events AS
WITH request_jobs AS (
    SELECT r.id AS request_id, r.kind, jobs.job_id
      FROM inkwell.requests AS r
     CROSS JOIN LATERAL unnest(r.previous_job_ids || r.job_id) AS jobs(job_id)
     WHERE jobs.job_id IS NOT NULL
), all_events AS (
    SELECT e.id, e.job_id, e.type::text AS type, e.at FROM procrastinate_events AS e
    UNION ALL
    SELECT a.id, a.job_id, a.type, a.at FROM inkwell.job_events_archive AS a
     WHERE NOT EXISTS (SELECT 1 FROM procrastinate_events AS live WHERE live.id = a.id)
)
SELECT rj.request_id, rj.kind, ev.job_id, ev.id AS event_id, ev.type, ev.at
  FROM request_jobs AS rj
  JOIN all_events AS ev ON ev.job_id = rj.job_id;
COMMENT ON VIEW analytics.events IS
    'Queue events (deferred, started, deferred_for_retry, failed, succeeded, cancelled, abort_requested, aborted, …) per request.';

-- Rollups by UTC day and hour of creation, per kind and organization. Computed when queried.
CREATE VIEW analytics.daily_requests AS
SELECT (created_at AT TIME ZONE 'UTC')::date                        AS day,
       kind,
       organization_id,
       organization,
       count(*)                                                     AS submitted,
       count(*) FILTER (WHERE outcome = 'succeeded')                AS succeeded,
       count(*) FILTER (WHERE outcome = 'failed')                   AS failed,
       count(*) FILTER (WHERE outcome = 'cancelled')                AS cancelled,
       count(*) FILTER (WHERE outcome IS NULL)                      AS unfinished,
       sum(attempts)                                                AS attempts,
       sum(tokens_used)                                             AS tokens_used,
       sum(credits_spent)                                           AS credits_spent,
       avg(wait_seconds)                                            AS avg_wait_seconds,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_seconds)    AS p50_wait_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_seconds)   AS p95_wait_seconds,
       avg(run_seconds)                                             AS avg_run_seconds,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY run_seconds)     AS p50_run_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY run_seconds)    AS p95_run_seconds
  FROM analytics.requests
 GROUP BY 1, kind, organization_id, organization;
COMMENT ON VIEW analytics.daily_requests IS 'Requests per UTC day of creation, kind and organization: outcomes, attempts, tokens, credits, wait and run times.';

CREATE VIEW analytics.hourly_requests AS
SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC')             AS hour,
       kind,
       organization_id,
       organization,
       count(*)                                                     AS submitted,
       count(*) FILTER (WHERE outcome = 'succeeded')                AS succeeded,
       count(*) FILTER (WHERE outcome = 'failed')                   AS failed,
       count(*) FILTER (WHERE outcome = 'cancelled')                AS cancelled,
       count(*) FILTER (WHERE outcome IS NULL)                      AS unfinished,
       sum(attempts)                                                AS attempts,
       sum(tokens_used)                                             AS tokens_used,
       sum(credits_spent)                                           AS credits_spent,
       avg(wait_seconds)                                            AS avg_wait_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_seconds)   AS p95_wait_seconds,
       avg(run_seconds)                                             AS avg_run_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY run_seconds)    AS p95_run_seconds
  FROM analytics.requests
 GROUP BY 1, kind, organization_id, organization;
COMMENT ON VIEW analytics.hourly_requests IS 'Requests per UTC hour of creation (timestamp without time zone, UTC), kind and organization.';

-- The read-only role. Roles belong to the whole server, so it may exist already (another
-- database on the same server, or a re-created database).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'inkwell_analyst') THEN
        CREATE ROLE inkwell_analyst NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE inkwell_analyst IS
    'Inkwell analysts: SELECT on the analytics views only. LOGIN and its password come from INKWELL_ANALYST_PASSWORD.';
-- Read-only even if someone grants it more later; long queries end rather than hold the server.
ALTER ROLE inkwell_analyst SET default_transaction_read_only = on;
ALTER ROLE inkwell_analyst SET statement_timeout = '5min';

GRANT USAGE ON SCHEMA analytics TO inkwell_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO inkwell_analyst;
