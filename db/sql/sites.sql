-- insert_site_batch --
-- One submitted site build.
INSERT INTO inkwell.site_batches (id, site_name, environment, mode, requested_by, business, definition, skipped_sections)
VALUES (%(id)s, %(site_name)s, %(environment)s, %(mode)s, %(requested_by)s, %(business)s, %(definition)s, %(skipped_sections)s)

-- link_site_batch_sections --
-- The batch's section requests (arrays of equal length, one element per section).
INSERT INTO inkwell.site_batch_sections (batch_id, request_id, position, route, section, template)
SELECT %(batch_id)s, request_id, position, route, section, template
  FROM unnest(%(request_ids)s::uuid[], %(positions)s::int[], %(routes)s::text[], %(sections)s::text[], %(templates)s::text[])
       AS t(request_id, position, route, section, template)

-- entities_with_content --
-- Which of these entities already have a current version ("leave" mode skips them).
SELECT id FROM inkwell.content_entities WHERE id = ANY(%(ids)s::uuid[]) AND current_version_id IS NOT NULL

-- list_site_batches --
-- The newest builds first, with how many of their sections are in each state.
SELECT b.id, b.site_name, b.environment, b.mode, b.requested_by, b.created_at, b.skipped_sections,
       count(r.id) AS total,
       count(*) FILTER (WHERE r.status IN ('scheduled', 'queued')) AS queued,
       count(*) FILTER (WHERE r.status = 'running') AS running,
       count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
       coalesce(sum(CASE WHEN r.status IN ('succeeded', 'failed', 'cancelled') THEN 100 ELSE r.progress END), 0) AS progress_sum
  FROM inkwell.site_batches b
  LEFT JOIN inkwell.site_batch_sections s ON s.batch_id = b.id
  LEFT JOIN inkwell.requests r ON r.id = s.request_id
 WHERE %(batch_id)s::uuid IS NULL OR b.id = %(batch_id)s::uuid
 GROUP BY b.id
 ORDER BY b.created_at DESC, b.id DESC
 LIMIT %(limit)s

-- get_site_batch_definition --
-- The site definition and business info a build was submitted with.
SELECT definition FROM inkwell.site_batches WHERE id = %(batch_id)s

-- list_site_batch_sections --
-- A build's sections in order: their request's state and the entity's current content.
SELECT s.position, s.route, s.section, s.template, s.request_id,
       r.status, r.progress, r.current_step, r.error_code, r.error_message, r.attempts, r.result,
       e.id AS entity_id, v.version AS current_version, v.content AS current_content
  FROM inkwell.site_batch_sections s
  JOIN inkwell.site_batches b ON b.id = s.batch_id
  JOIN inkwell.requests r ON r.id = s.request_id
  LEFT JOIN inkwell.content_entities e
         ON (e.site_name, e.route, e.section, e.environment) = (b.site_name, s.route, s.section, b.environment)
  LEFT JOIN inkwell.content_entity_versions v ON v.id = e.current_version_id
 WHERE s.batch_id = %(batch_id)s
 ORDER BY s.position

-- site_batch_request_ids --
-- The batch's section requests in the given states (retry failed ones, cancel unfinished ones).
SELECT s.request_id
  FROM inkwell.site_batch_sections s
  JOIN inkwell.requests r ON r.id = s.request_id
 WHERE s.batch_id = %(batch_id)s AND r.status = ANY(%(statuses)s::text[])
 ORDER BY s.position

-- get_current_content --
-- An entity's current version, if it has one.
SELECT v.id, v.version, v.content, v.source, v.request_id, v.source_version_id, v.replaces_version_id,
       v.model_name, v.offline_model, v.created_at
  FROM inkwell.content_entities e
  JOIN inkwell.content_entity_versions v ON v.id = e.current_version_id
 WHERE e.id = %(entity_id)s

-- get_version_by_request --
-- The version a given request wrote for an entity (a re-run finds it and writes none).
SELECT id, version, content, source, request_id, source_version_id, replaces_version_id,
       model_name, offline_model, created_at
  FROM inkwell.content_entity_versions
 WHERE entity_id = %(entity_id)s AND request_id = %(request_id)s

-- list_entity_versions --
-- Every version of an entity, newest first.
SELECT id, version, content, source, request_id, source_version_id, replaces_version_id,
       model_name, offline_model, created_at
  FROM inkwell.content_entity_versions
 WHERE entity_id = %(entity_id)s
 ORDER BY version DESC

