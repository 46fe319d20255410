-- The image of a post, made by a follow-up request (kind post_image) queued once the post is saved.
-- posts.image_request_id is set in the same transaction that queues that request, and only while
-- it is still NULL: one image request per post, however often the post's job runs.
ALTER TABLE inkwell.posts ADD COLUMN image_request_id uuid UNIQUE REFERENCES inkwell.requests (id);

CREATE TABLE inkwell.post_images (
    post_id      uuid PRIMARY KEY REFERENCES inkwell.posts (id) ON DELETE CASCADE,
    request_id   uuid NOT NULL REFERENCES inkwell.requests (id),
    content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    image        bytea NOT NULL,
    width        integer,
    height       integer,
    description  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE inkwell.post_images IS
    'One image per post (bytes kept in the database): from the images API, or a generated placeholder offline.';
