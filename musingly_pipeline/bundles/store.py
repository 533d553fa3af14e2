"""``SnapshotStore``: the snapshot store's one object, which both faces (the CLI, Dagster) call.

The lifecycle: import a file (or a bundle in memory) as a ready snapshot, promote it to current,
roll back, diff, delete a draft, clean up old snapshots, list and read. Each call opens a session
(pending migrations applied, imports of dead processes marked failed) and calls the SQL functions
that hold the lifecycle rules; import, promote and rollback write their lifecycle signals to
``signals`` (default: the store ``MUSINGLY_SIGNAL_STORE`` names). Every refusal is a
:class:`~musingly_pipeline.bundles.errors.BundleError` with a code, checked once, here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from musingly_core.models import ImportBundle
from psycopg import sql
from psycopg.rows import dict_row

from musingly_pipeline.bundles import importing, lifecycle, staging
from musingly_pipeline.bundles.delta import DeltaPolicy
from musingly_pipeline.bundles.diff import SnapshotDiff, diff_snapshots
from musingly_pipeline.bundles.errors import SnapshotError
from musingly_pipeline.bundles.importing import ImportOptions
from musingly_pipeline.bundles.loader import TABLES, Progress
from musingly_pipeline.bundles.models import ImportLog, ImportResult, ImportStats, SnapshotInfo
from musingly_pipeline.bundles.projections import read_bundle_content, rows_of
from musingly_pipeline.bundles.staging import Push, StagedBundle
from musingly_pipeline.bundles.session import (
    current_row, import_rows, parse_id, refusals, session, snapshot_row, snapshot_rows)
from musingly_pipeline.signals.store import EventStore
from musingly_pipeline.storage.database import database_url

# What the SQL lifecycle functions refuse, per operation (SQLSTATE -> code).
_PROMOTE_REFUSALS = {"P0002": "IMPORT_NOT_FOUND", "55000": "SNAPSHOT_NOT_READY", "23514": "SNAPSHOT_NOT_READY"}
_ROLLBACK_REFUSALS = {"P0002": "IMPORT_NOT_FOUND", "55000": "ROLLBACK_REFUSED"}
_DELETE_REFUSALS = {"P0002": "SNAPSHOT_NOT_FOUND", "55000": "SNAPSHOT_NOT_DRAFT", "23514": "SNAPSHOT_NOT_DRAFT"}


class SnapshotStore:
    """The snapshot store at ``url`` (``None``: the configured database), writing lifecycle signals
    to ``signals`` (``None``: the configured signal store, opened for each write). ``delta``: when a
    merge is stored as a delta on its base (default :class:`DeltaPolicy`: bases of 10,000 rows or
    more, deltas up to a tenth of them; see :mod:`~musingly_pipeline.bundles.delta`)."""

    def __init__(self, url: str | None = None, *, signals: EventStore | None = None,
                 delta: DeltaPolicy | None = None):
        self.url = url
        self.signals = signals
        self.delta = delta or DeltaPolicy()

    # Import

    def import_file(self, path: str | Path, *, promote: bool = False, merge: bool = False,
                    remove: Iterable[str | tuple[str, str]] = (), allow_shrink: bool = False, force: bool = False,
                    expect_sha256: str | None = None, source_file: str | None = None,
                    progress: Progress | None = None, created_by: str | None = None) -> ImportResult:
        """Read the file once, validate it with every rule and import it as a new ready snapshot
        (see :mod:`~musingly_pipeline.bundles.importing`). ``expect_sha256``: refuse bytes that do
        not have this hash (a staged bundle). Raises :class:`BundleInvalid` with the full report, or
        :class:`ImportRefused`; both, and the result, carry the file's sha256 and size (``source``)."""
        options = ImportOptions(promote=promote, merge=merge, remove=tuple(remove), allow_shrink=allow_shrink,
                                force=force, expect_sha256=expect_sha256, source_file=source_file,
                                progress=progress, created_by=created_by, delta=self.delta)
        return importing.import_file(self.url, path, options, self.signals)

    def import_bundle(self, bundle: ImportBundle, *, promote: bool = False, merge: bool = False,
                      remove: Iterable[str | tuple[str, str]] = (), allow_shrink: bool = False, force: bool = False,
                      validated: bool = False, source_file: str | None = None, progress: Progress | None = None,
                      created_by: str | None = None) -> ImportResult:
        """Import a bundle already in memory; ``validated``: the caller ran every rule on it already."""
        options = ImportOptions(promote=promote, merge=merge, remove=tuple(remove), allow_shrink=allow_shrink,
                                force=force, validated=validated, source_file=source_file, progress=progress,
                                created_by=created_by, delta=self.delta)
        return importing.import_bundle(self.url, bundle, options, self.signals)

    # Bundle bytes handed in: staged in PostgreSQL by sha256, so any worker can import them

    def push(self, stream: BinaryIO, name: str, *, pushed_by: str | None = None) -> Push:
        """Stage the bytes of ``stream`` and hand them to the inbox sensor under inbox name ``name``
        (``NAME.json`` or ``incremental/NAME.json``); refused with :class:`PushRefused`."""
        return staging.push_bundle(self._url(), stream, name, pushed_by=pushed_by)

    def pushes_after(self, after_id: int) -> list[Push]:
        """The pushes with an id above ``after_id``, oldest first (what the inbox sensor has not seen)."""
        return staging.pushes_after(self._url(), after_id)

    def stage_file(self, path: Path, sha256: str | None = None) -> StagedBundle:
        """Stage the bytes of ``path`` (once per content; ``sha256``: its hash, if already known)."""
        return staging.stage_file(self._url(), path, sha256=sha256)

    def fetch_staged(self, sha256: str, cache_dir: Path) -> Path:
        """A local file with the staged bundle ``sha256`` (:class:`StagingError` if missing or damaged)."""
        return staging.fetch_staged(self._url(), sha256, cache_dir)

    def _url(self) -> str:
        return self.url or database_url()

    # Lifecycle

    def promote(self, import_id: uuid.UUID | str | None = None, *, latest: bool = False) -> SnapshotInfo:
        """Promote an import's ready snapshot to current (``latest``: the newest ready import's);
        records the ``promoted`` lifecycle signal."""
        if import_id is not None and latest:
            raise SnapshotError("PROMOTE_TARGET_AMBIGUOUS", "name the import to promote or ask for the latest, not "
                                "both (IMPORT_ID or --latest; `import_id` or `latest: true` in Dagster)", usage=True)
        if import_id is None and not latest:
            raise SnapshotError("PROMOTE_TARGET_MISSING", "name the import to promote (an import id from "
                                "`musingly imports`), or ask for the latest ready one (--latest; `latest: true` in "
                                "Dagster)", usage=True)
        key = None if latest else parse_id(import_id, "import id")
        with session(self.url) as conn:
            if latest:
                row = conn.execute(
                    "SELECT l.id FROM import_logs l JOIN snapshots s ON s.id = l.snapshot_id "
                    "WHERE l.status = 'ready' AND s.status = 'ready' ORDER BY l.started_at DESC LIMIT 1").fetchone()
                if row is None:
                    raise SnapshotError("PROMOTE_NOTHING_READY", "no ready import to promote; import a bundle first "
                                        "(`musingly import FILE`)")
                key = row[0]
            with refusals(_PROMOTE_REFUSALS), conn.transaction():
                snapshot_id = conn.execute("SELECT promote_import(%s)", (key,)).fetchone()[0]
            info = snapshot_row(conn, snapshot_id)
        lifecycle.record(self.signals, [("promoted", info.promoted_at)], info.id, key, info.version_label,
                         done=f"snapshot {info.id} ({info.version_label}) is current")
        return info

    def rollback(self, import_id: uuid.UUID | str | None = None) -> SnapshotInfo:
        """Make the snapshot the current one replaced current again; returns it. ``import_id``: refuse
        unless that import's snapshot is the current one. Records the ``rolled_back`` signal."""
        key = None if import_id is None else parse_id(import_id, "import id")
        with session(self.url) as conn:
            with refusals(_ROLLBACK_REFUSALS), conn.transaction():
                snapshot_id = conn.execute("SELECT rollback_import(%s)", (key,)).fetchone()[0]
            info = snapshot_row(conn, snapshot_id)
        lifecycle.record(self.signals, [("rolled_back", datetime.now(timezone.utc))], info.id, key,
                         info.version_label, done=f"rolled back: snapshot {info.id} ({info.version_label}) is current")
        return info

    def delete_draft(self, snapshot_id: uuid.UUID | str) -> None:
        """Delete a draft or ready (never promoted) snapshot and its rows."""
        key = parse_id(snapshot_id, "snapshot id")
        with session(self.url) as conn, refusals(_DELETE_REFUSALS), conn.transaction():
            conn.execute("SELECT delete_draft_snapshot(%s)", (key,))

    def cleanup(self, keep: int) -> int:
        """Keep the ``keep`` (at least 1) most recently published snapshots; delete older archived
        ones, except a base a kept snapshot stands on (:meth:`bases_kept`); return how many were deleted."""
        if keep < 1:
            raise SnapshotError("CLEANUP_KEEP_INVALID", f"keep must be at least 1, not {keep} (the current snapshot "
                                "is always kept): --keep N; `keep` in Dagster", usage=True)
        with session(self.url) as conn, refusals(), conn.transaction():
            return conn.execute("SELECT cleanup_old_snapshots(%s)", (keep,)).fetchone()[0]

    def bases_kept(self, keep: int) -> list[SnapshotInfo]:
        """The archived snapshots past the ``keep`` most recently published that cleanup keeps
        because a kept (merged, delta) snapshot stands on them; they go with their last dependant."""
        rows = self.list_snapshots()
        published = sorted((r for r in rows if r.status in ("current", "archived")),
                           key=lambda r: (r.status != "current", -(r.promoted_at.timestamp() if r.promoted_at else 0)))
        bases = {r.base_id for r in rows if r.base_id is not None}
        return [r for r in published[keep:] if r.id in bases]

    def diff(self, from_id: uuid.UUID | str | None = None, to_id: uuid.UUID | str | None = None) -> SnapshotDiff:
        """Added, removed and changed rows from ``from_id`` (default: current) to ``to_id`` (default:
        the newest ready snapshot; see :func:`~musingly_pipeline.bundles.diff.diff_snapshots`)."""
        with session(self.url) as conn:
            return diff_snapshots(conn, from_id, to_id)

    # Reading

    def current_snapshot(self) -> SnapshotInfo | None:
        """The snapshot served to readers, or ``None`` before the first promotion."""
        with session(self.url) as conn:
            return current_row(conn)

    def get_snapshot(self, snapshot_id: uuid.UUID | str) -> SnapshotInfo | None:
        key = parse_id(snapshot_id, "snapshot id")
        with session(self.url) as conn:
            return snapshot_row(conn, key)

    def list_snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, newest first."""
        with session(self.url) as conn:
            return snapshot_rows(conn)

    def list_imports(self, status: str | None = None, limit: int = 50) -> list[ImportLog]:
        """The newest ``limit`` import attempts, optionally only those with ``status``."""
        with session(self.url) as conn:
            return import_rows(conn, status, limit)

    def import_stats(self, days: int = 30) -> ImportStats:
        """``SELECT * FROM get_import_stats(days)``."""
        with session(self.url) as conn:
            row = conn.cursor(row_factory=dict_row).execute("SELECT * FROM get_import_stats(%s)", (days,)).fetchone()
        avg = row.pop("avg_duration_seconds")
        return ImportStats(days=days, avg_duration_seconds=None if avg is None else float(avg), **row)

    def snapshot_row_counts(self, snapshot_id: uuid.UUID | str) -> dict[str, int]:
        """Rows per content table the snapshot holds (keys as ``ImportBundle.counts()``): for a delta
        snapshot, its own rows plus its base's rows it does not mask."""
        key = parse_id(snapshot_id, "snapshot id")
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}, count(*) FROM {} x").format(sql.Literal(name), rows_of(name))
            for name in TABLES)
        with session(self.url) as conn:
            return {name: n for name, n in conn.execute(query, {"s": key}).fetchall()}

    def export_bundle(self, snapshot_id: uuid.UUID | str) -> ImportBundle:
        """A snapshot's content as a bundle (its version label and name, synthetic metadata)."""
        key = parse_id(snapshot_id, "snapshot id")
        with session(self.url) as conn:
            info = snapshot_row(conn, key)
            if info is None:
                raise SnapshotError("SNAPSHOT_NOT_FOUND", f"snapshot {key} does not exist; see `musingly snapshots`")
            header = ImportBundle.model_validate({
                "schema_version": "1.0.0", "version_label": info.version_label, "name": info.name,
                "metadata": {"generated_at": info.created_at, "source_system": "musingly-export",
                             "description": info.description}})
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return read_bundle_content(conn, key, header)
