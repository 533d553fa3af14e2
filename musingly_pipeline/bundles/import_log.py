"""The import log (``import_logs``): one row per import attempt, written in its own transactions.

The row is started and set to 'importing' before the load (each committed, so the log shows the
attempt while it runs; the session holds the log's advisory lock meanwhile). A failed import is
marked failed with its error, separately from the load that rolled back; an import whose bundle
broke a rule leaves no row at all, as if it had been checked before.
"""

from __future__ import annotations

import json
import uuid

import psycopg
from musingly_core.models import ImportBundle


def start(conn: psycopg.Connection, bundle: ImportBundle, source_file: str | None, created_by: str | None) -> uuid.UUID:
    """A new log row for ``bundle``, status 'importing'; its id."""
    meta = bundle.metadata
    return start_row(conn, bundle.version_label, meta.source_system, meta.source_version, source_file, created_by)


def start_row(conn: psycopg.Connection, version_label: str, source_system: str | None, source_version: str | None,
              source_file: str | None, created_by: str | None) -> uuid.UUID:
    """A new log row with these fields (a bundle's label and metadata), status 'importing'; its id."""
    import_id = conn.execute("SELECT start_import(%s, %s, %s, %s)",
                             (version_label, source_system, source_version, created_by)).fetchone()[0]
    try:
        conn.execute("UPDATE import_logs SET source_file = %s WHERE id = %s", (source_file, import_id))
        conn.execute("SELECT update_import_status(%s, 'importing')", (import_id,))
    except BaseException as exc:
        mark_failed(conn, import_id, exc)
        raise
    return import_id


def discard(conn: psycopg.Connection, import_id: uuid.UUID) -> None:
    """Delete the log row of an import whose bundle turned out invalid (its load is rolled back)."""
    if not conn.closed and not conn.broken:
        conn.execute("DELETE FROM import_logs WHERE id = %s AND snapshot_id IS NULL", (import_id,))


def mark_failed(conn: psycopg.Connection, import_id: uuid.UUID, exc: BaseException) -> None:
    """Record the failure on the log row, in its own transaction (the load already rolled back)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    details = {"type": type(exc).__name__}
    if isinstance(exc, psycopg.Error):
        details.update(sqlstate=exc.sqlstate, detail=exc.diag.message_detail, context=exc.diag.context)
    try:
        if conn.closed or conn.broken:
            return  # the next command's fail_stale_imports() records it
        conn.execute("SELECT update_import_status(%s, 'failed', NULL, NULL, %s, %s)",
                     (import_id, json.dumps(details), message))
    except psycopg.Error:
        pass
