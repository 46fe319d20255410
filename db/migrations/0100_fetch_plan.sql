-- The job fetch keeps its one cheap plan whatever the queue tables' statistics say.
--
-- Cause of the intermittent fetch stalls (bench/refill.py, bench/RESULTS.md "Performance, round
-- two"): the queue tables go from thousands of rows to none and back (a burst, then housekeeping).
-- Statistics taken while the table was empty, or while every row was finished, tell the planner
-- that `status = 'todo'` matches one row. It then plans the fetch (inkwell.fetch_job_v2, the copy of
-- Procrastinate's procrastinate_fetch_job_v2) in one of two ways that read every waiting job of the
-- queue on every fetch, instead of the first entry of procrastinate_jobs_priority_idx_v1:
--   1. Bitmap Heap Scan on (status, queue_name) → Sort on (priority DESC, id) → Limit 1: all
--      todo rows of the queue read and sorted per fetch (EXPLAIN: actual rows=500 under the Sort);
--   2. the NOT EXISTS lock check as a Nested Loop Anti Join whose inner side scans
--      procrastinate_jobs_id_lock_idx_v1 (id, lock) without an index condition: every todo and
--      doing row per fetch (EXPLAIN: Rows Removed by Join Filter: 2000).
-- Either is O(queue length) per fetch, so O(n²) per burst, and dead row versions (not yet vacuumed)
-- are visited too; PL/pgSQL keeps the plan for the connection's life until the next ANALYZE.
--
-- 1. Within the fetch function sorting is off: the only plan left without a Sort is the ordered scan
--    of procrastinate_jobs_priority_idx_v1 (priority DESC, id) WHERE status = 'todo', stopping at the
--    first job it can lock. (A function's SET clause applies while it runs; CREATE OR REPLACE of the
--    function would drop it, so a later migration that redefines it must set it again.)
-- 2. Autovacuum analyzes and vacuums the queue tables after a fixed number of changed rows rather
--    than a fraction of a size that swings from 0 to thousands: statistics follow a refill within a
--    minute (autovacuum_naptime), and dead versions do not pile up in the indexes the fetch walks.
--    That is what corrects shape 2 (the function's body is Procrastinate's, kept as is; a partial
--    index on `lock` for the check was tried and the planner, believing the table held one row,
--    did not pick it).
ALTER FUNCTION inkwell.fetch_job_v2(character varying[], bigint) SET enable_sort = off;

ALTER TABLE procrastinate_jobs SET (
    autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500,
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_vacuum_insert_threshold = 1000
);
ALTER TABLE procrastinate_events SET (
    autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 2000,
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_vacuum_insert_threshold = 2000
);
ALTER TABLE inkwell.requests SET (
    autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500,
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000
);
