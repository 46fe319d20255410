"""Bring a database up to date: Procrastinate's schema first, then Inkwell's numbered migrations.

Idempotent and safe to run from several processes at once (an advisory lock serialises them).
Migrations are plain `.sql` files in db/migrations named `NNNN_description.sql`; each applied one
is recorded with its checksum in `inkwell.schema_migrations`, and a migration file that changed
after it was applied is refused rather than silently ignored.

    python -m db.migrate            # uses DATABASE_URL
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from procrastinate.schema import SchemaManager

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed number: it only has to be the same for every process that migrates.
_MIGRATION_LOCK_KEY = 7_415_002

logger = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def find_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number: {versions}")
    return migrations


def migrate(database_url: str, *, analyst_password: str | None = None) -> list[str]:
    """Apply whatever is missing; return the names of what was applied.

    The analyst role's login password is `analyst_password`, else the INKWELL_ANALYST_PASSWORD
    setting; with neither, the role is left as it is.
    """
    applied_now: list[str] = []
    with psycopg.connect(database_url, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        has_queue = conn.execute("SELECT to_regclass('public.procrastinate_jobs') IS NOT NULL").fetchone()[0]
        if not has_queue:
            # Procrastinate's own schema, from its schema manager, in this same transaction.
            conn.execute(SchemaManager.get_schema())
            applied_now.append("procrastinate schema")
        conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS inkwell;
            CREATE TABLE IF NOT EXISTS inkwell.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        done = {
            version: (name, checksum)
            for version, name, checksum in conn.execute(
                "SELECT version, name, checksum FROM inkwell.schema_migrations"
            )
        }
        for migration in find_migrations():
            if migration.version in done:
                name, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{name} was changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO inkwell.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
        if analyst_password is None:
            from inkwell_settings import get_settings

            secret = get_settings().analyst_password
            analyst_password = secret.get_secret_value() if secret else None
        if analyst_password:
            allow_analyst_login(conn, analyst_password)
        conn.commit()
    return applied_now


ANALYST_ROLE = "inkwell_analyst"


def allow_analyst_login(conn: psycopg.Connection, password: str) -> None:
    """Let the read-only analyst role (migration 0050) log in with this password.

    The password is hashed here (libpq's SCRAM-SHA-256), so it never reaches the server, or its
    statement log, in clear.
    """
    verifier = conn.pgconn.encrypt_password(password.encode(), ANALYST_ROLE.encode(), b"scram-sha-256").decode()
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(ANALYST_ROLE), sql.Literal(verifier))
    )


def main() -> int:
    from inkwell_settings import get_settings

    url = get_settings().database_url
    if not url:
        print("DATABASE_URL is not set: say which database to migrate.", file=sys.stderr)
        return 2
    applied = migrate(url)
    print("Applied: " + ", ".join(applied) if applied else "Database schema is up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
