-- History filtered by kind and one status, and its capped count, from one index range
-- (bench/history_scale.py, 1,000,000 requests).
--
-- 0015's requests_kind_created_idx (kind, created_at DESC, id DESC) gave a kind's rows in page
-- order but not their status: "failed site sections" (0.45 % of requests) meant reading every site
-- section (5 %) and fetching each row to check its status. With status as the second key column,
-- kind + one status is one range, in page order (db/sql/history.sql writes a single status as an
-- equality for this), and the capped count is an index-only scan of that range. On the
-- benchmark's data, wall time on a machine shared at load average 7–14 (before: p50 of 3 in a
-- benchmark run; after: median of 5):
--   failed / site_section, count to 10,001:        514 ms → 6 ms
--   failed / titles / a common word, first page:   349 ms → 10 ms
-- A kind with several statuses (the default: the three finished ones) pages on
-- requests_created_at_idx, reading ~20 rows per row shown for a 5 % kind (2–5 ms a page in the
-- benchmark); its count reads this index's three ranges, index-only.
--
-- The index replaces 0015's: a status change (not a HOT update) writes one entry per index, and
-- the number of indexes stays as it was. Built under a lock that blocks writes (~9 s per million
-- requests here); on a large live database, build it first by hand without blocking writers:
--   CREATE INDEX CONCURRENTLY requests_kind_status_created_idx ON inkwell.requests (kind, status, created_at DESC, id DESC);
-- and this migration then only drops the old one.
CREATE INDEX IF NOT EXISTS requests_kind_status_created_idx
    ON inkwell.requests (kind, status, created_at DESC, id DESC);
DROP INDEX IF EXISTS inkwell.requests_kind_created_idx;
