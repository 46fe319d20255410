"""The database roles Inkwell's parts log in as, each with only what it needs.

| role              | who                    | may                                                              |
|-------------------|------------------------|------------------------------------------------------------------|
| `inkwell_owner`   | migrations (`db.migrate`), `./run`'s first-admin step | owns the database and every object in it; manages the three roles below (CREATEROLE, ADMIN OPTION on them) |
| `inkwell_console` | the Streamlit console  | acts for a signed-in person only (0041, 0070, 0072, 0073)        |
| `inkwell_worker`  | `procrastinate worker` | the queue's and Inkwell's tables and functions; no DDL, no credentials (0071) |
| `inkwell_analyst` | analysts' psql / BI    | the `analytics` views, read-only (0050)                          |

None is a superuser, none can create roles or databases; only the workers bypass row-level
security, where a policy already shows them every row (see `create_roles`); a superuser is needed once, to create them and the database (`create_roles`, `create_database`).
`./run`'s embedded server does that itself with generated passwords kept in a 0600 file
(`.inkwell/database-passwords.json`); with your own server, run as a superuser:

    python -m db.roles --superuser-url postgresql://postgres@dbhost/postgres --database inkwell

which creates the roles and the database (passwords generated, or taken from
INKWELL_<ROLE>_PASSWORD, e.g. INKWELL_CONSOLE_PASSWORD), and prints the URL of each role.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

OWNER = "inkwell_owner"
CONSOLE = "inkwell_console"
WORKER = "inkwell_worker"
ANALYST = "inkwell_analyst"
LOGIN_ROLES = (OWNER, CONSOLE, WORKER, ANALYST)
DATABASE = "inkwell"
# The file ./run keeps the embedded server's passwords in (its superuser's too).
PASSWORDS_FILE_NAME = "database-passwords.json"
SUPERUSER_KEY = "postgres"


def load_or_create_passwords(path: Path) -> dict[str, str]:
    """The passwords kept in `path` (JSON, mode 0600), with one generated for any role missing."""
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in (SUPERUSER_KEY, *LOGIN_ROLES) if not passwords.get(name)]
    for name in missing:
        passwords[name] = secrets.token_urlsafe(24)
    if missing or (path.stat().st_mode & 0o777) != 0o600:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(passwords, file, indent=2)
        os.chmod(path, 0o600)  # an existing file keeps its mode through os.open
    return passwords


def scram_verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of a password, made by libpq here: the password itself never
    reaches the server or its statement log."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def create_roles(conn: psycopg.Connection, passwords: dict[str, str] | None) -> None:
    """Create the login roles (or bring existing ones back to their attributes), on a superuser's
    autocommit connection. `passwords` None: login without a password (a server that trusts its
    local socket: the test suite's)."""
    for role in LOGIN_ROLES:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        # The owner runs the migrations, which set up the other roles (their comments and settings,
        # the analyst's password): CREATEROLE, with ADMIN OPTION on Inkwell's roles alone (below).
        create_role = "CREATEROLE" if role == OWNER else "NOCREATEROLE"
        # The workers see every row anyway (a `workers_all` policy on each table, 0071, 0082); what
        # BYPASSRLS adds is the DETAIL of a unique violation, which PostgreSQL hides from a role under
        # row-level security and Procrastinate needs to tell "this periodic check is already queued"
        # from a failure (without it the worker stops: tests/integration/test_worker_queueing_lock.py).
        bypass_rls = "BYPASSRLS" if role == WORKER else "NOBYPASSRLS"
        attributes = sql.SQL(f"LOGIN NOSUPERUSER NOCREATEDB {create_role} NOREPLICATION {bypass_rls}")
        if passwords is not None:
            attributes = sql.SQL("{} PASSWORD {}").format(attributes, sql.Literal(scram_verifier(conn, role, passwords[role])))
        conn.execute(sql.SQL("ALTER ROLE {} WITH {}").format(sql.Identifier(role), attributes))
    # The owner switches to the console's role to act for a person in scripts (db.people.acting_as),
    # and its migrations manage the other three roles.
    for role in (CONSOLE, WORKER, ANALYST):
        conn.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(role), sql.Identifier(OWNER)))


