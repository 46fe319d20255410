"""The schema is built from Procrastinate's schema and the numbered migrations, idempotently."""

from __future__ import annotations

import psycopg
import pytest

from db import migrate as migrate_module
from db.migrate import MigrationError, find_migrations, migrate


@pytest.fixture
def empty_database_url(postgres):
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS empty_for_migrations WITH (FORCE)")
        conn.execute("CREATE DATABASE empty_for_migrations")
    yield postgres.uri_for("empty_for_migrations")
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS empty_for_migrations WITH (FORCE)")


def test_empty_database_is_built_from_the_migrations(empty_database_url):
    applied = migrate(empty_database_url)
    expected = ["procrastinate schema"] + [f"{m.version:04d}_{m.name}" for m in find_migrations()]
    assert applied == expected
    with psycopg.connect(empty_database_url) as conn:
        tables = {row[0] for row in conn.execute("SELECT to_regclass(t)::text FROM unnest(%s::text[]) t", (
            ["procrastinate_jobs", "procrastinate_events", "inkwell.requests", "inkwell.schema_migrations"],
        ))}
        assert None not in tables
        trigger = conn.execute("SELECT tgname FROM pg_trigger WHERE tgname = 'inkwell_sync_request_from_job'").fetchone()
        assert trigger is not None


def test_running_migrations_again_applies_nothing(empty_database_url):
    migrate(empty_database_url)
    assert migrate(empty_database_url) == []


def test_an_edited_applied_migration_is_refused(empty_database_url, tmp_path, monkeypatch):
    migrate(empty_database_url)
    for migration in find_migrations():
        (tmp_path / f"{migration.version:04d}_{migration.name}.sql").write_text(migration.sql)
    first = find_migrations()[0]
    (tmp_path / f"{first.version:04d}_{first.name}.sql").write_text(first.sql + "\n-- edited\n")
    monkeypatch.setattr(migrate_module, "MIGRATIONS_DIR", tmp_path)
    monkeypatch.setattr(migrate_module.find_migrations, "__defaults__", (tmp_path,))
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        migrate(empty_database_url)
