-- Blog posts saved by the blog-post job ("auto-save"). One post per request, whatever happens to
-- the job: the unique request_id is what `INSERT ... ON CONFLICT (request_id) DO UPDATE` keys on,
-- so a job re-run after a crash rewrites its post instead of adding a second one.
CREATE TABLE inkwell.posts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id       uuid NOT NULL UNIQUE REFERENCES inkwell.requests (id),
    title            text NOT NULL,
    subheader        text,
    meta_description text NOT NULL,
    outline          jsonb NOT NULL,
    body_markdown    text NOT NULL,
    word_count       integer NOT NULL CHECK (word_count >= 0),
    organization     text,
    status           text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE inkwell.posts IS
    'Blog posts written by inkwell.write_blog_post, one per request (draft unless asked otherwise).';

-- The Posts page lists newest first.
CREATE INDEX posts_created_at_idx ON inkwell.posts (created_at DESC, id DESC);
