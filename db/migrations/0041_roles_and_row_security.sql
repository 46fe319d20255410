-- The console's database role and row-level security: what each signed-in user may read and change
-- is decided by PostgreSQL, not only by what the pages offer.
--
-- The console connects as the owner (the same DATABASE_URL as the workers) and, for everything it
-- does on a user's behalf, switches for one transaction to the NOLOGIN role inkwell_console with the
-- acting user set (db/people.py, acting_as):
--     SELECT set_config('role', 'inkwell_console', true), set_config('inkwell.user_id', '<id>', true)
-- inkwell_console has exactly the privileges the console needs, and every table it reads has
-- policies keyed by inkwell.acting_role() / acting_user_id() / acting_organization_id() (0040):
--
--   editor    reads own and own organization's requests (and their posts, images, events, site
--             builds); submits; cancels and retries only own requests
--   operator  reads everything, acts on every request, pauses and resumes queues
--   admin     as operator, plus users, organizations and credits (0042's functions)
--   analyst   reads every request and its history; changes nothing
--   no acting user, or an inactive one: sees nothing
--
-- Workers, migrations and housekeeping run as the owner, which row-level security does not apply
-- to (the tables own it and FORCE is not set): they are unaffected. So is the console's own sign-in
-- (db/people.py, authenticate), which reads password hashes before anyone is acting.
--
-- Policies call the acting_* functions through a scalar subquery, `(SELECT inkwell.acting_role())`:
-- PostgreSQL then evaluates each once per statement (an InitPlan), not once per row.

-- Roles belong to the whole server, not to one database: it may exist already (another database,
-- the test suite's per-test copies of a template), and two databases may be migrated at once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'inkwell_console') THEN
        CREATE ROLE inkwell_console NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created meanwhile by a migration of another database
END
$$;
COMMENT ON ROLE inkwell_console IS
    'Inkwell console acting for a signed-in user: switched to per transaction, subject to row-level security.';

-- The migrating role is the one the console connects as; it must be allowed to SET ROLE to it.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'inkwell_console', 'MEMBER') THEN
        EXECUTE format('GRANT inkwell_console TO %I', current_user);
    END IF;
END
$$;

-- The request status is copied from the job by a trigger (0002) whoever changes the job: run it
-- with the owner's rights, so a cancel by an editor updates the request's status although the
-- editor may not write that column themselves.
ALTER FUNCTION inkwell.sync_request_from_job() SECURITY DEFINER SET search_path = pg_catalog;

-- Site builds get an owner like requests have, filled in the same way from the acting user.
ALTER TABLE inkwell.site_batches
    ADD COLUMN user_id         bigint REFERENCES inkwell.users (id) DEFAULT inkwell.acting_user_id(),
    ADD COLUMN organization_id bigint REFERENCES inkwell.organizations (id) DEFAULT inkwell.acting_organization_id();

-- Event timelines of a request include its earlier jobs (a cancelled request retried on a new job):
-- editors' event policies look those up here. Partial: requests never retried that way (nearly
-- all) add nothing to it on insert.
CREATE INDEX requests_previous_job_ids_idx ON inkwell.requests USING gin (previous_job_ids)
    WHERE previous_job_ids <> '{}';

-- ---------------------------------------------------------------------------------------------
-- Privileges: what the console does, and nothing else. Functions keep PostgreSQL's default
-- EXECUTE for PUBLIC (Procrastinate's defer/cancel/retry run with the caller's rights, so the
-- table privileges and policies below still decide); the SECURITY DEFINER ones are restricted.
-- ---------------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA inkwell TO inkwell_console;

-- Submit (insert), read, and the retry of a cancelled request on a new job (db/sql/requests.sql,
-- attach_new_job). SELECT … FOR UPDATE (the lock taken by cancel and retry) needs UPDATE too.
GRANT SELECT, INSERT ON inkwell.requests TO inkwell_console;
GRANT UPDATE (job_id, previous_job_ids, status, current_step, progress, eta_seconds, partial_text,
              error_code, error_message, finished_at, updated_at)
    ON inkwell.requests TO inkwell_console;

-- Procrastinate, as the console uses it: defer (insert), cancel and retry (update), the queue and
-- worker counts, the event timeline. Its triggers insert the events with the caller's rights.
GRANT SELECT, INSERT ON procrastinate_jobs TO inkwell_console;
GRANT UPDATE (status, abort_requested, attempts, scheduled_at, priority, queue_name, lock)
    ON procrastinate_jobs TO inkwell_console;
