"""The snapshot lifecycle from Python: import, promote, roll back, list, clean up.

Every function takes the database URL (``None``: :func:`database_url`), applies pending migrations
first (so a fresh database needs no manual ``musingly db migrate``), marks the logs of importing
processes that died as failed, and calls the SQL functions of ``0001_snapshot_store.sql`` and
``0007_snapshot_partitions.sql``, which hold the lifecycle rules; Python adds validation, merging
and COPY.

An import runs as:

1. ``start_import`` and ``update_import_status(..., 'importing')``, each committed, so the log
   shows the attempt while it runs; the session holds the log's advisory lock meanwhile.
2. One transaction: ``create_snapshot_row`` (``create_import_snapshot`` without its partitions),
   COPY of every table into its own new partition (``loader``; in a thread, while this one
   runs the integrity rules, unless the caller already did, and computes the content hash), then
   under the content hash's lock either ``finalize_import`` or, if a ready or current snapshot has
   the same content, a rollback of the load to its savepoint and reuse of that snapshot, whose row
   is then locked until commit (the log of a reuse follows its snapshot: 'promoted' when it is
   current, promoted with it when it is promoted later). Nothing of
   it is visible until it commits; a killed process leaves no rows, and its log is marked failed by
   the next command (the lock is free).

   Locks: the parent snapshot's row (and a merge's base) first, then the content tables, the order
   in which cleanup and delete-draft take them (migration 0008), so they never deadlock. A
   snapshot to reuse deleted between being found and being locked makes the import load again,
   keeping its own copy; a merge's base deleted meanwhile refuses the merge (run it again).
3. On error, the transaction rolls back and the log is marked failed with the error, separately. A
   bundle that breaks an integrity rule is not an import that failed: its load is rolled back and
   its log row deleted, so it leaves nothing, as if it had been checked before (it raises
   :class:`BundleInvalid` with the full report).
4. With ``promote=True``, ``promote_import`` in its own transaction.
5. The lifecycle signals (``import_started``, ``snapshot_ready``, and ``promoted`` when promoted)
   are written to the signal store; :func:`promote` and :func:`rollback` write theirs too, so
   ``signals.lifecycle.current_snapshot_at`` is right whichever face made the change. They are
   written after the commit: if that fails, the error says that the change itself was made.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from musingly_core.bundle_file import read_bundle, validate_bundle, validate_bundle_file
from musingly_core.gcpause import gc_paused
from musingly_core.integrity import check_bundle
from musingly_core.models import ENTITY_KINDS, ImportBundle
from musingly_core.report import Issue, ValidationReport

from musingly_pipeline.signals.lifecycle import configured_store, record_snapshot_event
from musingly_pipeline.signals.store import EventStore
from musingly_pipeline.storage.content_hash import content_hash
from musingly_pipeline.storage.database import connect, database_url
from musingly_pipeline.storage.loader import TABLES, Progress, load_bundle, load_merged_bundle
from musingly_pipeline.storage.merge import RemovalError, merge_bundles, parse_removal
from musingly_pipeline.storage.migrations import ensure_migrated
from musingly_pipeline.storage.projections import read_bundle_content

# A full import may not drop more than this share of the current snapshot's sparks without
# allow_shrink: a hotfix bundle imported without --merge would otherwise wipe the content.
SHRINK_LIMIT = 0.5
# Advisory lock namespace for "one import of this content hash at a time" (transaction lock).
_HASH_LOCK_NAMESPACE = 1836413803
# SQLSTATEs the lifecycle functions raise for a refused operation.
_REFUSALS = {"P0001", "P0002", "23514", "55000", "22023", "23505"}


@dataclass(frozen=True)
class SourceFile:
    """The bytes an import read: their sha256 (``None`` when the file could not be read), size, and
    the entities per kind the file states (empty when it did not parse)."""

    sha256: str | None
    size: int
    counts: dict[str, int] = field(default_factory=dict)


class BundleInvalid(Exception):
    """The bundle (or the merged result) breaks a rule; ``report`` lists every issue. ``source``:
    the file's sha256 and size, when the bundle came from a file."""

    def __init__(self, report: ValidationReport, source: SourceFile | None = None):
        errors = report.errors
        first = f": {errors[0]}" if errors else ""
        super().__init__(f"{report.file} is invalid ({len(errors)} error(s)){first}")
        self.report = report
        self.source = source


