-- The database refuses what the console never does, whoever writes the SQL on its connection.
--
-- The console (inkwell_console, 0041) submits requests with their jobs in one statement, cancels
-- and retries; it never sets a job's priority, writes queue events, queues a job without a request
-- or stores a request that is already finished. Each of those is now refused here:
--
--   * requests: inserted only as queued or scheduled, with a job, without results, errors,
--     attempts, credits or start/finish times (column privileges + the insert policy), and at
--     commit their job must be that request's job, waiting (a deferred trigger);
--   * jobs: inserted only waiting ('todo', no worker, no attempts) at most at the fair-share
--     priority a new submission gets (0045), never re-prioritised later, and at commit each
--     must carry a request (deferred trigger);
--   * queue events: written only by Procrastinate's own triggers, which now run with the owner's
--     rights; inkwell_console has no INSERT privilege on procrastinate_events any more.
--
-- The checks name inkwell_console: workers, housekeeping and the owner are not limited by them.

-- --- requests --------------------------------------------------------------------------------
REVOKE INSERT ON inkwell.requests FROM inkwell_console;
GRANT INSERT (id, kind, input, status, current_step, requested_by, queue_name, scheduled_at, job_id)
    ON inkwell.requests TO inkwell_console;

ALTER POLICY requests_submit ON inkwell.requests
WITH CHECK (
    (SELECT inkwell.acting_role()) IN ('editor', 'operator', 'admin')
    AND user_id = (SELECT inkwell.acting_user_id())
    AND organization_id IS NOT DISTINCT FROM (SELECT inkwell.acting_organization_id())
    AND status IN ('queued', 'scheduled')
    AND job_id IS NOT NULL
);

-- At commit: the request's job exists, is waiting, and carries this request.
CREATE FUNCTION inkwell.check_console_request_has_its_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.procrastinate_jobs AS j
                    WHERE j.id = NEW.job_id AND j.args ->> 'request_id' = NEW.id::text) THEN
        RAISE EXCEPTION 'A request is queued only with its own job (request %).', NEW.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER console_request_has_its_job
AFTER INSERT ON inkwell.requests
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (current_user = 'inkwell_console')  -- evaluated at the insert, not deferred
EXECUTE FUNCTION inkwell.check_console_request_has_its_job();

-- --- jobs ------------------------------------------------------------------------------------

-- The highest priority any new submission gets from inkwell.fair_share_priority (0045): its
-- submitter's backlog and its size are at least 0 and 1, and its clock is not before now().
CREATE FUNCTION inkwell.highest_new_job_priority() RETURNS integer
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT (-least(1 + floor(extract(epoch FROM now() - timestamptz '2026-01-01 00:00:00+00'))::bigint,
                   2147483647))::integer
$$;

-- Invoker's rights: current_user is whoever changes the job.
CREATE FUNCTION inkwell.refuse_console_job_writes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF current_user <> 'inkwell_console' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'todo' OR NEW.worker_id IS NOT NULL OR NEW.attempts <> 0 THEN
            RAISE EXCEPTION 'A new job is queued waiting, with no worker and no attempts.'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.priority > inkwell.highest_new_job_priority() THEN
            RAISE EXCEPTION 'A new job gets its fair-share priority (at most %), not %.',
                inkwell.highest_new_job_priority(), NEW.priority
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF NEW.priority IS DISTINCT FROM OLD.priority THEN
        RAISE EXCEPTION 'A job''s priority is set by fair sharing when it is queued; it cannot be changed.'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER inkwell_refuse_console_job_writes
BEFORE INSERT OR UPDATE ON public.procrastinate_jobs
FOR EACH ROW EXECUTE FUNCTION inkwell.refuse_console_job_writes();

-- At commit: a job the console queued carries a request (no bare jobs).
CREATE FUNCTION inkwell.check_console_job_has_a_request() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.job_id = NEW.id) THEN
        RAISE EXCEPTION 'A job is queued only for a request (job %).', NEW.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER console_job_has_a_request
AFTER INSERT ON public.procrastinate_jobs
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (current_user = 'inkwell_console')
EXECUTE FUNCTION inkwell.check_console_job_has_a_request();

-- --- queue events ----------------------------------------------------------------------------
-- Procrastinate's triggers write the events of a defer, cancel or retry: with the owner's rights
-- now, so the console needs (and has) no INSERT privilege of its own.
ALTER FUNCTION public.procrastinate_trigger_function_status_events_insert_v1() SECURITY DEFINER SET search_path = public, pg_catalog;
ALTER FUNCTION public.procrastinate_trigger_function_status_events_update_v1() SECURITY DEFINER SET search_path = public, pg_catalog;
ALTER FUNCTION public.procrastinate_trigger_function_scheduled_events_v1() SECURITY DEFINER SET search_path = public, pg_catalog;
ALTER FUNCTION public.procrastinate_trigger_abort_requested_events_procedure_v1() SECURITY DEFINER SET search_path = public, pg_catalog;
REVOKE INSERT ON public.procrastinate_events FROM inkwell_console;
REVOKE USAGE ON SEQUENCE public.procrastinate_events_id_seq FROM inkwell_console;
DROP POLICY events_record ON public.procrastinate_events;
