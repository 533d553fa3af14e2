"""Ordered SQL migrations, applied once each and recorded in ``schema_migrations``.

Files are ``migrations/NNNN_name.sql``, applied in name order, each in its own transaction, and
recorded by name with the SHA-256 of their text. The whole run holds a PostgreSQL advisory lock, so
two processes starting together do not race: the second waits, then finds nothing left to do. An
applied file whose text later changes is an error (write a new migration instead).

The baseline. The first file, ``0001_baseline.sql``, is the whole schema, each object once in its
live form; later changes are ``0002_*.sql`` onwards. A fresh database runs the baseline. The schema
used to be built by a chain of files that redefined each other (``0001_snapshot_store.sql`` ...
``0009_reused_import_logs.sql``); they are kept, unchanged, in ``migrations/legacy/`` and used for
one thing only, bringing a database that chain made up to the baseline:

* a database whose ``schema_migrations`` names at least one legacy file and not the baseline was
  made by the old chain. The legacy files it lacks are applied first, in name order, as the old
  runner would have (none if the whole chain is there); then the baseline is recorded as applied
  without running it, since the schema is already the baseline's. Later migrations then apply as
  on any database;
* any other database (fresh, or already on the baseline) never reads the legacy files.

The legacy rows stay in ``schema_migrations`` as a record of the database's history; their texts
are still checked against the legacy files. ``musingly_pipeline_tests/storage/test_migrations.py``
checks that a baseline database and an upgraded old one are the same, object by object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from musingly_pipeline.errors import MusinglyError
from musingly_pipeline.storage.database import connect

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LEGACY_DIRNAME = "legacy"
# pg_advisory_lock key for migrations: the bytes of "musingly" as a signed 64-bit integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"musingly", "big", signed=True)

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
_RECORD = "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)"


class MigrationError(MusinglyError):
    """A migration failed (``MIGRATION_FAILED``) or an applied one was edited (``MIGRATION_EDITED``);
    the message names the file, and so does ``path``."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    name: str
    applied_at: datetime | None


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations of ``directory`` in name order (not those of its ``legacy/`` folder)."""
    return [Migration(p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("[0-9]*.sql"))]


def legacy(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The old chain the baseline replaces (``directory/legacy/``; none if there is no such folder)."""
    folder = directory / LEGACY_DIRNAME
    return available(folder) if folder.is_dir() else []


def migrate(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied; return the names applied now.

    A database made by the legacy chain gets the legacy files it lacks, then the baseline recorded
    without running it (the module docstring has the rule); those legacy names are returned too.
    """
    migrations, old_chain = available(directory), legacy(directory)
    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            done = dict(conn.execute("SELECT name, checksum FROM schema_migrations").fetchall())
            _refuse_edited(done, migrations + old_chain)
            if migrations and old_chain and migrations[0].name not in done \
                    and any(m.name in done for m in old_chain):
                for migration in old_chain:
                    if migration.name not in done:
                        _apply(conn, migration)
                        applied_now.append(migration.name)
                baseline = migrations[0]
                conn.execute(_RECORD, (baseline.name, baseline.checksum))  # the schema is already the baseline's
                done[baseline.name] = baseline.checksum
            for migration in migrations:
                if migration.name not in done:
                    _apply(conn, migration)
                    applied_now.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def _refuse_edited(done: dict[str, str], migrations: list[Migration]) -> None:
    for migration in migrations:
        if migration.name in done and done[migration.name] != migration.checksum:
            raise MigrationError(
                "MIGRATION_EDITED",
                f"{migration.name} was edited after it was applied; "
                "restore it and put the change in a new migration file", migration.name)


def _apply(conn, migration: Migration) -> None:
    """Run one migration and record it, in one transaction."""
    try:
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(_RECORD, (migration.name, migration.checksum))
    except Exception as exc:
        raise MigrationError(
            "MIGRATION_FAILED",
            f"{migration.name} failed: {exc}; nothing of it was kept, fix the cause and migrate again",
            migration.name) from exc


def status(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[MigrationState]:
    """Every migration of ``directory`` with when it was applied (``None``: pending)."""
    with connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        applied = dict(conn.execute("SELECT name, applied_at FROM schema_migrations").fetchall()) if exists else {}
    return [MigrationState(m.name, applied.get(m.name)) for m in available(directory)]


def ensure_migrated(url: str | None = None) -> None:
    """Apply pending migrations if there are any (cheap when there are none)."""
    if any(state.applied_at is None for state in status(url)):
        migrate(url)
