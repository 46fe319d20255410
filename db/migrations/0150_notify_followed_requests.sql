-- Live changes are announced only for requests an event stream follows.
--
-- 0080's trigger sent `NOTIFY inkwell_request_changes` on every visible change of every request: at
-- each job's start, each progress write and its end, whether or not any API process listened. A
-- NOTIFY is not free: at commit PostgreSQL writes it to the shared notification queue under a
-- lock every notifying transaction takes in turn. On the model-bound benchmark, dropping it cut
-- PostgreSQL CPU per job by 10–14 % (bench/RESULTS.md, "Performance, round two"), and almost
-- every request runs with nobody following it.
--
-- Each API process's event hub (api/events.py) now records the requests its streams follow,
-- under the process id of its LISTEN connection's backend; the trigger notifies only when such a
-- row exists. Rows of a listener whose backend is gone (the API process stopped, or its
-- connection dropped and it listens again under a new backend) are removed when any hub connects
-- and by the hourly housekeeping, as are rows of requests that ended over an hour ago.
--
-- No change is missed by a stream that starts following: `follow_requests` takes a share lock on
-- the requests after recording them, so it waits for a writer that updated one of them before the
-- row was visible to it (that writer's trigger saw no follower); the hub reads the request only
-- after that, and sees the writer's change. A writer that comes later sees the follower row.

CREATE TABLE inkwell.followed_requests (
    request_id   uuid    NOT NULL,
    listener_pid integer NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, listener_pid)
);
COMMENT ON TABLE inkwell.followed_requests IS
    'Requests that an API process''s event streams follow, by the backend pid of its LISTEN connection (api/events.py).';

CREATE OR REPLACE FUNCTION inkwell.notify_request_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inkwell.followed_requests WHERE request_id = NEW.id) THEN
        PERFORM pg_notify('inkwell_request_changes', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;

-- The hub's LISTEN connection (`p_listener_pid`) follows these requests from now on.
CREATE FUNCTION inkwell.follow_requests(p_request_ids uuid[], p_listener_pid integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO inkwell.followed_requests (request_id, listener_pid)
    SELECT DISTINCT id, p_listener_pid FROM unnest(p_request_ids) AS id
    ON CONFLICT DO NOTHING;
    -- Waits for any transaction that changed one of them before the rows above were visible to it.
    PERFORM 1 FROM inkwell.requests WHERE id = ANY(p_request_ids) FOR SHARE;
END;
$$;

CREATE FUNCTION inkwell.unfollow_request(p_request_id uuid, p_listener_pid integer) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    DELETE FROM inkwell.followed_requests WHERE request_id = p_request_id AND listener_pid = p_listener_pid;
$$;

-- Forget what listeners that no longer exist followed, and requests that ended over an hour ago
-- (a stream ends with its request; a row is left behind only when a hub could not remove it).
-- Returns how many rows went.
CREATE FUNCTION inkwell.forget_gone_listeners() RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    WITH gone AS (
        DELETE FROM inkwell.followed_requests AS f
         WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.pid = f.listener_pid)
            OR EXISTS (SELECT 1 FROM inkwell.requests AS r
                        WHERE r.id = f.request_id AND r.finished_at < now() - interval '1 hour')
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone;
$$;

REVOKE ALL ON FUNCTION inkwell.follow_requests(uuid[], integer), inkwell.unfollow_request(uuid, integer),
    inkwell.forget_gone_listeners() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.follow_requests(uuid[], integer), inkwell.unfollow_request(uuid, integer),
    inkwell.forget_gone_listeners() TO inkwell_console, inkwell_worker;