class ImportRefused(Exception):
    """The import was refused before loading (a shrink, a merge with nothing to merge onto ...);
    ``code``, when set, is a stable code (``validation.report.CODES``) that leads the message.
    ``source``: the file's sha256 and size, when it was read before the refusal."""

    source: SourceFile | None = None

    def __init__(self, message: str, code: str | None = None):
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code


class SnapshotError(Exception):
    """A lifecycle operation the database refused; the message says why and what to do."""


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot row."""

    id: uuid.UUID
    name: str
    version_label: str
    description: str | None
    status: str
    parent_id: uuid.UUID | None
    previous_id: uuid.UUID | None
    content_hash: str | None
    entity_counts: dict[str, int]
    created_at: datetime
    ready_at: datetime | None
    promoted_at: datetime | None
    archived_at: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "entity_counts", _in_kind_order(self.entity_counts))

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in self.__dict__.items()}


def _in_kind_order(counts: dict[str, int] | None) -> dict[str, int] | None:
    """jsonb keeps no key order; show counts in import order."""
    if counts is None:
        return None
    return {k: counts[k] for k in (*ENTITY_KINDS, *sorted(set(counts) - set(ENTITY_KINDS))) if k in counts}


@dataclass(frozen=True)
class ImportLog:
    """One import_logs row: one import attempt."""

    id: uuid.UUID
    version_label: str
    status: str
    snapshot_id: uuid.UUID | None
    source_system: str | None
    source_version: str | None
    source_file: str | None
    started_at: datetime
    completed_at: datetime | None
    entity_counts: dict[str, int] | None
    error_message: str | None
    error_details: dict | None
    reused: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "entity_counts", _in_kind_order(self.entity_counts))

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ImportStats:
    """``get_import_stats(days)``: imports per status and mean duration."""

    days: int
    total_imports: int
    ready: int
    promoted: int
    failed: int
    rolled_back: int
    in_progress: int
    avg_duration_seconds: float | None
    last_import_at: datetime | None
    last_success_at: datetime | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the log row, the snapshot that holds the content, and its counts."""

    import_id: uuid.UUID
    snapshot_id: uuid.UUID
    version_label: str
    status: str  # 'ready' | 'promoted'
    entity_counts: dict[str, int]
    reused: bool  # same content as an existing ready/current snapshot: that one, no copy
    content_hash: str
    merged: bool = False
    source_file: str | None = None
    seconds: float = 0.0
    warnings: tuple[Issue, ...] = field(default_factory=tuple)
    parent_id: uuid.UUID | None = None  # the snapshot that was current when the import started
    source: SourceFile | None = None  # the file's sha256 and size, when imported from a file
    # Set when the import was committed but its lifecycle signals could not be written: the faces
    # report the import as done and this as the error.
    lifecycle_error: str | None = None

    def to_dict(self) -> dict:
        return {
            "import_id": str(self.import_id), "snapshot_id": str(self.snapshot_id),
            "version_label": self.version_label, "status": self.status,
            "entity_counts": dict(self.entity_counts), "reused": self.reused, "merged": self.merged,
            "content_hash": self.content_hash, "source_file": self.source_file,
            "source_sha256": self.source.sha256 if self.source else None,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "lifecycle_error": self.lifecycle_error,
            "seconds": round(self.seconds, 3), "warnings": [w.to_dict() for w in self.warnings],
        }


@contextmanager
def session(url: str | None = None) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a migrated database whose stale imports have been failed."""
    url = url or database_url()
    ensure_migrated(url)
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT fail_stale_imports()")
        yield conn


@contextmanager
def _refusals() -> Iterator[None]:
    """Turn the lifecycle functions' exceptions into :class:`SnapshotError` with their message."""
    try:
        yield
    except psycopg.Error as exc:
        if exc.sqlstate in _REFUSALS or exc.sqlstate == "22P02":
            diag = exc.diag.message_primary or str(exc)
            raise SnapshotError(diag) from exc
        raise


def _uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise SnapshotError(f"{what} {value!r} is not a UUID; copy it from `musingly imports` or `musingly snapshots`") from None


_SELECT_SNAPSHOTS = ("SELECT id, name, version_label, description, status, parent_id, previous_id, content_hash, "
                     "entity_counts, created_at, ready_at, promoted_at, archived_at FROM snapshots ")
