-- Posts: publish, unpublish and delete from the console (db/posts.py calls these functions).
--
-- Who may, as for the request that wrote the post (cancel, retry and promote work the same way):
--   editor    their own posts only (the blog-post request is theirs); the organization's other
--             posts they read, not change
--   operator, admin   any post
--   analyst, nobody   none
-- inkwell_console has no UPDATE or DELETE privilege on inkwell.posts: these functions are the only
-- way, and each checks the acting user in the database, changes the post and writes its audit entry
-- in one transaction. Refusals raise 42501 (insufficient_privilege), an unknown or unreadable post
-- P0002 (no_data_found), each with a message for people.
--
-- Deleting a post leaves the request that wrote it as it was: its result keeps the whole text, its
-- events and its audit entries stay, and its image request stays in History. The post's image
-- bytes go with the post (post_images, ON DELETE CASCADE); an image job still waiting then ends
-- as post_missing.

-- The post, locked, if the acting user may change it; raises saying why not otherwise.
CREATE FUNCTION inkwell.lock_post_for_change(p_post_id uuid, p_verb text) RETURNS inkwell.posts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    post inkwell.posts;
    author_id bigint;
    author_organization_id bigint;
    role text := inkwell.acting_role();
BEGIN
    SELECT p.* INTO post FROM inkwell.posts AS p WHERE p.id = p_post_id FOR UPDATE;
    SELECT r.user_id, r.organization_id INTO author_id, author_organization_id
      FROM inkwell.requests AS r WHERE r.id = post.request_id;
    -- Not found and not readable are not told apart (posts_read, 0041: readable with its request).
    IF post.id IS NULL OR role IS NULL
       OR (role = 'editor' AND author_id IS DISTINCT FROM inkwell.acting_user_id()
           AND author_organization_id IS DISTINCT FROM inkwell.acting_organization_id()) THEN
        RAISE EXCEPTION 'There is no such post: it was deleted, or the link is not a post''s.'
            USING ERRCODE = 'no_data_found';
    END IF;
    IF role NOT IN ('editor', 'operator', 'admin') THEN
        RAISE EXCEPTION 'Your role (%) can read posts but not % them.', role, p_verb
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF role = 'editor' AND author_id IS DISTINCT FROM inkwell.acting_user_id() THEN
        RAISE EXCEPTION 'You can read this post but not % it: only the person who asked for it, an operator or an admin can.', p_verb
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN post;
END;
$$;

-- Publish ('published') or unpublish ('draft') a post; audited. False: it had that status already.
CREATE FUNCTION inkwell.set_post_status(p_post_id uuid, p_status text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    post inkwell.posts;
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('draft', 'published') THEN
        RAISE EXCEPTION 'A post is a draft or published, not %.', coalesce(p_status, 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    post := inkwell.lock_post_for_change(p_post_id, CASE p_status WHEN 'published' THEN 'publish' ELSE 'unpublish' END);
    IF post.status = p_status THEN
        RETURN false;
    END IF;
    UPDATE inkwell.posts SET status = p_status, updated_at = now() WHERE id = p_post_id;
    PERFORM inkwell.audit(CASE p_status WHEN 'published' THEN 'post.published' ELSE 'post.unpublished' END,
                          'post', p_post_id::text,
                          jsonb_build_object('title', post.title, 'request_id', post.request_id));
    RETURN true;
END;
$$;

-- Delete a post (and its image); its request, result and history stay. Audited with what it was.
CREATE FUNCTION inkwell.delete_post(p_post_id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    post inkwell.posts;
BEGIN
    post := inkwell.lock_post_for_change(p_post_id, 'delete');
    DELETE FROM inkwell.posts WHERE id = p_post_id;
    PERFORM inkwell.audit('post.deleted', 'post', p_post_id::text,
                          jsonb_build_object('title', post.title, 'request_id', post.request_id, 'status', post.status,
                                             'image_request_id', post.image_request_id));
END;
$$;

REVOKE EXECUTE ON FUNCTION inkwell.lock_post_for_change(uuid, text), inkwell.set_post_status(uuid, text),
                           inkwell.delete_post(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.set_post_status(uuid, text), inkwell.delete_post(uuid) TO inkwell_console;

-- An image request belongs to no one (the blog-post job queued it); editors read it while they may
-- read its blog-post request. That was looked up only through the post, so deleting the post hid
-- the image request from History; the parent is also named in the image request's own input.
CREATE OR REPLACE FUNCTION inkwell.post_image_request_readable(p_request_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT EXISTS (
        SELECT 1
          FROM inkwell.posts AS p
          JOIN inkwell.requests AS parent ON parent.id = p.request_id
         WHERE p.image_request_id = p_request_id
           AND (parent.user_id = inkwell.acting_user_id() OR parent.organization_id = inkwell.acting_organization_id()))
    OR EXISTS (
        SELECT 1
          FROM inkwell.requests AS image
          JOIN inkwell.requests AS parent ON parent.id = (image.input ->> 'parent_request_id')::uuid
         WHERE image.id = p_request_id
           AND image.kind = 'post_image'
           AND (parent.user_id = inkwell.acting_user_id() OR parent.organization_id = inkwell.acting_organization_id()))
$$;
