-- save_post --
-- Save a request's post; saving the same request again (a re-run after a crash) rewrites it, never adds.
INSERT INTO inkwell.posts AS p (request_id, title, subheader, meta_description, outline, body_markdown,
                                word_count, organization, status)
VALUES (%(request_id)s, %(title)s, %(subheader)s, %(meta_description)s, %(outline)s, %(body_markdown)s,
        %(word_count)s, %(organization)s, %(status)s)
ON CONFLICT (request_id) DO UPDATE
   SET title = EXCLUDED.title,
       subheader = EXCLUDED.subheader,
       meta_description = EXCLUDED.meta_description,
       outline = EXCLUDED.outline,
       body_markdown = EXCLUDED.body_markdown,
       word_count = EXCLUDED.word_count,
       organization = EXCLUDED.organization,
       status = EXCLUDED.status,
       updated_at = now()
RETURNING p.id, p.image_request_id

-- claim_post_image_request --
-- Record the image request of a post, only if it has none yet (returns no row otherwise).
UPDATE inkwell.posts
   SET image_request_id = %(image_request_id)s, updated_at = now()
 WHERE id = %(post_id)s AND image_request_id IS NULL
RETURNING id

-- get_post_image_request_id --
-- The image request already queued for a post, if any.
SELECT image_request_id FROM inkwell.posts WHERE id = %(post_id)s

-- list_posts --
-- Saved posts, newest first, with the state of their image request (no bodies: the list stays light).
SELECT p.id, p.request_id, p.title, p.subheader, p.status, p.word_count, p.organization, p.created_at,
       p.image_request_id, ir.status AS image_status, (pi.post_id IS NOT NULL) AS has_image,
       r.requested_by AS author, r.user_id AS author_id
  FROM inkwell.posts p
  JOIN inkwell.requests r ON r.id = p.request_id
  LEFT JOIN inkwell.requests ir ON ir.id = p.image_request_id
  LEFT JOIN inkwell.post_images pi ON pi.post_id = p.id
 ORDER BY p.created_at DESC, p.id DESC
 LIMIT %(limit)s

-- get_post --
-- One post, by its id or by the request that saved it, with its whole body and the state of its
-- request and image request.
SELECT p.*, r.status AS request_status, ir.status AS image_status, ir.error_message AS image_error,
       (pi.post_id IS NOT NULL) AS has_image, r.requested_by AS author, r.user_id AS author_id
  FROM inkwell.posts p
  JOIN inkwell.requests r ON r.id = p.request_id
  LEFT JOIN inkwell.requests ir ON ir.id = p.image_request_id
  LEFT JOIN inkwell.post_images pi ON pi.post_id = p.id
 WHERE p.id = %(post_id)s OR p.request_id = %(request_id)s

-- save_post_image --
-- Keep a post's image; making it again (a re-run) replaces the bytes.
INSERT INTO inkwell.post_images (post_id, request_id, content_type, image, width, height, description)
VALUES (%(post_id)s, %(request_id)s, %(content_type)s, %(image)s, %(width)s, %(height)s, %(description)s)
ON CONFLICT (post_id) DO UPDATE
   SET request_id = EXCLUDED.request_id,
       content_type = EXCLUDED.content_type,
       image = EXCLUDED.image,
       width = EXCLUDED.width,
       height = EXCLUDED.height,
       description = EXCLUDED.description,
       created_at = now()

-- get_post_image --
-- The image bytes of a post.
SELECT post_id, request_id, content_type, image, width, height, description, created_at
  FROM inkwell.post_images
 WHERE post_id = %(post_id)s

-- set_post_status --
-- Publish or unpublish a post as the acting user (migration 0120 checks who may and audits); false: no change.
SELECT inkwell.set_post_status(%(post_id)s, %(status)s)

-- delete_post --
-- Delete a post and its image as the acting user (migration 0120); its request and result stay.
SELECT inkwell.delete_post(%(post_id)s)