_SELECT_LOGS = ("SELECT id, version_label, status, snapshot_id, source_system, source_version, source_file, "
                "started_at, completed_at, entity_counts, error_message, error_details, reused FROM import_logs ")


def _snapshot(conn: psycopg.Connection, snapshot_id: uuid.UUID) -> SnapshotInfo | None:
    row = conn.cursor(row_factory=dict_row).execute(
        _SELECT_SNAPSHOTS + "WHERE id = %s", (snapshot_id,)).fetchone()
    return SnapshotInfo(**row) if row else None


def _current(conn: psycopg.Connection) -> SnapshotInfo | None:
    row = conn.cursor(row_factory=dict_row).execute(
        _SELECT_SNAPSHOTS + "WHERE status = 'current'").fetchone()
    return SnapshotInfo(**row) if row else None


# Lifecycle


def current_snapshot(url: str | None = None) -> SnapshotInfo | None:
    """The snapshot served to readers, or ``None`` before the first promotion."""
    with session(url) as conn:
        return _current(conn)


def get_snapshot(url: str | None, snapshot_id: uuid.UUID | str) -> SnapshotInfo | None:
    with session(url) as conn:
        return _snapshot(conn, _uuid(snapshot_id, "snapshot id"))


def list_snapshots(url: str | None = None) -> list[SnapshotInfo]:
    """Every snapshot, newest first."""
    with session(url) as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            _SELECT_SNAPSHOTS + "ORDER BY created_at DESC").fetchall()
    return [SnapshotInfo(**r) for r in rows]


def list_imports(url: str | None = None, status: str | None = None, limit: int = 50) -> list[ImportLog]:
    """The newest ``limit`` import attempts, optionally only those with ``status``."""
    with session(url) as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            _SELECT_LOGS + "WHERE %(status)s::text IS NULL OR status = %(status)s "
            "ORDER BY started_at DESC LIMIT %(limit)s", {"status": status, "limit": limit}).fetchall()
    return [ImportLog(**r) for r in rows]


def import_stats(url: str | None = None, days: int = 30) -> ImportStats:
    """``SELECT * FROM get_import_stats(days)``."""
    with session(url) as conn:
        row = conn.cursor(row_factory=dict_row).execute("SELECT * FROM get_import_stats(%s)", (days,)).fetchone()
    avg = row.pop("avg_duration_seconds")
    return ImportStats(days=days, avg_duration_seconds=None if avg is None else float(avg), **row)


def promote(url: str | None = None, import_id: uuid.UUID | str | None = None, *, latest: bool = False,
            signals: EventStore | None = None) -> SnapshotInfo:
    """Promote an import's ready snapshot to current (``latest``: the newest ready import's) and
    record the ``promoted`` lifecycle signal (in ``signals``, default the configured store)."""
    if import_id is not None and latest:
        raise SnapshotError("name the import to promote or ask for the latest, not both")
    with session(url) as conn:
        if import_id is None:
            if not latest:
                raise SnapshotError("name the import to promote (an import id from `musingly imports`), "
                                    "or ask for the latest ready one (--latest; `latest: true` in Dagster)")
            row = conn.execute(
                "SELECT l.id FROM import_logs l JOIN snapshots s ON s.id = l.snapshot_id "
                "WHERE l.status = 'ready' AND s.status = 'ready' ORDER BY l.started_at DESC LIMIT 1").fetchone()
            if row is None:
                raise SnapshotError("no ready import to promote; import a bundle first (`musingly import FILE`)")
            import_id = row[0]
        import_id = _uuid(import_id, "import id")
        with _refusals(), conn.transaction():
            snapshot_id = conn.execute("SELECT promote_import(%s)", (import_id,)).fetchone()[0]
        info = _snapshot(conn, snapshot_id)
    _record_lifecycle(signals, [("promoted", info.promoted_at)], info.id, import_id, info.version_label,
                      done=f"snapshot {info.id} ({info.version_label}) is current")
    return info


def rollback(url: str | None = None, import_id: uuid.UUID | str | None = None, *,
             signals: EventStore | None = None) -> SnapshotInfo:
    """Make the snapshot the current one replaced current again; returns it. Records the
    ``rolled_back`` lifecycle signal (in ``signals``, default the configured store)."""
    with session(url) as conn:
        key = None if import_id is None else _uuid(import_id, "import id")
        with _refusals(), conn.transaction():
            snapshot_id = conn.execute("SELECT rollback_import(%s)", (key,)).fetchone()[0]
        info = _snapshot(conn, snapshot_id)
    _record_lifecycle(signals, [("rolled_back", datetime.now(timezone.utc))], info.id, key, info.version_label,
                      done=f"rolled back: snapshot {info.id} ({info.version_label}) is current")
    return info