GRANT USAGE ON SEQUENCE procrastinate_jobs_id_seq TO inkwell_console;
GRANT SELECT, INSERT ON procrastinate_events TO inkwell_console;
GRANT USAGE ON SEQUENCE procrastinate_events_id_seq TO inkwell_console;
GRANT SELECT ON procrastinate_workers TO inkwell_console;

GRANT SELECT, INSERT, DELETE ON inkwell.queue_pauses TO inkwell_console;
GRANT SELECT ON inkwell.posts, inkwell.post_images, inkwell.job_events_archive TO inkwell_console;
GRANT SELECT, INSERT ON inkwell.site_batches, inkwell.site_batch_sections,
                        inkwell.site_promotions, inkwell.site_promotion_entities TO inkwell_console;
GRANT SELECT ON inkwell.content_entities, inkwell.content_entity_versions TO inkwell_console;

-- People: read only. Users, organizations and credits change through 0042's functions, which check
-- that the acting user is an admin and write the audit entry; the audit log only through
-- inkwell.audit. No password hash for anyone acting in the console, admins included.
GRANT SELECT ON inkwell.organizations, inkwell.credit_ledger, inkwell.audit_log TO inkwell_console;
GRANT SELECT (id, organization_id, username, display_name, role, oidc_issuer, oidc_subject, active,
              created_at, updated_at)
    ON inkwell.users TO inkwell_console;

REVOKE EXECUTE ON FUNCTION inkwell.audit(text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION inkwell.audit(text, text, text, jsonb) TO inkwell_console;

-- ---------------------------------------------------------------------------------------------
-- Requests
-- ---------------------------------------------------------------------------------------------
ALTER TABLE inkwell.requests ENABLE ROW LEVEL SECURITY;

-- A blog post's image request is queued by the worker, so it has no user (nor organization: the
-- blog post paid for it, 0045). Editors who may read the blog post read its image request too.
-- With the owner's rights: a policy on inkwell.requests cannot read inkwell.posts under row-level
-- security (the posts policy reads inkwell.requests again).
CREATE FUNCTION inkwell.post_image_request_readable(p_request_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT EXISTS (
        SELECT 1
          FROM inkwell.posts AS p
          JOIN inkwell.requests AS parent ON parent.id = p.request_id
         WHERE p.image_request_id = p_request_id
           AND (parent.user_id = inkwell.acting_user_id() OR parent.organization_id = inkwell.acting_organization_id()))
$$;

CREATE POLICY requests_read ON inkwell.requests FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst')
    OR ((SELECT inkwell.acting_role()) = 'editor'
        AND (user_id = (SELECT inkwell.acting_user_id())
             OR organization_id = (SELECT inkwell.acting_organization_id())
             OR (user_id IS NULL AND kind = 'post_image' AND inkwell.post_image_request_readable(id))))
);

-- A request is submitted as the acting user, into their organization (the column defaults).
CREATE POLICY requests_submit ON inkwell.requests FOR INSERT TO inkwell_console
WITH CHECK (
    (SELECT inkwell.acting_role()) IN ('editor', 'operator', 'admin')
    AND user_id = (SELECT inkwell.acting_user_id())
    AND organization_id IS NOT DISTINCT FROM (SELECT inkwell.acting_organization_id())
);

-- Cancel and retry lock the request with SELECT … FOR UPDATE, which sees only the rows this policy
-- allows: an editor's own, every request for operators and admins. The console's one direct
-- update re-queues a request on a new job; every other status comes from the job (0002's trigger,
-- owner's rights), so a request's status cannot be set to failed or cancelled by hand here.
CREATE POLICY requests_act ON inkwell.requests FOR UPDATE TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin')
    OR ((SELECT inkwell.acting_role()) = 'editor' AND user_id = (SELECT inkwell.acting_user_id()))
)
WITH CHECK (
    status = 'queued'
    AND ((SELECT inkwell.acting_role()) IN ('operator', 'admin')
         OR ((SELECT inkwell.acting_role()) = 'editor' AND user_id = (SELECT inkwell.acting_user_id())))
);

-- ---------------------------------------------------------------------------------------------
-- Queue jobs and their events. Job rows hold no content (task, queue, request id), and the queue
-- counts of the Workers and queues page need them all; changing one needs the right to act on
-- its request.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE procrastinate_jobs ENABLE ROW LEVEL SECURITY;

CREATE POLICY jobs_read ON procrastinate_jobs FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_role()) IS NOT NULL);