-- upsert_content_entity --
-- Create the entity on its first write; either way lock it for the rest of the transaction.
INSERT INTO inkwell.content_entities (id, site_name, route, section, environment, template)
VALUES (%(entity_id)s, %(site_name)s, %(route)s, %(section)s, %(environment)s, %(template)s)
ON CONFLICT (id) DO UPDATE SET template = EXCLUDED.template
RETURNING current_version_id

-- insert_content_version --
-- The entity's next version; nothing when this request already wrote one (ON CONFLICT).
INSERT INTO inkwell.content_entity_versions
       (entity_id, version, content, source, request_id, source_version_id, replaces_version_id, model_name, offline_model)
SELECT %(entity_id)s, coalesce(max(v.version), 0) + 1, %(content)s, %(source)s, %(request_id)s,
       %(source_version_id)s, (SELECT current_version_id FROM inkwell.content_entities WHERE id = %(entity_id)s),
       %(model_name)s, %(offline_model)s
  FROM inkwell.content_entity_versions v
 WHERE v.entity_id = %(entity_id)s
ON CONFLICT (entity_id, request_id) DO NOTHING
RETURNING id, version, content, source, request_id, source_version_id, replaces_version_id,
          model_name, offline_model, created_at

-- set_current_version --
-- Point an entity at one of its versions.
UPDATE inkwell.content_entities SET current_version_id = %(version_id)s, updated_at = now() WHERE id = %(entity_id)s

-- get_version --
-- One version by id.
SELECT id, version, content, source, request_id, source_version_id, replaces_version_id,
       model_name, offline_model, created_at
  FROM inkwell.content_entity_versions
 WHERE id = %(version_id)s

-- insert_site_promotion --
-- A promote or rollback of a batch's entities, carried by one request.
INSERT INTO inkwell.site_promotions (id, batch_id, action, request_id, requested_by)
VALUES (%(id)s, %(batch_id)s, %(action)s, %(request_id)s, %(requested_by)s)

-- insert_site_promotion_entities --
-- One pending row per section the promotion or rollback covers.
INSERT INTO inkwell.site_promotion_entities (promotion_id, position, route, section)
SELECT %(promotion_id)s, position, route, section
  FROM inkwell.site_batch_sections
 WHERE batch_id = %(batch_id)s

-- get_site_promotion --
-- A promotion with its batch's site and environment.
SELECT p.id, p.batch_id, p.action, p.request_id, p.requested_by, p.created_at, b.site_name
  FROM inkwell.site_promotions p
  JOIN inkwell.site_batches b ON b.id = p.batch_id
 WHERE p.id = %(promotion_id)s

-- list_site_promotions --
-- A batch's promotions and rollbacks, newest first, with their request's status and per-entity counts.
SELECT p.id, p.action, p.requested_by, p.created_at, r.status, r.error_message,
       count(pe.*) AS total,
       count(*) FILTER (WHERE pe.status = 'done') AS done,
       count(*) FILTER (WHERE pe.status = 'skipped') AS skipped,
       count(*) FILTER (WHERE pe.status = 'failed') AS failed
  FROM inkwell.site_promotions p
  JOIN inkwell.requests r ON r.id = p.request_id
  LEFT JOIN inkwell.site_promotion_entities pe ON pe.promotion_id = p.id
 WHERE p.batch_id = %(batch_id)s
 GROUP BY p.id, r.status, r.error_message
 ORDER BY p.created_at DESC

-- list_site_promotion_entities --
-- The per-entity rows of a promotion or rollback, in the batch's order.
SELECT pe.position, pe.route, pe.section, s.template, pe.status, pe.message, pe.from_version_id, pe.to_version_id
  FROM inkwell.site_promotion_entities pe
  JOIN inkwell.site_promotions p ON p.id = pe.promotion_id
  JOIN inkwell.site_batch_sections s ON s.batch_id = p.batch_id AND s.position = pe.position
 WHERE pe.promotion_id = %(promotion_id)s
 ORDER BY pe.position

-- lock_pending_promotion_entity --
-- One row still to do, locked: a re-run of the job skips the rows already done.
SELECT position, route, section, status
  FROM inkwell.site_promotion_entities
 WHERE promotion_id = %(promotion_id)s AND position = %(position)s AND status = 'pending'
   FOR UPDATE

-- finish_promotion_entity --
-- Record what happened to one entity.
UPDATE inkwell.site_promotion_entities
   SET status = %(status)s, message = %(message)s, from_version_id = %(from_version_id)s,
       to_version_id = %(to_version_id)s, updated_at = now()
 WHERE promotion_id = %(promotion_id)s AND position = %(position)s
