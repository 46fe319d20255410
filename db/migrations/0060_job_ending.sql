-- One transaction ends a job: what it produced, its error, the job's new status and the attempt's
-- outcome commit together, written only by the job the request is linked to, under its current worker.
--
-- Before, runner.py stored a result (or an error) in one transaction and Procrastinate ended the job
-- in another: a worker killed between the two left a job re-queued whose work was done (the model
-- called again, or `failed` with a result), and an error written by request id alone could land on
-- a request the job did not own. queue_tasks/runner.py now calls these functions; the worker's
-- later finish_job / retry_job for such a job is skipped (job_manager.py).
--
-- Lock order, everywhere here: the request row, then the job row (as cancel_request does), so an
-- ending, a cancel and the stalled-job check never wait on each other in a circle.

-- Every attempt that did not succeed, with what really ended it (succeeded attempts are the
-- `succeeded` event). `counted` false: the attempt was given back (a model outage, model_outage.py).
CREATE TABLE inkwell.attempt_outcomes (
    id         bigserial PRIMARY KEY,
    request_id uuid NOT NULL REFERENCES inkwell.requests (id) ON DELETE CASCADE,
    job_id     bigint NOT NULL,
    worker_id  bigint,
    outcome    text NOT NULL,
    message    text NOT NULL DEFAULT '',
    counted    boolean NOT NULL DEFAULT true,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempt_outcomes_request ON inkwell.attempt_outcomes (request_id, id);
CREATE INDEX attempt_outcomes_job ON inkwell.attempt_outcomes (job_id);

-- The console shows them in a request's timeline, to whoever may see the request (0041's rules).
GRANT SELECT ON inkwell.attempt_outcomes TO inkwell_console;
ALTER TABLE inkwell.attempt_outcomes ENABLE ROW LEVEL SECURITY;
CREATE POLICY attempt_outcomes_read ON inkwell.attempt_outcomes FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst')
    OR EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.id = attempt_outcomes.request_id)
);