-- A submission defers its jobs before writing its request rows, so only the role is checked here.
CREATE POLICY jobs_defer ON procrastinate_jobs FOR INSERT TO inkwell_console
WITH CHECK ((SELECT inkwell.acting_role()) IN ('editor', 'operator', 'admin'));

CREATE POLICY jobs_act ON procrastinate_jobs FOR UPDATE TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin')
    OR ((SELECT inkwell.acting_role()) = 'editor'
        AND EXISTS (SELECT 1 FROM inkwell.requests AS r
                     WHERE r.job_id = procrastinate_jobs.id AND r.user_id = (SELECT inkwell.acting_user_id())))
);

ALTER TABLE procrastinate_events ENABLE ROW LEVEL SECURITY;

-- Events of the jobs of requests the user may read, current and earlier jobs.
CREATE POLICY events_read ON procrastinate_events FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst')
    OR EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.job_id = procrastinate_events.job_id)
    OR EXISTS (SELECT 1 FROM inkwell.requests AS r
                WHERE r.previous_job_ids <> '{}' AND r.previous_job_ids @> ARRAY[procrastinate_events.job_id])
);

-- Written by Procrastinate's triggers when the console defers, cancels or retries a job.
CREATE POLICY events_record ON procrastinate_events FOR INSERT TO inkwell_console
WITH CHECK ((SELECT inkwell.acting_role()) IN ('editor', 'operator', 'admin'));

ALTER TABLE inkwell.job_events_archive ENABLE ROW LEVEL SECURITY;

CREATE POLICY archived_events_read ON inkwell.job_events_archive FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst')
    OR EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.job_id = job_events_archive.job_id)
    OR EXISTS (SELECT 1 FROM inkwell.requests AS r
                WHERE r.previous_job_ids <> '{}' AND r.previous_job_ids @> ARRAY[job_events_archive.job_id])
);

ALTER TABLE procrastinate_workers ENABLE ROW LEVEL SECURITY;

CREATE POLICY workers_read ON procrastinate_workers FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_role()) IS NOT NULL);

-- Everyone sees which queues are paused; operators and admins pause and resume (db/queues.py).
ALTER TABLE inkwell.queue_pauses ENABLE ROW LEVEL SECURITY;

CREATE POLICY queue_pauses_read ON inkwell.queue_pauses FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_role()) IS NOT NULL);

CREATE POLICY queue_pauses_pause ON inkwell.queue_pauses FOR INSERT TO inkwell_console
WITH CHECK ((SELECT inkwell.acting_role()) IN ('operator', 'admin'));

CREATE POLICY queue_pauses_resume ON inkwell.queue_pauses FOR DELETE TO inkwell_console
USING ((SELECT inkwell.acting_role()) IN ('operator', 'admin'));

-- ---------------------------------------------------------------------------------------------
-- What requests made: visible exactly when the request is. A policy's subquery is itself subject
-- to the row-level security of the table it reads, so `EXISTS (… inkwell.requests …)` means "a
-- request this user may read".
-- ---------------------------------------------------------------------------------------------
ALTER TABLE inkwell.posts ENABLE ROW LEVEL SECURITY;

CREATE POLICY posts_read ON inkwell.posts FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.id = posts.request_id));

ALTER TABLE inkwell.post_images ENABLE ROW LEVEL SECURITY;

CREATE POLICY post_images_read ON inkwell.post_images FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.posts AS p WHERE p.id = post_images.post_id));

-- Site builds: the batch has its own owner (above); its sections and promotions go with their requests.
ALTER TABLE inkwell.site_batches ENABLE ROW LEVEL SECURITY;

CREATE POLICY site_batches_read ON inkwell.site_batches FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst')
    OR ((SELECT inkwell.acting_role()) = 'editor'
        AND (user_id = (SELECT inkwell.acting_user_id())
             OR organization_id = (SELECT inkwell.acting_organization_id())))
);

CREATE POLICY site_batches_submit ON inkwell.site_batches FOR INSERT TO inkwell_console
WITH CHECK (
    (SELECT inkwell.acting_role()) IN ('editor', 'operator', 'admin')
    AND user_id = (SELECT inkwell.acting_user_id())
    AND organization_id IS NOT DISTINCT FROM (SELECT inkwell.acting_organization_id())
);

ALTER TABLE inkwell.site_batch_sections ENABLE ROW LEVEL SECURITY;

CREATE POLICY site_batch_sections_read ON inkwell.site_batch_sections FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.id = site_batch_sections.request_id));

