-- Inkwell's own tables live in the `inkwell` schema; Procrastinate's stay in `public`.
-- `inkwell.requests` is a public interface: analysts query it directly (see README, "Data").
CREATE SCHEMA IF NOT EXISTS inkwell;

CREATE TABLE inkwell.requests (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL,
    input            jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress         smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    current_step     text NOT NULL DEFAULT 'Queued',
    eta_seconds      integer CHECK (eta_seconds >= 0),
    -- Model output received so far while a job streams; cleared when the result is stored.
    partial_text     text,
    result           jsonb,
    model_name       text,
    offline_model    boolean,
    error_code       text,
    error_message    text,
    attempts         integer NOT NULL DEFAULT 0,
    requested_by     text NOT NULL,
    queue_name       text NOT NULL DEFAULT 'default',
    scheduled_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- The Procrastinate job now carrying this request; earlier ones (a cancelled job that was
    -- retried gets a new job) stay in previous_job_ids so their events remain reachable.
    job_id           bigint UNIQUE,
    previous_job_ids bigint[] NOT NULL DEFAULT '{}'
);

COMMENT ON TABLE inkwell.requests IS
    'One row per thing a user asked the model for. Status mirrors procrastinate_jobs (trigger inkwell.sync_request_from_job).';

-- Newest-first listings (recent requests, history pages) walk this index.
CREATE INDEX requests_created_at_idx ON inkwell.requests (created_at DESC, id DESC);
-- Live views read only the unfinished rows: a small partial index however large the history.
CREATE INDEX requests_unfinished_idx ON inkwell.requests (created_at)
    WHERE status IN ('scheduled', 'queued', 'running');
