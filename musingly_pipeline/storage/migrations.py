"""Ordered SQL migrations, applied once each and recorded in ``schema_migrations``.

Files are ``migrations/NNNN_name.sql``, applied in name order, each in its own transaction. The
whole run holds a PostgreSQL advisory lock, so two processes starting together do not race: the
second waits, then finds nothing left to do. An applied file whose text later changes is an error
(write a new migration instead).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from musingly_pipeline.storage.database import connect

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# pg_advisory_lock key for migrations: the bytes of "musingly" as a signed 64-bit integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"musingly", "big", signed=True)

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration failed or an applied one was edited; the message names the file."""


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
    return [Migration(p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("[0-9]*.sql"))]


def migrate(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            done = dict(conn.execute("SELECT name, checksum FROM schema_migrations").fetchall())
            for migration in available(directory):
                if migration.name in done:
                    if done[migration.name] != migration.checksum:
                        raise MigrationError(
                            f"{migration.name} was edited after it was applied; "
                            "restore it and put the change in a new migration file"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                            (migration.name, migration.checksum),
                        )
                except Exception as exc:
                    raise MigrationError(f"{migration.name} failed: {exc}") from exc
                applied_now.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def status(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[MigrationState]:
    """Every known migration with when it was applied (``None``: pending)."""
    with connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        applied = dict(conn.execute("SELECT name, applied_at FROM schema_migrations").fetchall()) if exists else {}
    return [MigrationState(m.name, applied.get(m.name)) for m in available(directory)]


def ensure_migrated(url: str | None = None) -> None:
    """Apply pending migrations if there are any (cheap when there are none)."""
    if any(state.applied_at is None for state in status(url)):
        migrate(url)
