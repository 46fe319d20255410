-- Fewer row versions of inkwell.requests per job: PostgreSQL CPU per job (bench/peers.py,
-- bench/RESULTS.md "Performance, round two").
--
-- Before, a titles job wrote its request row five times: `running` (status trigger), about two
-- progress writes, the result, and `succeeded` (status trigger, in the same transaction as the
-- result). Every version that changes an indexed column (status, finished_at, search_text) adds an
-- entry to each of the table's eleven indexes, the trigram GIN index among them; a progress write
-- changes no indexed column, but with full pages it could not stay on its page (HOT) either.
--
-- 1. The finishing transaction writes the request once: the result and the `succeeded` state (the
--    very values the status trigger of 0002 sets for `succeeded`) in one UPDATE. The status
--    trigger's own UPDATE then changes nothing, and 2. drops it.
-- 2. An UPDATE of inkwell.requests that changes nothing is skipped (PostgreSQL's
--    suppress_redundant_updates_trigger, named to run after the other BEFORE UPDATE triggers): no
--    row version, no index entries, no AFTER triggers. Any writer benefits (a progress write that
--    repeats the last one, too).
-- 3. Pages keep 20 % free, so progress writes (no indexed column) stay HOT: no index entries.
--    Applies to pages written from now on.
ALTER TABLE inkwell.requests SET (fillfactor = 80);

CREATE TRIGGER inkwell_zz_skip_unchanged_request
    BEFORE UPDATE ON inkwell.requests
    FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();

CREATE OR REPLACE FUNCTION inkwell.finish_request_job(
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
    -- What it produced and what the status trigger (0002) would set for `succeeded`, in one row
    -- version; the trigger's UPDATE below then finds nothing to change and is skipped.
    UPDATE inkwell.requests
       SET result = p_result, model_name = p_model_name, offline_model = p_offline_model,
           tokens_used = p_tokens_used, partial_text = NULL,
           status = 'succeeded', current_step = 'Done', progress = 100, eta_seconds = NULL,
           error_code = NULL, error_message = NULL, finished_at = now(), updated_at = now()
     WHERE id = p_request_id;
    PERFORM procrastinate_finish_job_v1(p_job_id, 'succeeded', false);
    IF p_model_answered THEN
        PERFORM inkwell.note_model_answered();
    END IF;
    RETURN true;
END;
$$;
