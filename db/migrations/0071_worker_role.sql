-- The workers' own database role: least privilege, no way back up.
--
-- Until now workers connected as the owner (the role that runs migrations and owns every table). Now
-- they log in as inkwell_worker: read and write the queue's and Inkwell's tables, run their
-- functions, and nothing else — no DDL, no roles, no sessions, no password hashes, no audit log
-- except through inkwell.audit(). Migrations stay with the owner; the console has inkwell_console
-- (0041), analysts inkwell_analyst (0050). How the roles get a login: README, "Roles, enforced by
-- the database" (`python -m db.roles`, or ./run's embedded server, which does it itself).
--
-- Functions and tables added by later migrations are covered by the default privileges below
-- (granted for objects the migrating role creates), so a new SQL function the worker calls needs
-- no grant of its own.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'inkwell_worker') THEN
        CREATE ROLE inkwell_worker NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created meanwhile by a migration of another database (roles belong to the server)
END
$$;
COMMENT ON ROLE inkwell_worker IS 'Inkwell queue workers: the queue''s and Inkwell''s tables, no DDL, no credentials.';

-- Procrastinate lives in the public schema (its tables, types and functions).
GRANT USAGE ON SCHEMA inkwell, public TO inkwell_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA inkwell, public TO inkwell_worker;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA inkwell, public TO inkwell_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA inkwell, public TO inkwell_worker;

ALTER DEFAULT PRIVILEGES IN SCHEMA inkwell, public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO inkwell_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA inkwell, public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO inkwell_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA inkwell, public GRANT EXECUTE ON FUNCTIONS TO inkwell_worker;

-- What a worker never needs: credentials, sessions, the migration record; people change only
-- through the admin functions (which refuse anyone but an acting admin), the audit log only
-- through inkwell.audit().
REVOKE ALL ON inkwell.sessions, inkwell.schema_migrations, inkwell.audit_log, inkwell.users,
              inkwell.organizations FROM inkwell_worker;
REVOKE ALL ON SEQUENCE inkwell.sessions_id_seq FROM inkwell_worker;
GRANT SELECT (id, organization_id, username, display_name, role, active, created_at, updated_at)
    ON inkwell.users TO inkwell_worker;
GRANT SELECT ON inkwell.organizations TO inkwell_worker;

-- Row-level security (0041) limits inkwell_console; the workers act for no one and see every row.
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass
          FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE c.relrowsecurity AND c.relkind = 'r' AND n.nspname IN ('inkwell', 'public')
    LOOP
        EXECUTE format('CREATE POLICY workers_all ON %s TO inkwell_worker USING (true) WITH CHECK (true)', t);
    END LOOP;
END
$$;