-- The model endpoint as every worker sees it, on every host: one row. `down_since` NULL: up.
-- Failures that an endpoint that is down gives (refused, time-out, 502/503/504) are counted in a row
-- across jobs; `down_after` of them mark it down. While down, fetches hold back the model jobs but
-- one per probe (inkwell.model_calls_held), with back-off; any model answer marks it up again.
CREATE TABLE inkwell.model_endpoint (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    down_since          timestamptz,
    failures_in_row     integer NOT NULL DEFAULT 0,
    streak_first_job_id bigint,
    last_error          text,
    next_probe_at       timestamptz,
    probe_wait_seconds  double precision NOT NULL DEFAULT 2,
    first_probe_seconds double precision NOT NULL DEFAULT 2,
    max_probe_seconds   double precision NOT NULL DEFAULT 30,
    down_after          integer NOT NULL DEFAULT 3,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO inkwell.model_endpoint DEFAULT VALUES;

COMMENT ON TABLE inkwell.model_endpoint IS
    'Whether the model endpoint is down (down_since), shared by all workers: while down, model jobs wait without spending attempts.';

-- The tasks that call the model endpoint: held back while it is down.
CREATE FUNCTION inkwell.is_model_task(p_task_name text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT p_task_name IN ('inkwell.generate_titles', 'inkwell.write_blog_post', 'inkwell.make_post_image',
                           'inkwell.analyse_website', 'inkwell.write_site_section')
$$;

-- The endpoint answered: it is up. Writes only when something changes.
CREATE FUNCTION inkwell.note_model_answered() RETURNS void
    LANGUAGE sql
AS $$
    UPDATE inkwell.model_endpoint
       SET down_since = NULL, failures_in_row = 0, streak_first_job_id = NULL, next_probe_at = NULL,
           probe_wait_seconds = first_probe_seconds, updated_at = now()
     WHERE failures_in_row > 0 OR down_since IS NOT NULL
$$;

-- Whether fetches hold back model jobs now. While the endpoint is down, the first fetch at or past
-- next_probe_at becomes the probe: it lets one model job through and pushes the next probe out,
-- doubling the wait up to max_probe_seconds. Concurrent fetches re-check the row after its lock.
CREATE FUNCTION inkwell.model_calls_held() RETURNS boolean
    LANGUAGE plpgsql
AS $$
DECLARE
    _down_since timestamptz;
    _next_probe_at timestamptz;
BEGIN
    SELECT down_since, next_probe_at INTO _down_since, _next_probe_at FROM inkwell.model_endpoint;
    IF _down_since IS NULL THEN
        RETURN false;
    END IF;
    IF _next_probe_at <= now() THEN
        UPDATE inkwell.model_endpoint
           SET next_probe_at = now() + make_interval(secs => probe_wait_seconds),
               probe_wait_seconds = least(probe_wait_seconds * 2, max_probe_seconds)
         WHERE down_since IS NOT NULL AND next_probe_at <= now();
        IF FOUND THEN
            RETURN false;
        END IF;
    END IF;
    RETURN true;
END;
$$;

-- inkwell.fetch_job_unless_paused (0004, Procrastinate 3.10's fetch plus the pause check), plus one
-- more condition: model jobs wait while the model endpoint is down.
CREATE FUNCTION inkwell.fetch_job_v2(
    target_queue_names character varying[],
    p_worker_id bigint
)
    RETURNS procrastinate_jobs
    LANGUAGE plpgsql
AS $$
DECLARE
	found_jobs procrastinate_jobs;
    _model_held boolean := inkwell.model_calls_held();
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
                -- inkwell: model jobs wait while the model endpoint is down
                AND NOT (_model_held AND inkwell.is_model_task(jobs.task_name))
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

-- The request and its job, locked, when the job is the one the request is linked to and still runs
-- under this worker; false otherwise (nothing locked that matters, nothing written).
CREATE FUNCTION inkwell.lock_own_job(p_request_id uuid, p_job_id bigint, p_worker_id bigint, OUT owned boolean,
                                     OUT abort_requested boolean, OUT job_attempts integer)
    LANGUAGE plpgsql
AS $$
BEGIN
    owned := false;
    PERFORM 1 FROM inkwell.requests WHERE id = p_request_id AND job_id = p_job_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT j.abort_requested, j.attempts INTO abort_requested, job_attempts FROM procrastinate_jobs AS j
     WHERE j.id = p_job_id AND j.status = 'doing' AND j.worker_id IS NOT DISTINCT FROM p_worker_id
       FOR UPDATE;
    owned := FOUND;
END;
$$;

-- A job succeeded: its result on the request and the job `succeeded`, together. False when the job
-- is not the request's or no longer runs under this worker (nothing written). p_model_answered: the
-- result came from the model endpoint, which is therefore up. Callers write the result's other rows
-- (post, entity version, image) in the same transaction, before this.
CREATE FUNCTION inkwell.finish_request_job(
    p_request_id uuid, p_job_id bigint, p_worker_id bigint, p_result jsonb, p_model_name text,
    p_offline_model boolean, p_tokens_used integer, p_model_answered boolean
) RETURNS boolean
    LANGUAGE plpgsql
AS $$
DECLARE
    _own record;
BEGIN
    SELECT * INTO _own FROM inkwell.lock_own_job(p_request_id, p_job_id, p_worker_id);
    IF NOT _own.owned THEN
        RETURN false;
    END IF;
    UPDATE inkwell.requests
       SET result = p_result, model_name = p_model_name, offline_model = p_offline_model,
           tokens_used = p_tokens_used, partial_text = NULL
     WHERE id = p_request_id;
    -- The status trigger (0002) sets status, progress, step, error and finished_at on the request.
    PERFORM procrastinate_finish_job_v1(p_job_id, 'succeeded', false);
    IF p_model_answered THEN
        PERFORM inkwell.note_model_answered();
    END IF;
    RETURN true;
END;
$$;

-- An attempt failed: its outcome, the error on the request and the job's next status, together.
-- p_retry_at: when to retry (NULL: no attempt left, or a permanent fault: the job fails).
-- p_endpoint_down: a failure an endpoint that is down gives; p_model_answered: the endpoint did
-- answer (a 429, a 500, a bad answer), so it is up; p_endpoint_not_answering: the worker asked the
-- endpoint after this failure and got no answer (an outage, not this request's fault). Returns the job's new status: `todo`, `failed`,
-- `aborted` (its cancellation was asked for), `held` (back in the queue, the attempt given back: the
-- model endpoint is down or other jobs fail the same way), or NULL when the job was not this
-- worker's to end (nothing written).
CREATE FUNCTION inkwell.end_failed_attempt(
    p_request_id uuid, p_job_id bigint, p_worker_id bigint, p_code text, p_message text,
    p_retry_at timestamptz, p_endpoint_down boolean, p_model_answered boolean, p_endpoint_not_answering boolean
) RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    _own record;
    _endpoint inkwell.model_endpoint;
    _held boolean := false;
BEGIN
    SELECT * INTO _own FROM inkwell.lock_own_job(p_request_id, p_job_id, p_worker_id);
    IF NOT _own.owned THEN
        RETURN NULL;
    END IF;

    IF p_endpoint_down THEN
        SELECT * INTO _endpoint FROM inkwell.model_endpoint FOR UPDATE;
        -- The first such failure in a row is this request's fault until others fail the same way, or
        -- the worker found the endpoint not answering at all (it asks before a request's last failure).
        _held := _endpoint.down_since IS NOT NULL OR _endpoint.failures_in_row > 0 OR p_endpoint_not_answering;
        UPDATE inkwell.model_endpoint
           SET failures_in_row = failures_in_row + 1,
               streak_first_job_id = CASE WHEN failures_in_row = 0 THEN p_job_id ELSE streak_first_job_id END,
               last_error = p_code,
               updated_at = now()
         RETURNING * INTO _endpoint;
        IF _endpoint.down_since IS NULL AND _endpoint.failures_in_row >= _endpoint.down_after THEN
            UPDATE inkwell.model_endpoint
               SET down_since = now(), probe_wait_seconds = first_probe_seconds,
                   next_probe_at = now() + make_interval(secs => first_probe_seconds);
            -- It was an outage after all: the first failure of the row gets its attempt back.
            IF _endpoint.streak_first_job_id IS DISTINCT FROM p_job_id THEN
                PERFORM inkwell.give_attempt_back(_endpoint.streak_first_job_id);
            END IF;
        END IF;
    ELSIF p_model_answered THEN
        PERFORM inkwell.note_model_answered();
    END IF;

    INSERT INTO inkwell.attempt_outcomes (request_id, job_id, worker_id, outcome, message, counted)
    VALUES (p_request_id, p_job_id, p_worker_id, p_code, p_message, NOT _held);

    IF _own.abort_requested THEN
        PERFORM procrastinate_finish_job_v1(p_job_id, 'aborted', false);
        UPDATE inkwell.requests SET error_code = p_code, error_message = p_message, eta_seconds = NULL
         WHERE id = p_request_id;
        RETURN 'aborted';
    END IF;
    IF _held THEN
        -- Back to the queue as Procrastinate's retry does, but without counting an attempt.
        UPDATE procrastinate_jobs
           SET status = 'todo', scheduled_at = coalesce(p_retry_at, now() + interval '1 second')
         WHERE id = p_job_id;
        UPDATE inkwell.requests
           SET attempts = greatest(0, attempts - 1), error_code = p_code, error_message = p_message,
               eta_seconds = NULL, current_step = 'Waiting for the model endpoint',
               -- queued, not "scheduled" (what the status trigger makes of a job of 0 attempts due later)
               status = 'queued'
         WHERE id = p_request_id;
        RETURN 'held';
    END IF;
    IF p_retry_at IS NOT NULL THEN
        PERFORM procrastinate_retry_job_v2(p_job_id, p_retry_at, NULL, NULL, NULL);
    ELSE
        PERFORM procrastinate_finish_job_v1(p_job_id, 'failed', false);
    END IF;
    UPDATE inkwell.requests SET error_code = p_code, error_message = p_message, eta_seconds = NULL
     WHERE id = p_request_id;
    RETURN CASE WHEN p_retry_at IS NOT NULL THEN 'todo' ELSE 'failed' END;
END;
$$;

-- A job waiting for its retry gets back the attempt its last failure cost (that failure was the
-- start of a model outage). Nothing for a job that is no longer waiting.
CREATE FUNCTION inkwell.give_attempt_back(p_job_id bigint) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE procrastinate_jobs SET attempts = attempts - 1
     WHERE id = p_job_id AND status = 'todo' AND attempts > 0;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE inkwell.requests SET attempts = greatest(0, attempts - 1) WHERE job_id = p_job_id;
    UPDATE inkwell.attempt_outcomes SET counted = false
     WHERE id = (SELECT max(id) FROM inkwell.attempt_outcomes WHERE job_id = p_job_id);
END;
$$;

-- A job whose worker stopped beating: re-queued while it has attempts left, else failed as
-- `worker_lost` with the number of attempts its worker really died on. Each death is an outcome.
-- Only while the job still runs under the silent worker. Returns the new status or NULL.
CREATE FUNCTION inkwell.end_stalled_job(p_job_id bigint, p_worker_id bigint, p_max_attempts integer)
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    _request_id uuid;
    _abort_requested boolean;
    _attempts integer;
    _deaths integer;
BEGIN
    SELECT id INTO _request_id FROM inkwell.requests WHERE job_id = p_job_id FOR UPDATE;
    SELECT abort_requested, attempts INTO _abort_requested, _attempts FROM procrastinate_jobs
     WHERE id = p_job_id AND status = 'doing' AND worker_id IS NOT DISTINCT FROM p_worker_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF _request_id IS NOT NULL THEN
        INSERT INTO inkwell.attempt_outcomes (request_id, job_id, worker_id, outcome, message)
        VALUES (_request_id, p_job_id, p_worker_id, 'worker_lost', 'The worker running this attempt stopped responding.');
    END IF;
    IF _abort_requested THEN
        PERFORM procrastinate_finish_job_v1(p_job_id, 'aborted', false);
        RETURN 'aborted';
    END IF;
    IF _attempts + 1 < p_max_attempts THEN
        PERFORM procrastinate_retry_job_v2(p_job_id, now(), NULL, NULL, NULL);
        RETURN 'todo';
    END IF;
    PERFORM procrastinate_finish_job_v1(p_job_id, 'failed', false);
    IF _request_id IS NOT NULL THEN
        SELECT count(*) INTO _deaths FROM inkwell.attempt_outcomes WHERE job_id = p_job_id AND outcome = 'worker_lost';
        UPDATE inkwell.requests
           SET error_code = 'worker_lost',
               error_message = format('The worker running this job stopped responding on its last attempt '
                                      '(%s of its %s attempts ended that way; the others are in the timeline).',
                                      _deaths, _attempts + 1),
               eta_seconds = NULL
         WHERE id = _request_id;
    END IF;
    RETURN 'failed';
END;
$$;

-- Rows of workers that stopped beating and have no running job left (the stalled-job check has
-- re-queued them). Procrastinate prunes silent workers only when a worker starts.
CREATE FUNCTION inkwell.prune_dead_workers(p_seconds double precision) RETURNS SETOF bigint
    LANGUAGE sql
AS $$
    DELETE FROM procrastinate_workers AS w
     WHERE w.last_heartbeat < now() - make_interval(secs => p_seconds)
       AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j WHERE j.worker_id = w.id AND j.status = 'doing')
    RETURNING w.id
$$;

-- What the console shows while the model endpoint is down: since when, and how many model jobs
-- wait. SECURITY DEFINER: the console's role reads no queue table (0041).
CREATE FUNCTION inkwell.model_outage(OUT down_since timestamptz, OUT waiting bigint, OUT last_error text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT e.down_since,
           (SELECT count(*) FROM public.procrastinate_jobs AS j
             WHERE j.status = 'todo' AND inkwell.is_model_task(j.task_name)),
           e.last_error
      FROM inkwell.model_endpoint AS e
     WHERE e.down_since IS NOT NULL
$$;

-- Every cancel is audited with who asked. The console audits its own (request.cancelled, with the
-- signed-in user); anything else — psql, Procrastinate's CLI, a script as the owner — is audited
-- here with the database role.
CREATE FUNCTION inkwell.audit_job_cancel() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF inkwell.acting_user_id() IS NULL THEN
        PERFORM inkwell.audit(
            CASE WHEN NEW.status = 'cancelled' THEN 'job.cancelled' ELSE 'job.abort_requested' END,
            'job', NEW.id::text,
            jsonb_build_object('database_role', session_user, 'request_id', NEW.args ->> 'request_id',
                               'task', NEW.task_name));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_audit_job_cancel
    AFTER UPDATE OF status, abort_requested ON procrastinate_jobs
    FOR EACH ROW
    WHEN ((NEW.abort_requested AND NOT OLD.abort_requested)
          OR (NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled'))
    EXECUTE FUNCTION inkwell.audit_job_cancel();
