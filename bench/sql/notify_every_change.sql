-- Migration 0080's announcement, undone by 0150: NOTIFY on every visible change of every request,
-- followed by an event stream or not. For `python -m bench.variants` (what 0150 saves).
CREATE OR REPLACE FUNCTION inkwell.notify_request_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM pg_notify('inkwell_request_changes', NEW.id::text);
    RETURN NULL;
END;
$$;
