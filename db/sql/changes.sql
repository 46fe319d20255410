-- change_counters --
-- Every list's change counter (migration 0090): one call, no table read.
SELECT requests, request_status, posts, site_builds FROM inkwell.change_counters()
