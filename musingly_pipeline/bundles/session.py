"""A connection to the snapshot store, and the refusals of its SQL lifecycle functions as codes.

Every operation of the store opens a :func:`session`: pending migrations are applied first (so a
fresh database needs no manual ``musingly db migrate``) and the logs of importing processes that
died are marked failed. The lifecycle rules live in the SQL functions of ``0001_baseline.sql``
and later migrations; :func:`refusals` turns what they refuse into :class:`SnapshotError` s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

from musingly_pipeline.bundles.errors import SnapshotError
from musingly_pipeline.bundles.models import ImportLog, SnapshotInfo
from musingly_pipeline.storage.database import connect, database_url
from musingly_pipeline.storage.migrations import ensure_migrated

# SQLSTATE -> code of what the lifecycle functions refuse, unless an operation names its own.
_REFUSAL_CODES = {
    "P0002": "SNAPSHOT_NOT_FOUND",     # no_data_found: the import or snapshot does not exist
    "55000": "SNAPSHOT_NOT_READY",     # object_not_in_prerequisite_state
    "23514": "SNAPSHOT_REFUSED",       # check_violation: a status change the rules forbid
    "22023": "SNAPSHOT_REFUSED",       # invalid_parameter_value
    "23505": "SNAPSHOT_REFUSED",       # unique_violation: another change won the race
    "P0001": "SNAPSHOT_REFUSED",
    "22P02": "SNAPSHOT_ID_INVALID",    # invalid_text_representation
    "2BP01": "SNAPSHOT_REFUSED",       # dependent_objects_still_exist: a delta stands on it
}

SELECT_SNAPSHOTS = ("SELECT id, name, version_label, description, status, parent_id, previous_id, content_hash, "
                    "entity_counts, created_at, ready_at, promoted_at, archived_at, base_id FROM snapshots ")
SELECT_LOGS = ("SELECT id, version_label, status, snapshot_id, source_system, source_version, source_file, "
               "started_at, completed_at, entity_counts, error_message, error_details, reused FROM import_logs ")


@contextmanager
def session(url: str | None = None) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a migrated database whose stale imports have been failed."""
    url = url or database_url()
    ensure_migrated(url)
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT fail_stale_imports()")
        yield conn


@contextmanager
def refusals(codes: dict[str, str] | None = None) -> Iterator[None]:
    """Turn the lifecycle functions' refusals into :class:`SnapshotError` with their message; ``codes``
    maps a SQLSTATE (``"P0002"``) to the code this operation gives it."""
    try:
        yield
    except psycopg.Error as exc:
        code = (codes or {}).get(exc.sqlstate or "") or _REFUSAL_CODES.get(exc.sqlstate or "")
        if code is None:
            raise
        raise SnapshotError(code, exc.diag.message_primary or str(exc)) from exc


def parse_id(value: uuid.UUID | str, what: str = "snapshot id") -> uuid.UUID:
    """``value`` as a UUID, or :class:`SnapshotError` (``SNAPSHOT_ID_INVALID`` / ``IMPORT_ID_INVALID``)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        code = "IMPORT_ID_INVALID" if what.startswith("import") else "SNAPSHOT_ID_INVALID"
        raise SnapshotError(code, f"{what} {value!r} is not a UUID; copy it from `musingly imports` or "
                            "`musingly snapshots`") from None


def snapshot_row(conn: psycopg.Connection, snapshot_id: uuid.UUID) -> SnapshotInfo | None:
    row = conn.cursor(row_factory=dict_row).execute(SELECT_SNAPSHOTS + "WHERE id = %s", (snapshot_id,)).fetchone()
    return SnapshotInfo(**row) if row else None


def current_row(conn: psycopg.Connection) -> SnapshotInfo | None:
    row = conn.cursor(row_factory=dict_row).execute(SELECT_SNAPSHOTS + "WHERE status = 'current'").fetchone()
    return SnapshotInfo(**row) if row else None


def snapshot_rows(conn: psycopg.Connection) -> list[SnapshotInfo]:
    rows = conn.cursor(row_factory=dict_row).execute(SELECT_SNAPSHOTS + "ORDER BY created_at DESC").fetchall()
    return [SnapshotInfo(**r) for r in rows]


def import_rows(conn: psycopg.Connection, status: str | None, limit: int) -> list[ImportLog]:
    rows = conn.cursor(row_factory=dict_row).execute(
        SELECT_LOGS + "WHERE %(status)s::text IS NULL OR status = %(status)s "
        "ORDER BY started_at DESC LIMIT %(limit)s", {"status": status, "limit": limit}).fetchall()
    return [ImportLog(**r) for r in rows]
