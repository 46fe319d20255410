-- A compact copy of the queue events of jobs that housekeeping removes from Procrastinate's tables
-- (procrastinate_jobs / procrastinate_events are kept small; Procrastinate deletes a job's events
-- with the job). The History timeline reads these alongside the live events, so a request's
-- timeline survives the queue clean-up. Same columns as procrastinate_events; id is its event id.
CREATE TABLE inkwell.job_events_archive (
    id          bigint PRIMARY KEY,
    job_id      bigint NOT NULL,
    type        text NOT NULL,
    at          timestamptz,
    archived_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE inkwell.job_events_archive IS
    'Events of queue jobs removed by housekeeping (inkwell.clean_up_queue), kept for request timelines.';

CREATE INDEX job_events_archive_job_id_idx ON inkwell.job_events_archive (job_id, at);