def set_superuser_password(conn: psycopg.Connection, user: str, password: str) -> None:
    conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
        sql.Identifier(user), sql.Literal(scram_verifier(conn, user, password))))


def create_database(conn: psycopg.Connection, name: str = DATABASE) -> None:
    """The database, owned by inkwell_owner (a superuser's autocommit connection); nothing when it exists."""
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(OWNER)))
    # No one but its owner creates anything in it (PostgreSQL 15+ does this for public already).
    conn.execute(sql.SQL("REVOKE CREATE, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))


# Everything Inkwell created in a database, handed to inkwell_owner (as a superuser, in that database).
_ADOPT_OBJECTS = """
DO $$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT nspname FROM pg_namespace WHERE nspname IN ('inkwell', 'analytics') LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO inkwell_owner', item.nspname);
    END LOOP;
    FOR item IN
        SELECT c.oid::regclass AS name, c.relkind
          FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('inkwell', 'analytics', 'public') AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND NOT EXISTS (SELECT 1 FROM pg_depend AS d  -- a table's own sequences follow it
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO inkwell_owner',
                       CASE item.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                         WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, item.name);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS name, p.prokind
          FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
         WHERE n.nspname IN ('inkwell', 'analytics', 'public')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO inkwell_owner',
                       CASE item.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, item.name);
    END LOOP;
    FOR item IN
        SELECT t.oid::regtype AS name
          FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
         WHERE n.nspname IN ('inkwell', 'analytics', 'public')
           AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO inkwell_owner', item.name);
    END LOOP;
END
$$
"""


def adopt_older_database(conn: psycopg.Connection, uri_for) -> bool:
    """A data folder from before these roles kept Inkwell in the superuser's `postgres` database:
    hand its objects to inkwell_owner and rename it `inkwell` (a superuser's autocommit connection to
    another database, e.g. template1; `uri_for(dbname)` the superuser's URL of a database).
    True when it did."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
        return False
    with psycopg.connect(uri_for("postgres"), autocommit=True) as older:
        if not older.execute("SELECT to_regclass('inkwell.schema_migrations') IS NOT NULL").fetchone()[0]:
            return False
        older.execute(_ADOPT_OBJECTS)
    conn.execute(sql.SQL("ALTER DATABASE postgres RENAME TO {}").format(sql.Identifier(DATABASE)))
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(DATABASE), sql.Identifier(OWNER)))
    conn.execute("CREATE DATABASE postgres")
    return True


def url_for(url: str, *, user: str, password: str | None = None, database: str | None = None) -> str:
    """`url` (postgresql://…, socket or TCP) with another user, password and database."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    path = f"/{quote(database, safe='')}" if database is not None else parts.path
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}", path=path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create Inkwell's database roles and database (run once, as a superuser).")
    parser.add_argument("--superuser-url", required=True, help="a superuser's URL, e.g. postgresql://postgres@dbhost/postgres")
    parser.add_argument("--database", default=DATABASE, help=f"the database to create (default {DATABASE})")
    args = parser.parse_args(argv)
    passwords = {
        role: os.environ.get(f"INKWELL_{role.removeprefix('inkwell_').upper()}_PASSWORD") or secrets.token_urlsafe(24)
        for role in LOGIN_ROLES
    }
    with psycopg.connect(args.superuser_url, autocommit=True) as conn:
        if not conn.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            print("This needs a superuser (it creates roles and a database).", file=sys.stderr)
            return 2
        create_roles(conn, passwords)
        create_database(conn, args.database)
    print("Roles and database ready. Keep these URLs secret:\n")
    for role, variable in ((OWNER, "migrations: python -m db.migrate"), (CONSOLE, "the console's DATABASE_URL"),
                           (WORKER, "the workers' DATABASE_URL"), (ANALYST, "analysts (psql)")):
        print(f"  {variable}\n    {url_for(args.superuser_url, user=role, password=passwords[role], database=args.database)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
