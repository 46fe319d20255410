-- Change counters: the console's lists ask "did anything change?" once a second instead of
-- re-reading their rows. Each topic is a sequence; a trigger advances it when its rows change, and
-- inkwell.change_counters() reads them all in one cheap call (no table is scanned).
--
-- Sequences, not a counter row: nextval takes no row lock, so writers never queue behind each
-- other, and it is not rolled back (a rolled-back change only costs a reader one needless re-read).
-- Inserts and updates advance it from a deferred trigger, at commit, so a reader that sees the
-- new value sees the committed row a moment later at most (the console re-reads once more on the
-- next tick after a change). Deletes (housekeeping removes many rows at once) advance it once per
-- statement.
--
-- Topics:
--   requests        any change to a request (progress included): Live, Home
--   request_status  a request inserted, deleted or changing status: History
--   posts           posts and their images: Posts
--   site_builds     site builds, their sections and promotions: Site builds

CREATE SEQUENCE inkwell.changes_requests;
CREATE SEQUENCE inkwell.changes_request_status;
CREATE SEQUENCE inkwell.changes_posts;
CREATE SEQUENCE inkwell.changes_site_builds;

CREATE FUNCTION inkwell.note_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    topic text;
BEGIN
    FOREACH topic IN ARRAY TG_ARGV LOOP
        PERFORM nextval(format('inkwell.changes_%s', topic)::regclass);
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION inkwell.note_change() FROM PUBLIC;

CREATE FUNCTION inkwell.change_counters(
    OUT requests bigint, OUT request_status bigint, OUT posts bigint, OUT site_builds bigint
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    -- + is_called: a sequence never advanced and one advanced once both hold last_value 1.
    SELECT (SELECT last_value + is_called::int FROM inkwell.changes_requests),
           (SELECT last_value + is_called::int FROM inkwell.changes_request_status),
           (SELECT last_value + is_called::int FROM inkwell.changes_posts),
           (SELECT last_value + is_called::int FROM inkwell.changes_site_builds)
$$;
REVOKE ALL ON FUNCTION inkwell.change_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.change_counters() TO inkwell_console;

-- requests
CREATE CONSTRAINT TRIGGER requests_note_insert AFTER INSERT ON inkwell.requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inkwell.note_change('requests', 'request_status');
CREATE CONSTRAINT TRIGGER requests_note_status AFTER UPDATE ON inkwell.requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION inkwell.note_change('requests', 'request_status');
CREATE CONSTRAINT TRIGGER requests_note_progress AFTER UPDATE ON inkwell.requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.status IS NOT DISTINCT FROM NEW.status)
    EXECUTE FUNCTION inkwell.note_change('requests');
CREATE TRIGGER requests_note_delete AFTER DELETE ON inkwell.requests
    FOR EACH STATEMENT EXECUTE FUNCTION inkwell.note_change('requests', 'request_status');

-- posts and their images
CREATE CONSTRAINT TRIGGER posts_note_change AFTER INSERT OR UPDATE ON inkwell.posts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inkwell.note_change('posts');
CREATE TRIGGER posts_note_delete AFTER DELETE ON inkwell.posts
    FOR EACH STATEMENT EXECUTE FUNCTION inkwell.note_change('posts');
CREATE CONSTRAINT TRIGGER post_images_note_change AFTER INSERT OR UPDATE ON inkwell.post_images
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inkwell.note_change('posts');
CREATE TRIGGER post_images_note_delete AFTER DELETE ON inkwell.post_images
    FOR EACH STATEMENT EXECUTE FUNCTION inkwell.note_change('posts');

-- site builds: batches, their sections, promotions
CREATE CONSTRAINT TRIGGER site_batches_note_change AFTER INSERT OR UPDATE ON inkwell.site_batches
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inkwell.note_change('site_builds');
CREATE TRIGGER site_batches_note_delete AFTER DELETE ON inkwell.site_batches
    FOR EACH STATEMENT EXECUTE FUNCTION inkwell.note_change('site_builds');
CREATE CONSTRAINT TRIGGER site_batch_sections_note_change AFTER INSERT OR UPDATE ON inkwell.site_batch_sections
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inkwell.note_change('site_builds');
CREATE TRIGGER site_batch_sections_note_delete AFTER DELETE ON inkwell.site_batch_sections
    FOR EACH STATEMENT EXECUTE FUNCTION inkwell.note_change('site_builds');
CREATE CONSTRAINT TRIGGER site_promotions_note_change AFTER INSERT OR UPDATE ON inkwell.site_promotions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inkwell.note_change('site_builds');