-- Links the acting user's own new section requests to their own new batch.
CREATE POLICY site_batch_sections_submit ON inkwell.site_batch_sections FOR INSERT TO inkwell_console
WITH CHECK (
    EXISTS (SELECT 1 FROM inkwell.site_batches AS b
             WHERE b.id = site_batch_sections.batch_id AND b.user_id = (SELECT inkwell.acting_user_id()))
    AND EXISTS (SELECT 1 FROM inkwell.requests AS r
                 WHERE r.id = site_batch_sections.request_id AND r.user_id = (SELECT inkwell.acting_user_id()))
);

ALTER TABLE inkwell.site_promotions ENABLE ROW LEVEL SECURITY;

CREATE POLICY site_promotions_read ON inkwell.site_promotions FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.requests AS r WHERE r.id = site_promotions.request_id));

-- Promote or roll back: an editor only their own builds, operators and admins any.
CREATE POLICY site_promotions_submit ON inkwell.site_promotions FOR INSERT TO inkwell_console
WITH CHECK (
    EXISTS (SELECT 1 FROM inkwell.requests AS r
             WHERE r.id = site_promotions.request_id AND r.user_id = (SELECT inkwell.acting_user_id()))
    AND EXISTS (SELECT 1 FROM inkwell.site_batches AS b
                 WHERE b.id = site_promotions.batch_id
                   AND ((SELECT inkwell.acting_role()) IN ('operator', 'admin')
                        OR b.user_id = (SELECT inkwell.acting_user_id())))
);

ALTER TABLE inkwell.site_promotion_entities ENABLE ROW LEVEL SECURITY;

CREATE POLICY site_promotion_entities_read ON inkwell.site_promotion_entities FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.site_promotions AS p WHERE p.id = site_promotion_entities.promotion_id));

CREATE POLICY site_promotion_entities_submit ON inkwell.site_promotion_entities FOR INSERT TO inkwell_console
WITH CHECK (
    EXISTS (SELECT 1 FROM inkwell.site_promotions AS p
              JOIN inkwell.requests AS r ON r.id = p.request_id
             WHERE p.id = site_promotion_entities.promotion_id AND r.user_id = (SELECT inkwell.acting_user_id()))
);

-- A site's content (one entity per site, route, section and environment) is visible to those who
-- may read a build of that site.
ALTER TABLE inkwell.content_entities ENABLE ROW LEVEL SECURITY;

CREATE POLICY content_entities_read ON inkwell.content_entities FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst')
    OR EXISTS (SELECT 1 FROM inkwell.site_batches AS b WHERE b.site_name = content_entities.site_name)
);

ALTER TABLE inkwell.content_entity_versions ENABLE ROW LEVEL SECURITY;

CREATE POLICY content_entity_versions_read ON inkwell.content_entity_versions FOR SELECT TO inkwell_console
USING (EXISTS (SELECT 1 FROM inkwell.content_entities AS e WHERE e.id = content_entity_versions.entity_id));

-- ---------------------------------------------------------------------------------------------
-- People
-- ---------------------------------------------------------------------------------------------
ALTER TABLE inkwell.users ENABLE ROW LEVEL SECURITY;

-- Admins see every account; everyone else only their own.
CREATE POLICY users_read ON inkwell.users FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_role()) = 'admin' OR id = (SELECT inkwell.acting_user_id()));

ALTER TABLE inkwell.organizations ENABLE ROW LEVEL SECURITY;

-- Editors see their own organization; the roles that see every request see every organization.
CREATE POLICY organizations_read ON inkwell.organizations FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst')
    OR ((SELECT inkwell.acting_role()) IS NOT NULL AND id = (SELECT inkwell.acting_organization_id()))
);

ALTER TABLE inkwell.credit_ledger ENABLE ROW LEVEL SECURITY;

CREATE POLICY credit_ledger_read ON inkwell.credit_ledger FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin')
    OR ((SELECT inkwell.acting_role()) IS NOT NULL AND organization_id = (SELECT inkwell.acting_organization_id()))
);

-- Admins and operators read the audit log; anyone else only their own entries. Entries are
-- written only by inkwell.audit (SECURITY DEFINER): there is no INSERT privilege to use.
ALTER TABLE inkwell.audit_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_log_read ON inkwell.audit_log FOR SELECT TO inkwell_console
USING (
    (SELECT inkwell.acting_role()) IN ('operator', 'admin')
    OR ((SELECT inkwell.acting_role()) IS NOT NULL AND actor_user_id = (SELECT inkwell.acting_user_id()))
);
