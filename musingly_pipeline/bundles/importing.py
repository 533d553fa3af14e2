"""The bundle import, as its steps: read, validate, plan, load, finalize, record.

:func:`import_file` and :func:`import_bundle` are the whole import; each step below is one function,
in the order they run, and each takes what it needs from the step before (nothing comes back up):

0. A full import of a file (not forced) hashes its bytes first: the same bytes already imported
   in full, under the same rules version, reuse that ready or current snapshot without being parsed
   (:mod:`~musingly_pipeline.bundles.same_bytes`, :func:`_reuse_same_bytes`). Otherwise, the steps:
1. :func:`read`: the file's bytes, once: parsed against the contracts, hashed (a staged bundle
   must have the hash it was staged under). A file that does not parse never reaches the database.
2. :func:`validate`: every integrity and graph rule (``check_bundle``), the one place they run. A
   merge checks the file first (:func:`validate_patch`: its own rules, not its references), then
   the merged content; a full import checks while it loads.
3. :func:`plan`: a full import (refused if it would drop most of the current sparks) or a merge
   onto the current snapshot, the bundle's rows replacing or adding by slug. A merge is planned as
   a delta on the current snapshot's base when :class:`~.delta.DeltaPolicy` allows
   (:mod:`~musingly_pipeline.bundles.delta`: only the rows it touches are read, the rules it can
   break checked on the merged result, the hash from the base's sums); otherwise the current
   content is read back, merged and checked whole, and written as a full snapshot.
4. :func:`load`: one transaction: if the current snapshot has the bundle's row counts, the bundle
   is hashed first, and content identical to the current snapshot reuses it without loading
   anything. Otherwise: the snapshot row, COPY of every table into its own partition in a thread
   while this one validates and hashes (:mod:`~musingly_pipeline.bundles.parallel_load`), then
   under the content hash's lock either ``finalize_import`` or, if a ready or current snapshot has
   the same content, a rollback of the load and reuse of that snapshot. Nothing is visible
   until it commits; a killed process leaves no rows, and its log is marked failed by the next
   command. A bundle that breaks a rule leaves nothing, not even its log row. A delta merge writes
   its masks and its own rows only (:func:`~.delta.load_delta`), in the same transaction.
5. :func:`finalize`: with ``promote``, ``promote_import`` in its own transaction.
6. :func:`record`: the lifecycle signals, after the commit.

Locks: the parent snapshot's row (and a merge's base) first, then the content tables, the order in
which cleanup and delete-draft take them (the SQL functions of 0001_baseline.sql), so they never deadlock.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from musingly_core.bundle_file import BundleFile, read_bundle
from musingly_core.gcpause import gc_paused
from musingly_core.integrity import check_bundle
from musingly_core.models import ENTITY_KINDS, ImportBundle
from musingly_core.report import Issue, Severity, ValidationReport

from musingly_pipeline.bundles import import_log, lifecycle, same_bytes
from musingly_pipeline.bundles.content_hash import content_hash
from musingly_pipeline.bundles.delta import DeltaPlan, DeltaPolicy, load_delta, plan_delta
from musingly_pipeline.bundles.errors import BundleError, BundleInvalid, ImportRefused, SnapshotError, SourceFile
from musingly_pipeline.bundles.loader import Progress
from musingly_pipeline.bundles.merge import merge_bundles, parse_removal, patch_paths
from musingly_pipeline.bundles.models import ImportResult, SnapshotInfo, in_kind_order
from musingly_pipeline.bundles.parallel_load import load_and_hash
from musingly_pipeline.bundles.projections import read_bundle_content, row_key
from musingly_pipeline.bundles.same_bytes import FileBytes
from musingly_pipeline.bundles.session import current_row, refusals, session
from musingly_pipeline.signals.store import EventStore

# A full import may not drop more than this share of the current snapshot's sparks without
# allow_shrink: a hotfix bundle imported without --merge would otherwise wipe the content.
SHRINK_LIMIT = 0.5
# Advisory lock namespace for "one import of this content hash at a time" (transaction lock).
_HASH_LOCK_NAMESPACE = 1836413803


@dataclass(frozen=True)
class ImportOptions:
    """How to import a bundle.

    * ``merge``: the new snapshot is the current one with the bundle's rows replacing or adding by
      slug, minus ``remove`` (``"sparks:old-slug"``, ``"spark_links:a->b"``).
    * ``allow_shrink``: allow a full import that keeps less than half of the current sparks.
    * ``force``: a new snapshot even if a ready or current one has the same content (else reused).
    * ``validated``: the caller already ran every rule on the bundle (no second pass).
    * ``expect_sha256``: refuse a file whose bytes do not have this sha256 (a staged bundle).
    * ``delta``: when a merge is stored as a delta on its base (:class:`~.delta.DeltaPolicy`).
    """

    promote: bool = False
    merge: bool = False
    remove: tuple[str | tuple[str, str], ...] = ()
    allow_shrink: bool = False
    force: bool = False
    validated: bool = False
    expect_sha256: str | None = None
    source_file: str | None = None
    created_by: str | None = None
    progress: Progress | None = None
    delta: DeltaPolicy = DeltaPolicy()


@dataclass(frozen=True)
class Plan:
    """What to load: ``bundle`` (for a merge, the merged content) onto ``current``. ``check``: the
    report the rules still have to fill in while loading; ``merge_source``: a merge's (base, patch)
    when it writes a full snapshot; ``delta``: a merge stored as a delta (``bundle`` is the patch)."""

    bundle: ImportBundle
    current: SnapshotInfo | None
    check: ValidationReport | None = None
    merge_source: tuple[ImportBundle, ImportBundle] | None = None
    warnings: tuple[Issue, ...] = ()
    delta: DeltaPlan | None = None


def import_file(url: str | None, path: str | Path, options: ImportOptions,
                signals: EventStore | None = None) -> ImportResult:
    """Read the file once and import it (see :func:`import_bundle`). The result and every refusal
    (:class:`BundleInvalid`, :class:`ImportRefused` ...) carry the file's sha256 and size (``source``).

    A full import hashes the bytes first: unless ``force``, the same bytes already imported in full
    under the same rules version reuse that ready or current snapshot without being parsed
    (:func:`_reuse_same_bytes`); else they are parsed once, and the import records their sha256."""
    started, started_at = time.perf_counter(), datetime.now(timezone.utc)
    options = replace(options, source_file=options.source_file or str(path))
    known = None if options.merge else same_bytes.read_file(path)
    if known is not None and not options.force and options.expect_sha256 in (None, known.sha256):
        reused = _reuse_same_bytes(url, known, options, signals, started, started_at)
        if reused is not None:
            return reused
    file, source = read(path, options.expect_sha256, known)
    try:
        result = import_bundle(url, file.bundle, options, signals, report=file.report,
                               source_sha256=None if options.merge else file.sha256)
    except BundleError as exc:
        exc.source = source
        raise
    return replace(result, source=source)


def _reuse_same_bytes(url: str | None, known: FileBytes, options: ImportOptions, signals: EventStore | None,
                      started: float, started_at: datetime) -> ImportResult | None:
    """The import of bytes a full import already read, under the same rules version, while the
    snapshot it made or reused is ready or current: a new log row marked reused (its version label
    and metadata the earlier log's), the snapshot's counts, hash and warnings, promoted with
    ``promote``, the lifecycle signals recorded. Refused as the parsed import would be: a shrink of
    the current snapshot (by the snapshot's counts). ``None``: no such snapshot, or it was deleted
    before it could be locked (its log row then discarded): import the file the usual way."""
    with session(url) as conn:
        found = same_bytes.find(conn, known.sha256)
        if found is None:
            return None
        source = SourceFile(known.sha256, known.size, in_kind_order(found.entity_counts))
        try:
            current = current_row(conn)
            if current is not None and not options.allow_shrink:
                _refuse_shrink_to(current, int(found.entity_counts.get("sparks", 0)))
            import_id = import_log.start_row(conn, found.version_label, found.source_system, found.source_version,
                                             options.source_file, options.created_by)
            try:
                status = same_bytes.reuse(conn, import_id, found, known.sha256)
            except BaseException as exc:
                import_log.mark_failed(conn, import_id, exc)
                raise
            if status is None:  # deleted since it was found: parse and import as usual
                import_log.discard(conn, import_id)
                return None
            result = ImportResult(
                import_id=import_id, snapshot_id=found.snapshot_id, version_label=found.version_label, status=status,
                entity_counts=in_kind_order(found.entity_counts), reused=True, content_hash=found.content_hash,
                source_file=options.source_file, seconds=time.perf_counter() - started, warnings=found.warnings,
                parent_id=current.id if current else None, source=source)
            result = finalize(conn, result, options.promote, started)
        except BundleError as exc:
            exc.source = source
            raise
    return record(signals, result, started_at, options.promote)


@gc_paused()  # hashing and COPY rows make ~1M short-lived tuples; see gcpause
def import_bundle(url: str | None, bundle: ImportBundle, options: ImportOptions,
                  signals: EventStore | None = None, report: ValidationReport | None = None,
                  source_sha256: str | None = None) -> ImportResult:
    """Import ``bundle`` as a new ready snapshot (promoted with ``options.promote``) and record its
    lifecycle signals in ``signals`` (default: the configured signal store). ``report``: the file's
    report, when the bundle was read from a file (the rules add their issues to it);
    ``source_sha256``: that file's sha256, recorded on the log of a full import (see
    :mod:`~musingly_pipeline.bundles.same_bytes`)."""
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    if options.merge and report is not None:
        validate_patch(bundle, report)  # the file itself first; the merged content is checked next
    removals = _removals(options.remove, options.merge)
    with session(url) as conn:
        planned = plan(conn, bundle, removals, options, report)
        result = load(conn, planned, options, started, source_sha256)
        result = finalize(conn, result, options.promote, started)
    return record(signals, result, started_at, options.promote)


def read(path: str | Path, expect_sha256: str | None = None,
         known: FileBytes | None = None) -> tuple[BundleFile, SourceFile]:
    """The file parsed against the contracts, and its sha256, size and counts. Refuses bytes whose
    hash is not ``expect_sha256`` and a file that does not parse (:class:`BundleInvalid`).
    ``known``: the file's bytes and sha256, already read (neither is read or computed again)."""
    file = read_bundle(path) if known is None else read_bundle(path, data=known.data, sha256=known.sha256)
    source = SourceFile(file.sha256, file.size, dict(file.report.counts))
    if expect_sha256 is not None and file.sha256 is not None and file.sha256 != expect_sha256:
        refused = ImportRefused("IMPORT_SHA256_MISMATCH", f"{path} has sha256 {file.sha256}, not the {expect_sha256} "
                                "it was staged as; nothing was imported: drop the file again")
        refused.source = source
        raise refused
    if not file.valid:
        raise BundleInvalid(file.report, source)
    return file, source


def validate_patch(bundle: ImportBundle, report: ValidationReport) -> ValidationReport:
    """The rules an incremental bundle must meet by itself (no repeated slug, junction or link, no
    self link, no cycle of its own links), adding its errors to ``report``; raises
    :class:`BundleInvalid` if one is broken. A reference to a slug it does not define is not one of
    them: it may be the current snapshot's (a new link between two stored sparks); references are
    checked on the merged content. Its warnings (a spark in no concept of the patch ...) say nothing
    of the merged content and are left out."""
    report.issues.extend(i for i in check_bundle(bundle)
                         if i.severity is Severity.error and i.code != "BUNDLE_UNKNOWN_REFERENCE")
    if not report.valid:
        raise BundleInvalid(report)
    return report


def validate(bundle: ImportBundle, report: ValidationReport) -> ValidationReport:
    """Run every integrity and graph rule on ``bundle``, adding the issues to ``report``; raises
    :class:`BundleInvalid` with the report if one is broken."""
    report.issues.extend(check_bundle(bundle))
    if not report.valid:
        raise BundleInvalid(report)
    return report


def plan(conn: psycopg.Connection, bundle: ImportBundle, removals: list[tuple[str, str]], options: ImportOptions,
         report: ValidationReport | None) -> Plan:
    """A full import onto the current snapshot, or a merge onto it (validated here)."""
    current = current_row(conn)
    if not options.merge:
        if current is not None and not options.allow_shrink:
            refuse_shrink(current, bundle)
        if options.validated:
            return Plan(bundle, current)
        label = options.source_file or bundle.version_label
        return Plan(bundle, current, check=report or ValidationReport(file=label, counts=bundle.counts()))
    if current is None:
        raise ImportRefused("IMPORT_NOTHING_TO_MERGE", "there is no current snapshot to merge onto; import and "
                            "promote a full bundle first (an incremental bundle only adds to or replaces rows of "
                            "the current one)")
    if options.progress:
        options.progress("reading current snapshot", 0, 0)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        delta = plan_delta(conn, current, bundle, removals, options.delta)
        if delta is not None:  # the rows the patch touches only, checked over the merged result
            label = f"{options.source_file or bundle.version_label} merged onto {current.version_label}"
            checked = ValidationReport(file=label, counts=delta.counts, issues=list(delta.issues))
            if not checked.valid:
                raise BundleInvalid(checked)
            return Plan(bundle, current, warnings=tuple(checked.warnings), delta=delta)
        base = read_bundle_content(conn, current.id, bundle)
    merged = merge_bundles(base, bundle, removals)
    label = f"{options.source_file or merged.version_label} merged onto {current.version_label}"
    checked = ValidationReport(file=label, counts=merged.counts(),
                               issues=patch_paths(check_bundle(merged), merged, bundle))
    if not checked.valid:
        raise BundleInvalid(checked)
    return Plan(merged, current, merge_source=(base, bundle), warnings=tuple(checked.warnings))


def refuse_shrink(current: SnapshotInfo, bundle: ImportBundle) -> None:
    """:class:`ImportRefused` if a full import of ``bundle`` would drop most of ``current``'s sparks."""
    _refuse_shrink_to(current, len(bundle.sparks))


def _refuse_shrink_to(current: SnapshotInfo, after: int) -> None:
    """:class:`ImportRefused` if a full import of content with ``after`` sparks would drop most of
    ``current``'s sparks."""
    before = int(current.entity_counts.get("sparks", 0))
    if before and after < before * SHRINK_LIMIT:
        raise ImportRefused(
            "IMPORT_SHRINK_REFUSED",
            f"this bundle has {after} spark(s) but the current snapshot {current.version_label} has {before}: "
            f"a full import would remove {before - after} of them (more than half). If it is an incremental "
            "bundle, merge it onto the current snapshot (`musingly import --merge`; in Dagster, drop it into "
            "inbox/incremental/ or launch import_bundle with `merge: true`); to replace the content anyway, "
            "allow the shrink (`--allow-shrink`; `allow_shrink: true` in Dagster)")


def load(conn: psycopg.Connection, planned: Plan, options: ImportOptions, started: float,
         source_sha256: str | None = None) -> ImportResult:
    """Log the attempt, then load the plan as a new ready snapshot or reuse one with the same content.
    Then the snapshot keeps the rules' warnings if it had none, and a full import's log the file's
    ``source_sha256`` (:func:`same_bytes.remember <musingly_pipeline.bundles.same_bytes.remember>`)."""
    bundle, current = planned.bundle, planned.current
    import_id = import_log.start(conn, bundle, options.source_file, options.created_by)
    try:
        loaded = _load_or_reuse(conn, import_id, planned, options.progress, planned.check, options.force)
        if loaded is None:  # the snapshot to reuse was deleted meanwhile: load again, keeping a copy
            loaded = _load_or_reuse(conn, import_id, planned, options.progress, None, True)
        snapshot_id, counts, digest, reused, status = loaded
    except BundleInvalid:
        import_log.discard(conn, import_id)
        raise
    except BaseException as exc:
        import_log.mark_failed(conn, import_id, exc)
        raise
    warnings = tuple(planned.check.warnings) if planned.check is not None else planned.warnings
    known = warnings if planned.check is not None or planned.merge_source is not None else None  # else: validated
    same_bytes.remember(conn, import_id, snapshot_id, known, None if options.merge else source_sha256)
    return ImportResult(
        import_id=import_id, snapshot_id=snapshot_id, version_label=bundle.version_label, status=status,
        entity_counts=in_kind_order(counts), reused=reused, content_hash=digest, merged=options.merge,
        source_file=options.source_file, seconds=time.perf_counter() - started, warnings=warnings,
        parent_id=current.id if current else None)


class _SameContent(Exception):
    """Raised inside the load's savepoint to roll it back: an existing snapshot has this content."""


def _load_or_reuse(conn: psycopg.Connection, import_id: uuid.UUID, planned: Plan, progress: Progress | None,
                   check: ValidationReport | None, force: bool,
                   ) -> tuple[uuid.UUID, dict[str, int], str, bool, str] | None:
    """One transaction: load the plan as a new ready snapshot, or reuse one with the same content;
    (snapshot id, counts, content hash, reused, log status). ``None``: the snapshot to reuse was
    deleted between finding it and locking it, and this load is rolled back (load again)."""
    bundle, current = planned.bundle, planned.current
    with conn.transaction():
        existing = digest = None
        if planned.delta is not None:  # its hash is known: the parent's sums, updated by the change
            digest = planned.delta.digest
            existing = (current.id,) if not force and planned.delta.changes_nothing() else None
        elif not force and planned.merge_source is None:
            digest, existing = _find_before_loading(conn, bundle, progress)
        elif not force:  # a merge keeps its base's counts when it only changes rows: compare the rows
            digest, existing = _merge_changing_nothing(planned)
        if existing is not None and check is not None:
            validate(bundle, check)  # refused or warned about exactly as if it had been loaded
        try:
            if existing is not None:
                raise _SameContent()  # nothing was loaded: no snapshot row, no partition
            with conn.transaction():  # a savepoint: rolled back when the content is reused
                if (planned.merge_source is not None or planned.delta is not None) and conn.execute(
                        "SELECT 1 FROM snapshots WHERE id = %s FOR KEY SHARE", (current.id,)).fetchone() is None:
                    # The merge copies rows of the snapshot it read; that one was archived and
                    # cleaned up meanwhile (the lock keeps it from then on).
                    raise ImportRefused(
                        "IMPORT_BASE_DELETED", f"the snapshot this merge started from ({current.version_label}) was "
                        "replaced and deleted while the merge ran; nothing was imported, run the merge again")
                snapshot_id = conn.execute(
                    "SELECT create_snapshot_row(%s, %s, %s, %s)",
                    (bundle.name, bundle.version_label, bundle.metadata.description, current.id if current else None),
                ).fetchone()[0]
                if planned.delta is not None:
                    load_delta(conn, snapshot_id, planned.delta, progress)
                    counts = planned.delta.counts
                else:
                    counts, digest = load_and_hash(conn, snapshot_id, bundle, current.id if current else None,
                                                   planned.merge_source, progress,
                                                   None if check is None else lambda: validate(bundle, check),
                                                   digest=digest)
                # Two imports of the same content wait for each other here, so the second finds
                # the first's snapshot instead of keeping a copy.
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_HASH_LOCK_NAMESPACE, digest))
                existing = None if force else _same_content(conn, digest)
                if existing is not None:
                    raise _SameContent()
                sums = getattr(digest, "sums", None)
                conn.execute("UPDATE snapshots SET content_hash = %s, content_sums = %s WHERE id = %s",
                             (digest, None if sums is None else json.dumps(sums.to_json()), snapshot_id))
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


