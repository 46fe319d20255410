-- "Run now" for a request waiting for a later time: a scheduled one, or one waiting to retry. Its job
-- becomes due at once, workers are woken (Procrastinate notifies on insert only), and the request
-- says it is queued; audited as request.run_now.
--
-- With the caller's rights: row-level security (0041) decides who may, as for cancel and retry — the
-- job's update passes jobs_act, the request's requests_act (an editor's own requests, any request
-- for operators and admins; analysts none). A request the caller may not change, or one not waiting
-- for a later time, is left alone and NULL comes back. db/ (queue_tasks/actions.py) locks the request
-- first, under the same policies, to say why not.
GRANT UPDATE (scheduled_at) ON inkwell.requests TO inkwell_console;

CREATE FUNCTION inkwell.run_request_now(p_request_id uuid) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    _job_id bigint;
    _queue text;
    _was timestamptz;
    _attempts integer;
    _kind text;
BEGIN
    SELECT j.id, j.queue_name, j.scheduled_at, j.attempts, r.kind
      INTO _job_id, _queue, _was, _attempts, _kind
      FROM inkwell.requests AS r
      JOIN public.procrastinate_jobs AS j ON j.id = r.job_id
     WHERE r.id = p_request_id AND j.status = 'todo' AND j.scheduled_at > now()
       FOR UPDATE OF j;
    IF _job_id IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE public.procrastinate_jobs SET scheduled_at = now() WHERE id = _job_id AND status = 'todo';
    IF NOT FOUND THEN
        RETURN NULL;  -- row-level security: not the caller's to change
    END IF;
    UPDATE inkwell.requests
       SET status = 'queued', current_step = 'Queued', updated_at = now(),
           scheduled_at = CASE WHEN _attempts = 0 THEN now() ELSE scheduled_at END
     WHERE id = p_request_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Only the person who submitted this request, an operator or an admin can run it now.'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM inkwell.audit('request.run_now', 'request', p_request_id::text,
                          jsonb_build_object('kind', _kind, 'job_id', _job_id, 'was_due_at', _was,
                                             'waiting_to_retry', _attempts > 0));
    PERFORM pg_notify('procrastinate_queue_v1#' || _queue, json_build_object('type', 'job_inserted', 'job_id', _job_id)::text);
    PERFORM pg_notify('procrastinate_any_queue_v1', json_build_object('type', 'job_inserted', 'job_id', _job_id)::text);
    RETURN _job_id;
END;
$$;
