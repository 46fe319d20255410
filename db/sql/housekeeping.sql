-- archive_finished_job_events --
-- Copy the events of jobs finished longer ago than a cut-off into the archive (again is harmless).
INSERT INTO inkwell.job_events_archive (id, job_id, type, at)
SELECT e.id, e.job_id, e.type::text, e.at
  FROM procrastinate_events e
 WHERE e.job_id IN (
        SELECT job.id
          FROM (SELECT DISTINCT ON (j.id) j.id, j.status, ev.at AS latest_at
                  FROM procrastinate_jobs j
                  JOIN procrastinate_events ev ON ev.job_id = j.id
                 ORDER BY j.id, ev.at DESC) AS job
         WHERE job.status = ANY(%(statuses)s::procrastinate_job_status[])
           AND job.latest_at < now() - make_interval(hours => %(older_than_hours)s))
ON CONFLICT (id) DO NOTHING

-- delete_old_history --
-- Remove finished requests older than the history retention, with their archived events; requests
-- that made a saved post or its image, or a site build's sections and promotions, stay (posts,
-- batches and content versions link to them).
WITH old AS (
    DELETE FROM inkwell.requests r
     WHERE r.status IN ('succeeded', 'failed', 'cancelled')
       AND r.finished_at < now() - make_interval(secs => %(older_than_seconds)s)
       AND NOT EXISTS (SELECT 1 FROM inkwell.posts p WHERE p.request_id = r.id OR p.image_request_id = r.id)
       AND NOT EXISTS (SELECT 1 FROM inkwell.post_images i WHERE i.request_id = r.id)
       AND r.kind NOT IN ('site_section', 'site_promotion')
    RETURNING r.job_id, r.previous_job_ids
), archived AS (
    DELETE FROM inkwell.job_events_archive a
     USING old
     WHERE a.job_id = old.job_id OR a.job_id = ANY(old.previous_job_ids)
    RETURNING a.id
)
SELECT (SELECT count(*) FROM old) AS requests, (SELECT count(*) FROM archived) AS events