def _find_before_loading(conn: psycopg.Connection, bundle: ImportBundle, progress: Progress | None,
                         ) -> tuple[str | None, tuple | None]:
    """(digest, (current snapshot id,) if it has this content, else None) when the current snapshot
    has the bundle's row counts: the bundle is then hashed before anything is loaded, and content
    identical to the current snapshot is reused without loading it. (None, None) otherwise: no
    content can be the current one, and the hash runs beside the COPY as before (a new bundle pays
    nothing for the check). Content identical to a ready snapshot is still found after the load (the
    race with a delete-draft of that snapshot is handled, and tested, there)."""
    row = conn.execute("SELECT id, content_hash FROM snapshots WHERE status = 'current' AND entity_counts = %s::jsonb",
                       (json.dumps(bundle.counts()),)).fetchone()
    if row is None or row[1] is None:
        return None, None
    if progress:
        progress("hashing", 0, 0)
    digest = content_hash(bundle)
    return digest, ((row[0],) if digest == row[1] else None)


def _merge_changing_nothing(planned: Plan) -> tuple[str | None, tuple | None]:
    """(the base's hash, (base id,)) if the merged content is the base's (the snapshot the merge
    read, current then): the same row counts, and every row of the patch equal to the base's row
    with its key (so the merged rows are a subset of the base's, as many: the same). A file merged
    again, or an incremental bundle delivered twice, is then reused without loading. Costs the
    patch's rows (and a key index of the kinds it touches). (None, None) otherwise."""
    base, patch = planned.merge_source
    if planned.current.content_hash is None or planned.bundle.counts() != base.counts():
        return None, None
    for kind in ENTITY_KINDS:
        rows = getattr(patch, kind)
        if not rows:
            continue
        stored = {row_key(kind, r): r for r in getattr(base, kind)}
        for row in rows:
            old = stored.get(row_key(kind, row))
            if old is None or old.model_dump() != row.model_dump():
                return None, None
    return planned.current.content_hash, (planned.current.id,)


