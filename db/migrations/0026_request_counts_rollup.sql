-- The Overview's "requests by status" without counting every request (bench/history_scale.py,
-- 1,000,000 requests: an index-only scan of all of them, 126–458 ms on 2 cores).
--
-- Requests created before inkwell.request_counts_rollup.counted_before (a UTC day) are counted in
-- inkwell.request_counts_by_day, per UTC day of creation and status; the others, today's, are
-- counted live from requests_status_created_idx. inkwell.count_requests_by_status() adds both up
-- in one snapshot: the exact count.
--
-- Nothing is written on a job's way through the queue: a request is created today, and changes of
-- today's requests are never recorded here. A change of an older request (a retry of last week's
-- failure, a job still running at midnight, housekeeping deleting old history) appends one
-- `-1` row for what it was and one `+1` row for what it is now: appended rows, no shared counter
-- row for concurrent workers to wait on. The periodic task inkwell.roll_up_request_counts
-- (queue_tasks/request_counts.py) counts each day once it has ended and folds the appended rows.
--
-- Day boundaries are UTC: the rollup is the same for every viewer and every server time zone.

CREATE FUNCTION inkwell.utc_day(at timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (at AT TIME ZONE 'UTC')::date $$;

CREATE FUNCTION inkwell.utc_day_start(day date) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT day::timestamp AT TIME ZONE 'UTC' $$;

-- The wall clock, not the transaction's start: a writer that waited for the roll-up's lock sees
-- the day the roll-up counted up to (see inkwell.roll_up_request_counts).
CREATE FUNCTION inkwell.utc_today_start() RETURNS timestamptz
    LANGUAGE sql VOLATILE
AS $$ SELECT date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' $$;

CREATE TABLE inkwell.request_counts_by_day (
    day      date NOT NULL,
    status   text NOT NULL,
    -- A day's count, or a change to it; the rows of one day and status add up.
    requests bigint NOT NULL
);
CREATE INDEX request_counts_by_day_idx ON inkwell.request_counts_by_day (day, status);
COMMENT ON TABLE inkwell.request_counts_by_day IS
    'Requests per UTC day of creation and status, for the days before request_counts_rollup.counted_before; rows of one day and status add up (migration 0026).';

CREATE TABLE inkwell.request_counts_rollup (
    only_row       boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- Requests created before this UTC day are counted in request_counts_by_day.
    counted_before date NOT NULL,
    rolled_up_at   timestamptz
);
INSERT INTO inkwell.request_counts_rollup (counted_before) VALUES ('-infinity');

-- The rollup counts every requester's requests. Readers subject to row-level security on
-- inkwell.requests must not see it unless they may read every request: with row-level security on
-- and no policy, only the owner (workers, migrations) sees its rows, and everyone else's counts
-- come from the requests they may read (inkwell.count_requests_by_status). To let a console role
-- use it: GRANT SELECT on both tables, and a policy for the readers who see every request.
ALTER TABLE inkwell.request_counts_by_day ENABLE ROW LEVEL SECURITY;
ALTER TABLE inkwell.request_counts_rollup ENABLE ROW LEVEL SECURITY;

-- A request created before today was inserted, changed status or moved to another day.
-- SECURITY DEFINER (as all three trigger functions): whoever may change a request records the
-- change, without rights of their own on the rollup.
CREATE FUNCTION inkwell.count_change_of_older_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO inkwell.request_counts_by_day (day, status, requests)
        VALUES (inkwell.utc_day(OLD.created_at), OLD.status, -1);
    END IF;
    INSERT INTO inkwell.request_counts_by_day (day, status, requests)
    VALUES (inkwell.utc_day(NEW.created_at), NEW.status, 1);
    RETURN NULL;
END;
$$;

-- Rows changed today only for today's day are not recorded (the live count sees them); an older
-- day's changes are recorded whether or not that day is rolled up yet: the roll-up drops the ones
-- of the days it counts afresh.
CREATE TRIGGER inkwell_count_inserted_older_request
    AFTER INSERT ON inkwell.requests
    FOR EACH ROW
    WHEN (NEW.created_at < inkwell.utc_today_start())
    EXECUTE FUNCTION inkwell.count_change_of_older_request();

-- Progress writes do not name these columns, so they never reach this trigger.
CREATE TRIGGER inkwell_count_changed_older_request
    AFTER UPDATE OF status, created_at ON inkwell.requests
    FOR EACH ROW
    WHEN ((OLD.status IS DISTINCT FROM NEW.status OR OLD.created_at IS DISTINCT FROM NEW.created_at)
          AND least(OLD.created_at, NEW.created_at) < inkwell.utc_today_start())
    EXECUTE FUNCTION inkwell.count_change_of_older_request();

-- Deletes come in bulk (history retention): one row per day and status, per statement.
CREATE FUNCTION inkwell.count_deleted_older_requests() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO inkwell.request_counts_by_day (day, status, requests)
    SELECT inkwell.utc_day(created_at), status, -count(*)
      FROM deleted_requests
     WHERE created_at < inkwell.utc_today_start()
     GROUP BY 1, 2;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_count_deleted_older_requests
    AFTER DELETE ON inkwell.requests
    REFERENCING OLD TABLE AS deleted_requests
    FOR EACH STATEMENT
    EXECUTE FUNCTION inkwell.count_deleted_older_requests();

CREATE FUNCTION inkwell.forget_request_counts() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    DELETE FROM inkwell.request_counts_by_day;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inkwell_forget_request_counts
    AFTER TRUNCATE ON inkwell.requests
    FOR EACH STATEMENT
    EXECUTE FUNCTION inkwell.forget_request_counts();

-- Count the days that ended since the last roll-up, then fold the appended changes into one row
-- per day and status. Returns how many days were counted.
--
-- While it counts, writers of inkwell.requests wait (SHARE ROW EXCLUSIVE: a few milliseconds for
-- a day's requests, once a day): every change made before is in the count, every change after
-- sees the new day (inkwell.utc_today_start() reads the clock after the wait) and is appended.
-- The caller sets lock_timeout, so a long transaction holding the table delays the roll-up instead
-- of the workers queueing behind it.
CREATE FUNCTION inkwell.roll_up_request_counts() RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    counted_from date;
    counted_to   date;
    days         integer := 0;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- Under a snapshot taken before the lock, the count would miss the changes it waited for.
        RAISE EXCEPTION 'inkwell.roll_up_request_counts() runs under READ COMMITTED';
    END IF;
    SELECT counted_before INTO counted_from FROM inkwell.request_counts_rollup FOR UPDATE;
    IF counted_from < inkwell.utc_day(clock_timestamp()) THEN
        LOCK TABLE inkwell.requests IN SHARE ROW EXCLUSIVE MODE;
        counted_to := inkwell.utc_day(clock_timestamp());
        DELETE FROM inkwell.request_counts_by_day WHERE day >= counted_from AND day < counted_to;
        WITH counted AS (
            INSERT INTO inkwell.request_counts_by_day (day, status, requests)
            SELECT inkwell.utc_day(created_at), status, count(*)
              FROM inkwell.requests
             WHERE created_at >= inkwell.utc_day_start(counted_from)
               AND created_at < inkwell.utc_day_start(counted_to)
             GROUP BY 1, 2
            RETURNING day
        )
        SELECT count(DISTINCT day) INTO days FROM counted;
        UPDATE inkwell.request_counts_rollup SET counted_before = counted_to, rolled_up_at = now();
        counted_from := counted_to;
    END IF;
    -- Changes recorded for days not rolled up yet (a job created yesterday that ended before the
    -- roll-up ran) are counted live meanwhile, and afresh when their day is rolled up.
    DELETE FROM inkwell.request_counts_by_day WHERE day >= counted_from;
    -- Rows appended meanwhile are not deleted here, so they stay and still add up.
    WITH folded AS (
        DELETE FROM inkwell.request_counts_by_day AS c
         WHERE (c.day, c.status) IN (SELECT day, status FROM inkwell.request_counts_by_day
                                      GROUP BY day, status HAVING count(*) > 1)
        RETURNING c.day, c.status, c.requests
    )
    INSERT INTO inkwell.request_counts_by_day (day, status, requests)
    SELECT day, status, sum(requests) FROM folded GROUP BY day, status HAVING sum(requests) <> 0;
    RETURN days;
END;
$$;

-- Requests per status, exactly, as the caller may see them: the rolled-up days plus a live count of
-- the requests created since, when the caller may read the rollup; otherwise every request the
-- caller may read, counted live. STABLE: every statement inside reads the calling statement's
-- snapshot, so a roll-up committing meanwhile is seen by both parts or by neither.
CREATE FUNCTION inkwell.count_requests_by_status() RETURNS TABLE (status text, requests bigint)
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    counted_before date;
BEGIN
    IF has_table_privilege('inkwell.request_counts_rollup', 'SELECT')
       AND has_table_privilege('inkwell.request_counts_by_day', 'SELECT') THEN
        SELECT r.counted_before INTO counted_before FROM inkwell.request_counts_rollup AS r;
    END IF;
    IF counted_before IS NULL THEN
        RETURN QUERY SELECT r.status, count(*) FROM inkwell.requests AS r GROUP BY r.status;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT by_status.status, sum(by_status.requests)::bigint
      FROM (SELECT c.status, c.requests
              FROM inkwell.request_counts_by_day AS c
             WHERE c.day < counted_before
            UNION ALL
            -- One range of requests_status_created_idx per status.
            SELECT s.status, (SELECT count(*)
                                FROM inkwell.requests AS r
                               WHERE r.status = s.status AND r.created_at >= inkwell.utc_day_start(counted_before))
              FROM unnest(ARRAY['scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled']) AS s(status)
           ) AS by_status
     GROUP BY by_status.status
    HAVING sum(by_status.requests) > 0;
END;
$$;

-- Count again from nothing: after a bulk load with triggers off (session_replication_role =
-- replica, as bench/history_scale.py loads), or to check the rollup.
CREATE FUNCTION inkwell.recount_request_counts() RETURNS integer
    LANGUAGE plpgsql
AS $$
BEGIN
    LOCK TABLE inkwell.requests IN SHARE ROW EXCLUSIVE MODE;
    UPDATE inkwell.request_counts_rollup SET counted_before = '-infinity';
    DELETE FROM inkwell.request_counts_by_day;
    RETURN inkwell.roll_up_request_counts();
END;
$$;

SELECT inkwell.roll_up_request_counts();
