-- Indexes for the History page's filters and the Overview's time windows.
--
-- History lists requests newest first by (created_at DESC, id DESC) and pages with a keyset on that
-- pair, so every index a History filter uses ends in those two columns: the scan returns rows
-- already in page order and stops after one page, whatever the table's size.
--
--   no filter, date range, kind   -> requests_created_at_idx (0001). Kinds are few (one today), so a
--                                    kind index would not narrow anything; the date range is a range
--                                    on that index's leading column.
--   status (when narrower than    -> requests_status_created_idx
--   the default finished three)
--   requester                     -> requests_requester_created_idx (case-insensitive match)
--   text in topic or result       -> requests_search_trgm_idx (trigram GIN; the matches are then
--                                    sorted, which is cheap for a selective search)
--
-- The Overview's "last hour / last day" figures and the per-queue "failed in the last hour" read
-- requests_finished_at_idx.
--
-- None of these columns changes while a job streams progress (progress, current_step, partial_text,
-- updated_at), so those frequent updates stay HOT and do not touch these indexes.

CREATE INDEX requests_status_created_idx ON inkwell.requests (status, created_at DESC, id DESC);

CREATE INDEX requests_requester_created_idx ON inkwell.requests (lower(requested_by), created_at DESC, id DESC);

CREATE INDEX requests_finished_at_idx ON inkwell.requests (finished_at) WHERE finished_at IS NOT NULL;

-- What the History text filter searches: the topic and the titles of the result, one per line.
-- Only the titles, not the whole result document, so a search for "model" does not match every row.
CREATE FUNCTION inkwell.request_search_text(input jsonb, result jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(input ->> 'topic', '') || E'\n' || coalesce(
        (SELECT string_agg(title, E'\n')
           FROM jsonb_array_elements_text(
                    CASE jsonb_typeof(result -> 'titles') WHEN 'array' THEN result -> 'titles' END
                ) AS title),
        '')
$$;

-- pg_trgm ships with PostgreSQL's contrib (the embedded server has it) and is a trusted extension,
-- so the database owner may create it. A server without contrib still gets a working text filter
-- (ILIKE), only without an index: a sequential scan, fine for small histories.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX requests_search_trgm_idx ON inkwell.requests
            USING gin (inkwell.request_search_text(input, result) gin_trgm_ops);
    ELSE
        RAISE NOTICE 'pg_trgm is not available: the History text filter will scan instead of using an index';
    END IF;
END;
$$;