def _record_lifecycle(signals: EventStore | None, events: list[tuple[str, datetime]], snapshot_id: uuid.UUID,
                      import_id: uuid.UUID | None, version_label: str, *, done: str) -> None:
    """Write lifecycle signals after the change they describe was committed; a failure says so."""
    store = signals
    try:
        if store is None:
            store = configured_store()
        for event, at in events:
            record_snapshot_event(store, event, snapshot_id, import_id, version_label, at)
    except Exception as exc:
        raise SnapshotError(f"{done}, but its lifecycle signal could not be written ({type(exc).__name__}: {exc}); "
                            "`current_snapshot_at` will miss this step until it is recorded") from exc
    finally:
        if signals is None and store is not None:
            store.close()


def delete_draft(url: str | None, snapshot_id: uuid.UUID | str) -> None:
    """Delete a draft or ready (never promoted) snapshot and its rows."""
    with session(url) as conn, _refusals(), conn.transaction():
        conn.execute("SELECT delete_draft_snapshot(%s)", (_uuid(snapshot_id, "snapshot id"),))


def cleanup(url: str | None, keep: int) -> int:
    """Keep the ``keep`` most recently published snapshots; delete older archived ones; return how many."""
    with session(url) as conn, _refusals(), conn.transaction():
        return conn.execute("SELECT cleanup_old_snapshots(%s)", (keep,)).fetchone()[0]


def snapshot_row_counts(url: str | None, snapshot_id: uuid.UUID | str) -> dict[str, int]:
    """Rows per content table stored for the snapshot (keys as ``ImportBundle.counts()``)."""
    from psycopg import sql

    sid = _uuid(snapshot_id, "snapshot id")
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {} WHERE snapshot_id = %(s)s").format(sql.Literal(name), sql.Identifier(name))
        for name in TABLES)
    with session(url) as conn:
        return {name: n for name, n in conn.execute(query, {"s": sid}).fetchall()}


def export_bundle(url: str | None, snapshot_id: uuid.UUID | str) -> ImportBundle:
    """A snapshot's content as a bundle (its version label and name, synthetic metadata)."""
    sid = _uuid(snapshot_id, "snapshot id")
    with session(url) as conn:
        info = _snapshot(conn, sid)
        if info is None:
            raise SnapshotError(f"snapshot {sid} does not exist; see `musingly snapshots`")
        header = ImportBundle.model_validate({
            "schema_version": "1.0.0", "version_label": info.version_label, "name": info.name,
            "metadata": {"generated_at": info.created_at, "source_system": "musingly-export",
                         "description": info.description}})
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return read_bundle_content(conn, sid, header)


# Import


def import_bundle_file(url: str | None, path: str | Path, *, expect_sha256: str | None = None,
                       **options) -> ImportResult:
    """Validate the file (every rule) and import it; see :func:`import_bundle` for the options.

    The file is read once. Raises :class:`BundleInvalid` with the report when the file breaks a
    rule. A file that does not parse against the contracts never reaches the database; the
    integrity rules of a full import run while the rows load (see :func:`import_bundle`). A
    ``merge`` checks the file with every rule first, then the merged content. ``expect_sha256``:
    the import is refused unless the bytes read have this sha256 (a staged bundle named by its
    hash). The result and both exceptions carry the file's sha256 and size (``source``).
    """
    options.setdefault("source_file", str(path))
    merge = options.get("merge")
    checked = validate_bundle_file(path) if merge else read_bundle(path)
    source = SourceFile(checked.sha256, checked.size, dict(checked.report.counts))
    if expect_sha256 is not None and checked.sha256 is not None and checked.sha256 != expect_sha256:
        refused = ImportRefused(f"{path} has sha256 {checked.sha256}, not the {expect_sha256} it was staged as; "
                                "nothing was imported: drop the file again")
        refused.source = source
        raise refused
    if not checked.valid:
        raise BundleInvalid(checked.report, source)
    try:
        if merge:  # the patch itself was checked first; the merged content is checked next
            result = import_bundle(url, checked.bundle, validated=True, warnings=tuple(checked.report.warnings),
                                   **options)
        else:
            result = import_bundle(url, checked.bundle, _report=checked.report, **options)
    except (BundleInvalid, ImportRefused) as exc:
        exc.source = source
        raise
    return replace(result, source=source)