def _same_content(conn: psycopg.Connection, digest: str) -> tuple | None:
    """The ready or current snapshot with content hash ``digest`` (the current one first), or None."""
    return conn.execute(
        "SELECT id FROM snapshots WHERE content_hash = %s AND status IN ('ready', 'current') "
        "ORDER BY (status = 'current') DESC, created_at DESC LIMIT 1", (digest,)).fetchone()


def finalize(conn: psycopg.Connection, result: ImportResult, promote: bool, started: float) -> ImportResult:
    """With ``promote``, make the import's snapshot current (its own transaction)."""
    if not promote:
        return result
    with refusals({"P0002": "IMPORT_NOT_FOUND"}), conn.transaction():
        conn.execute("SELECT promote_import(%s, %s)", (result.import_id, result.snapshot_id))
    return replace(result, status="promoted", seconds=time.perf_counter() - started)


def record(signals: EventStore | None, result: ImportResult, started_at: datetime, promote: bool) -> ImportResult:
    """Write the import's lifecycle signals; a failure is reported in ``lifecycle_error``, since the
    import itself is done."""
    events = [("import_started", started_at), ("snapshot_ready", datetime.now(timezone.utc))]
    if promote:  # (a reuse of the current snapshot is logged promoted, but promotes nothing)
        events.append(("promoted", datetime.now(timezone.utc)))
    try:
        lifecycle.record(signals, events, result.snapshot_id, result.import_id, result.version_label,
                         done=f"import {result.import_id} is {result.status} (snapshot {result.snapshot_id})")
    except SnapshotError as exc:  # the import is done: say so, and what is missing
        return replace(result, lifecycle_error=exc.message)
    return result


def _removals(remove: Iterable[str | tuple[str, str]], merge: bool) -> list[tuple[str, str]]:
    removals = [r if isinstance(r, tuple) else parse_removal(r) for r in remove]
    if removals and not merge:
        raise ImportRefused("IMPORT_REMOVE_WITHOUT_MERGE", "removing rows only makes sense when merging (--merge; "
                            "`merge: true` in Dagster): a full import replaces everything")
    return removals
