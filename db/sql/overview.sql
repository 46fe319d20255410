-- count_requests_by_status --
-- How many requests are in each status, exactly: the per-day rollup of the days that ended plus a live count of today's (migration 0026).
SELECT status, requests FROM inkwell.count_requests_by_status()

-- finished_per_interval --
-- Requests that succeeded and failed per interval (minute, hour...) over a recent window, zeros included.
WITH intervals AS (
    SELECT generate_series(
               date_trunc(%(unit)s, now() - %(window)s::interval),
               date_trunc(%(unit)s, now()),
               ('1 ' || %(unit)s)::interval
           ) AS interval_start
), finished AS (
    SELECT date_trunc(%(unit)s, finished_at) AS interval_start,
           count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE status = 'failed') AS failed
      FROM inkwell.requests
     WHERE finished_at >= date_trunc(%(unit)s, now() - %(window)s::interval)
     GROUP BY 1
)
SELECT intervals.interval_start,
       coalesce(finished.succeeded, 0) AS succeeded,
       coalesce(finished.failed, 0) AS failed
  FROM intervals
  LEFT JOIN finished USING (interval_start)
 ORDER BY intervals.interval_start

-- wait_and_run_times --
-- Median and p95 wait (due → first start) and run time (first start → end), in seconds, of requests that ran to an end in a recent window.
SELECT count(*) AS requests,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_seconds) AS wait_median,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_seconds) AS wait_p95,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY run_seconds) AS run_median,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY run_seconds) AS run_p95
  FROM (
    SELECT extract(epoch FROM started_at - greatest(created_at, coalesce(scheduled_at, created_at)))::float8 AS wait_seconds,
           extract(epoch FROM finished_at - started_at)::float8 AS run_seconds
      FROM inkwell.requests
     WHERE finished_at >= now() - %(window)s::interval AND status IN ('succeeded', 'failed')
  ) AS times

-- failures_by_error_code --
-- Requests that failed over a recent window, grouped by error code, most frequent first, with the latest message.
SELECT coalesce(error_code, 'unknown') AS error_code,
       count(*) AS failures,
       max(finished_at) AS last_failed_at,
       (array_agg(error_message ORDER BY finished_at DESC))[1] AS latest_message
  FROM inkwell.requests
 WHERE finished_at >= now() - %(window)s::interval AND status = 'failed'
 GROUP BY 1
 ORDER BY failures DESC, error_code

-- limit_lock_wait --
-- For the rest of the transaction, give up on a lock not granted within this time (e.g. '2s').
SELECT set_config('lock_timeout', %(lock_timeout)s, true)

-- roll_up_request_counts --
-- Count the UTC days that ended since the last roll-up and fold the changes recorded since (migration 0026); how many days were counted.
SELECT inkwell.roll_up_request_counts() AS days

-- recount_request_counts --
-- Count every day again from nothing, e.g. after a bulk load with triggers off; how many days were counted.
SELECT inkwell.recount_request_counts() AS days
