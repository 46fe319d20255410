-- The History text filter reads a stored column instead of re-deriving its text from two JSONB
-- documents for every candidate row (bench/history_scale.py, 1,000,000 requests: a common word's
-- capped count spent 744 ms of its 830 ms in inkwell.request_search_text).
--
-- search_text holds what 0003's inkwell.request_search_text(input, result) returns: the topic and
-- the result's titles, one per line. A trigger computes it when a request is inserted and when an
-- update sets input or result (storing the result, once per attempt), and at no other write:
-- not on progress writes (several per job), not on status changes (three per job).
--
-- Why a trigger and not a generated column: PostgreSQL computes a stored generated column again on
-- every UPDATE of a table that has any BEFORE UPDATE row trigger (0045 adds one), progress writes
-- included. The column is filled once by a generated column's table rewrite (compact: no dead row
-- per request, as an UPDATE of every row would leave), which then becomes a plain column.
--
-- 0003's trigram index was on the expression, so every update that could not stay HOT (each
-- status change: status is indexed) evaluated the function again for the index entry; the index on
-- the column copies the stored value. Same index name, so plans and tests read the same.
--
-- The rewrite (and the index rebuild) takes an exclusive lock on inkwell.requests: 14 min for the
-- benchmark's million requests on a busy 2-core machine (load average 13–24, maintenance_work_mem
-- 64 MB). On a large live database, run it in a maintenance window, with more memory
-- (deploy/README.md).
ALTER TABLE inkwell.requests
    ADD COLUMN search_text text NOT NULL
        GENERATED ALWAYS AS (inkwell.request_search_text(input, result)) STORED;
ALTER TABLE inkwell.requests ALTER COLUMN search_text DROP EXPRESSION;

COMMENT ON COLUMN inkwell.requests.search_text IS
    'What the History text filter searches: the topic and the result''s titles, one per line (trigger inkwell_set_search_text).';

CREATE FUNCTION inkwell.set_request_search_text() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.search_text := inkwell.request_search_text(NEW.input, NEW.result);
    RETURN NEW;
END;
$$;

CREATE TRIGGER inkwell_set_search_text
    BEFORE INSERT OR UPDATE OF input, result ON inkwell.requests
    FOR EACH ROW
    EXECUTE FUNCTION inkwell.set_request_search_text();
-- Also during bulk loads with session_replication_role = replica (bench/history_scale.py): the
-- column is derived data, never loaded.
ALTER TABLE inkwell.requests ENABLE ALWAYS TRIGGER inkwell_set_search_text;

DROP INDEX IF EXISTS inkwell.requests_search_trgm_idx;

-- A GIN index takes new entries into a pending list that every search reads in full until it is
-- merged (at 4 MB by default, or by vacuum). Each non-HOT update of a request with titles adds
-- hundreds of trigrams, so with the default a text search read up to 4 MB of unmerged entries: a
-- word found in 10 of 5,000 freshly written requests took 6.8 ms (a sequential scan, the planner's
-- choice) instead of 0.2 ms, and writing 5,000 requests was no faster (8.4–9.0 s vs 7.7–7.8 s
-- with 512 kB here; fastupdate off: 32 s).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX requests_search_trgm_idx ON inkwell.requests
            USING gin (search_text gin_trgm_ops) WITH (gin_pending_list_limit = 512);
    ELSE
        RAISE NOTICE 'pg_trgm is not installed: the History text filter will scan instead of using an index';
    END IF;
END;
$$;