@gc_paused()  # hashing and COPY rows make ~1M short-lived tuples; see gcpause
def import_bundle(
    url: str | None,
    bundle: ImportBundle,
    *,
    source_file: str | None = None,
    promote: bool = False,
    merge: bool = False,
    remove: Iterable[str | tuple[str, str]] = (),
    allow_shrink: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    validated: bool = False,
    warnings: tuple[Issue, ...] = (),
    created_by: str | None = None,
    signals: EventStore | None = None,
    _report: ValidationReport | None = None,
) -> ImportResult:
    """Import ``bundle`` as a new ready snapshot (and promote it with ``promote``), and record its
    lifecycle signals in ``signals`` (default: the configured signal store).

    * ``merge``: the new snapshot is the current one with the bundle's rows replacing or adding by
      slug, minus ``remove`` (``"sparks:old-slug"``, ``"spark_links:a->b"``); the merged content is
      validated with every rule.
    * A full import that keeps less than half of the current snapshot's sparks raises
      :class:`ImportRefused` unless ``allow_shrink``.
    * Content equal (by :func:`content_hash`) to a ready or current snapshot reuses that snapshot
      (``reused=True``) unless ``force``.
    * ``validated``: the caller already ran every rule on ``bundle`` (skips a second pass).
      Otherwise the rules of a full import run in this thread while another one loads the rows
      (they take about a tenth of a large import); a broken rule cancels the load, deletes the
      import's log row and raises :class:`BundleInvalid`, so the bundle leaves nothing behind.
    """
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    check: ValidationReport | None = None  # the report the integrity rules still have to fill in
    removals = [r if isinstance(r, tuple) else _parse_removal(r) for r in remove]
    if removals and not merge:
        raise ImportRefused("removing rows only makes sense when merging (--merge; `merge: true` in Dagster): "
                            "a full import replaces everything")
    with session(url) as conn:
        current = _current(conn)
        if merge:
            if current is None:
                raise ImportRefused("there is no current snapshot to merge onto; import and promote a full bundle "
                                    "first (an incremental bundle only adds to or replaces rows of the current one)")
            if progress:
                progress("reading current snapshot", 0, 0)
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                base = read_bundle_content(conn, current.id, bundle)
            patch = bundle
            try:
                bundle = merge_bundles(base, patch, removals)
            except RemovalError as exc:
                raise ImportRefused(str(exc)) from None
            label = f"{source_file or bundle.version_label} merged onto {current.version_label}"
            report = validate_bundle(bundle, file=label)
            if not report.valid:
                raise BundleInvalid(report)
            warnings = tuple(report.warnings)
        else:
            if not validated:
                check = _report or ValidationReport(file=source_file or bundle.version_label, counts=bundle.counts())
            if current is not None and not allow_shrink:
                _refuse_shrink(current, bundle)
        result = _import(conn, bundle, current, started=started, source_file=source_file,
                         promote=promote, merged=merge, force=force, progress=progress,
                         warnings=warnings, created_by=created_by,
                         merge_source=(base, patch) if merge else None, check=check)
    events = [("import_started", started_at), ("snapshot_ready", datetime.now(timezone.utc))]
    if promote:  # (a reuse of the current snapshot is logged promoted, but promotes nothing)
        events.append(("promoted", datetime.now(timezone.utc)))
    try:
        _record_lifecycle(signals, events, result.snapshot_id, result.import_id, result.version_label,
                          done=f"import {result.import_id} is {result.status} (snapshot {result.snapshot_id})")
    except SnapshotError as exc:  # the import is done: say so, and what is missing
        return replace(result, lifecycle_error=str(exc))
    return result


def _parse_removal(text: str) -> tuple[str, str]:
    try:
        return parse_removal(text)
    except RemovalError as exc:
        raise ImportRefused(str(exc)) from None


