-- Site builds: a batch fans out into one request (kind 'site_section', its own Procrastinate job)
-- per route x section, so Live, History, cancel and retry work on sections unchanged. Each
-- section's content is a content entity with a deterministic id; every write is a new version.
CREATE TABLE inkwell.site_batches (
    id               uuid PRIMARY KEY,
    site_name        text NOT NULL,
    environment      text NOT NULL DEFAULT 'preview' CHECK (environment IN ('preview', 'production')),
    mode             text NOT NULL CHECK (mode IN ('new', 'leave', 'with_current')),
    requested_by     text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    business         jsonb NOT NULL,
    definition       jsonb NOT NULL,
    -- Sections a "leave" build did not queue because they already had content.
    skipped_sections integer NOT NULL DEFAULT 0
);

COMMENT ON TABLE inkwell.site_batches IS
    'One row per submitted site build; its sections are inkwell.requests rows linked by inkwell.site_batch_sections.';

CREATE INDEX site_batches_created_at_idx ON inkwell.site_batches (created_at DESC, id DESC);

CREATE TABLE inkwell.site_batch_sections (
    batch_id   uuid NOT NULL REFERENCES inkwell.site_batches (id) ON DELETE CASCADE,
    request_id uuid NOT NULL UNIQUE REFERENCES inkwell.requests (id) ON DELETE CASCADE,
    position   integer NOT NULL,
    route      text NOT NULL,
    section    text NOT NULL,
    template   text NOT NULL,
    PRIMARY KEY (batch_id, position),
    UNIQUE (batch_id, route, section)
);

-- id = uuid5(namespace, site, route, section, environment), computed by queue_tasks/site_build.py;
-- the natural key is unique too, so the same section of the same site is one entity for ever.
CREATE TABLE inkwell.content_entities (
    id                 uuid PRIMARY KEY,
    site_name          text NOT NULL,
    route              text NOT NULL,
    section            text NOT NULL,
    environment        text NOT NULL CHECK (environment IN ('preview', 'production')),
    template           text NOT NULL,
    current_version_id bigint,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_name, route, section, environment)
);

CREATE TABLE inkwell.content_entity_versions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_id           uuid NOT NULL REFERENCES inkwell.content_entities (id) ON DELETE CASCADE,
    version             integer NOT NULL,
    content             jsonb NOT NULL,
    source              text NOT NULL CHECK (source IN ('generated', 'promoted')),
    -- The section request that wrote it: a re-run of the same request finds it and adds none.
    request_id          uuid,
    -- For a promoted version: the preview version it copies.
    source_version_id   bigint REFERENCES inkwell.content_entity_versions (id),
    -- The entity's current version when this one became current: where a rollback returns to.
    replaces_version_id bigint REFERENCES inkwell.content_entity_versions (id),
    model_name          text,
    offline_model       boolean,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entity_id, version),
    UNIQUE (entity_id, request_id)
);

ALTER TABLE inkwell.content_entities
    ADD CONSTRAINT content_entities_current_version_fk
    FOREIGN KEY (current_version_id) REFERENCES inkwell.content_entity_versions (id);

-- Promote preview -> production, or roll production back: one job (a request of kind
-- 'site_promotion') over a batch's entities, with a status per entity.
CREATE TABLE inkwell.site_promotions (
    id           uuid PRIMARY KEY,
    batch_id     uuid NOT NULL REFERENCES inkwell.site_batches (id) ON DELETE CASCADE,
    action       text NOT NULL CHECK (action IN ('promote', 'rollback')),
    request_id   uuid NOT NULL UNIQUE REFERENCES inkwell.requests (id) ON DELETE CASCADE,
    requested_by text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX site_promotions_batch_idx ON inkwell.site_promotions (batch_id, created_at DESC);

CREATE TABLE inkwell.site_promotion_entities (
    promotion_id    uuid NOT NULL REFERENCES inkwell.site_promotions (id) ON DELETE CASCADE,
    position        integer NOT NULL,
    route           text NOT NULL,
    section         text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'skipped', 'failed')),
    message         text,
    from_version_id bigint REFERENCES inkwell.content_entity_versions (id),
    to_version_id   bigint REFERENCES inkwell.content_entity_versions (id),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (promotion_id, position)
);