def _refuse_shrink(current: SnapshotInfo, bundle: ImportBundle) -> None:
    before = int(current.entity_counts.get("sparks", 0))
    after = len(bundle.sparks)
    if before and after < before * SHRINK_LIMIT:
        raise ImportRefused(
            f"this bundle has {after} spark(s) but the current snapshot {current.version_label} has {before}: "
            f"a full import would remove {before - after} of them (more than half). If it is an incremental "
            "bundle, merge it onto the current snapshot (`musingly import --merge`; in Dagster, drop it into "
            "inbox/incremental/ or launch import_bundle with `merge: true`); to replace the content anyway, "
            "allow the shrink (`--allow-shrink`; `allow_shrink: true` in Dagster)")


def _import(conn: psycopg.Connection, bundle: ImportBundle, current: SnapshotInfo | None, *,
            started: float, source_file: str | None, promote: bool, merged: bool, force: bool,
            progress: Progress | None, warnings: tuple[Issue, ...], created_by: str | None,
            merge_source: tuple[ImportBundle, ImportBundle] | None = None,
            check: ValidationReport | None = None) -> ImportResult:
    """Log, load and finalize ``bundle`` as a new ready snapshot, or reuse a snapshot with the same
    content.

    The COPY runs in a thread while this one runs the integrity rules (``check``: the report to
    fill in, if ``bundle`` has not been checked yet) and computes the content hash, which mostly
    fits in the time the server spends on the rows. So the rows are loaded before the hash says
    whether a ready or current snapshot already has this content; if one does, the load is rolled
    back (to a savepoint) and that snapshot reused. ``merge_source``: (base, patch) of a merge,
    base being ``current``'s content; the rows kept from it are copied inside the database."""
    meta = bundle.metadata
    import_id = conn.execute("SELECT start_import(%s, %s, %s, %s)",
                             (bundle.version_label, meta.source_system, meta.source_version, created_by)).fetchone()[0]
    try:
        conn.execute("UPDATE import_logs SET source_file = %s WHERE id = %s", (source_file, import_id))
        conn.execute("SELECT update_import_status(%s, 'importing')", (import_id,))
        loaded = _load_or_reuse(conn, import_id, bundle, current, merge_source, progress, check, force)
        if loaded is None:  # the snapshot to reuse was deleted meanwhile: load again, keeping a copy
            loaded = _load_or_reuse(conn, import_id, bundle, current, merge_source, progress, None, True)
        snapshot_id, counts, digest, reused, status = loaded
    except BundleInvalid:
        _discard_log(conn, import_id)
        raise
    except BaseException as exc:
        _mark_failed(conn, import_id, exc)
        raise
    if check is not None:
        warnings = tuple(check.warnings)
    if promote:
        with _refusals(), conn.transaction():
            conn.execute("SELECT promote_import(%s, %s)", (import_id, snapshot_id))
        status = "promoted"
    return ImportResult(
        import_id=import_id, snapshot_id=snapshot_id, version_label=bundle.version_label, status=status,
        entity_counts=_in_kind_order(counts), reused=reused, content_hash=digest, merged=merged,
        source_file=source_file, seconds=time.perf_counter() - started, warnings=warnings,
        parent_id=current.id if current else None)


def _load_or_reuse(conn: psycopg.Connection, import_id: uuid.UUID, bundle: ImportBundle,
                   current: SnapshotInfo | None, merge_source: tuple[ImportBundle, ImportBundle] | None,
                   progress: Progress | None, check: ValidationReport | None, force: bool,
                   ) -> tuple[uuid.UUID, dict[str, int], str, bool, str] | None:
    """One transaction: load ``bundle`` as a new ready snapshot, or reuse one with the same content;
    (snapshot id, counts, content hash, reused, log status). ``None``: the snapshot to reuse was
    deleted between finding it and locking it, and this load is rolled back (load again)."""
    meta = bundle.metadata
    with conn.transaction():
        existing = None
        try:
            with conn.transaction():  # a savepoint: rolled back when the content is reused
                if merge_source is not None and conn.execute(
                        "SELECT 1 FROM snapshots WHERE id = %s FOR KEY SHARE", (current.id,)).fetchone() is None:
                    # The merge copies rows of the snapshot it read; that one was archived and
                    # cleaned up meanwhile (the lock keeps it from then on).
                    raise ImportRefused(
                        f"the snapshot this merge started from ({current.version_label}) was replaced and deleted "
                        "while the merge ran; nothing was imported, run the merge again", code="IMPORT_BASE_DELETED")
                snapshot_id = conn.execute(
                    "SELECT create_snapshot_row(%s, %s, %s, %s)",
                    (bundle.name, bundle.version_label, meta.description, current.id if current else None),
                ).fetchone()[0]
                counts, digest = _load_and_hash(conn, snapshot_id, bundle, current, merge_source, progress, check)
                # Two imports of the same content wait for each other here, so the second finds
                # the first's snapshot instead of keeping a copy.
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_HASH_LOCK_NAMESPACE, digest))
                existing = None if force else conn.execute(
                    "SELECT id FROM snapshots WHERE content_hash = %s AND status IN ('ready', 'current') "
                    "ORDER BY (status = 'current') DESC, created_at DESC LIMIT 1", (digest,)).fetchone()
                if existing is not None:
                    raise _SameContent()
                conn.execute("UPDATE snapshots SET content_hash = %s WHERE id = %s", (digest, snapshot_id))
                conn.execute("SELECT finalize_import(%s, %s, %s)", (import_id, snapshot_id, json.dumps(counts)))
                return snapshot_id, counts, digest, False, "ready"
        except _SameContent:
            pass
        # The load is rolled back, and with it every lock it took. Hold the snapshot reused until
        # this commits, so a delete-draft or cleanup waits (and then marks this log failed, as it
        # does for every log of a snapshot it deletes) instead of removing it under this import.
        # A reuse of the current snapshot is logged 'promoted': its content is live, and the log is
        # archived or rolled back with it (a reuse of a ready one is promoted with it: 0009).
        row = conn.execute("SELECT id, status, entity_counts FROM snapshots WHERE id = %s "
                           "AND status IN ('ready', 'current') FOR KEY SHARE", (existing[0],)).fetchone()
        if row is None:
            return None
        snapshot_id, snapshot_status, counts = row
        status = "promoted" if snapshot_status == "current" else "ready"
        conn.execute("UPDATE import_logs SET reused = true WHERE id = %s", (import_id,))
        conn.execute("SELECT update_import_status(%s, %s, %s, %s)",
                     (import_id, status, snapshot_id, json.dumps(counts)))
        return snapshot_id, counts, digest, True, status


class _LoadStopped(Exception):
    """Raised in the loading thread when this one has already failed: load no further table."""


class _SameContent(Exception):
    """Raised inside the load's savepoint to roll it back: an existing snapshot has this content."""


def _load_and_hash(conn: psycopg.Connection, snapshot_id: uuid.UUID, bundle: ImportBundle,
                   current: SnapshotInfo | None, merge_source: tuple[ImportBundle, ImportBundle] | None,
                   progress: Progress | None, check: ValidationReport | None = None) -> tuple[dict[str, int], str]:
    """COPY the bundle into ``snapshot_id`` in a thread while checking (``check``) and hashing it
    here; (counts, digest). Raises :class:`BundleInvalid` if a rule is broken, whatever the load did
    meanwhile (an unknown slug can also fail the load: the report is the error to show)."""
    def load() -> dict[str, int]:
        if merge_source is not None:
            base, patch = merge_source
            return load_merged_bundle(conn, snapshot_id, bundle, current.id, base, patch, watched)
        return load_bundle(conn, snapshot_id, bundle, watched)

    stop = threading.Event()

    def watched(stage: str, done: int, total: int) -> None:  # the load's progress: where it stops early
        if stop.is_set():
            raise _LoadStopped()
        if progress is not None:
            progress(stage, done, total)

    with ThreadPoolExecutor(1, thread_name_prefix="musingly-copy") as pool:
        loading = pool.submit(load)
        try:
            if check is not None:
                if progress:
                    progress("checking", 0, 0)
                check.issues.extend(check_bundle(bundle))
                if not check.valid:
                    raise BundleInvalid(check)
            if progress:
                progress("hashing", 0, 0)
            digest = content_hash(bundle)
        except BaseException:
            stop.set()  # no further table
            conn.cancel_safe()  # stop the COPY rather than wait for it; the transaction rolls back
            wait([loading])
            raise
        return loading.result(), digest


def _discard_log(conn: psycopg.Connection, import_id: uuid.UUID) -> None:
    """Delete the log row of an import whose bundle turned out invalid (its load is rolled back)."""
    if not conn.closed and not conn.broken:
        conn.execute("DELETE FROM import_logs WHERE id = %s AND snapshot_id IS NULL", (import_id,))


def _mark_failed(conn: psycopg.Connection, import_id: uuid.UUID, exc: BaseException) -> None:
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
