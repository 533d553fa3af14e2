"""Commands of the snapshot store: import, promote, rollback, snapshots, imports, stats, delete-draft,
cleanup, diff. Each calls one method of :class:`~musingly_pipeline.bundles.SnapshotStore` and prints
what it returns; its refusals (codes and all) reach the user through ``musingly``'s ``main``."""

from __future__ import annotations

import sys
import time

from musingly_pipeline.cli.bundles import print_report, validation_document
from musingly_pipeline.cli.common import EXIT_FAILURE, EXIT_OK, CommandError, add_command, print_json
from musingly_pipeline.bundles import BundleInvalid, SnapshotError, SnapshotInfo, SnapshotStore


def register(commands) -> None:
    p = add_command(
        commands, "import", "Import a bundle as a new snapshot (ready for review; --promote to serve it).",
        "Validates the file with every rule, then loads it in one transaction. Content identical to a\n"
        "ready or current snapshot reuses that snapshot (--force makes a copy). A full import that\n"
        "would drop more than half of the current sparks is refused: use --merge for an incremental\n"
        "bundle (its rows replace or add by slug; --remove KIND:SLUG takes rows out), or --allow-shrink.",
        "musingly import data/examples/platform-foundations.json --promote", _import,
    )
    p.add_argument("file", metavar="FILE", help="bundle JSON file")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="validate and show what would be imported; no database")
    mode.add_argument("--validate-only", action="store_true", help="same as --dry-run")
    p.add_argument("--promote", action="store_true", help="promote the new snapshot to current")
    p.add_argument("--merge", action="store_true", help="apply the bundle onto the current snapshot, by slug")
    p.add_argument("--remove", action="append", default=[], metavar="KIND:SLUG",
                   help="with --merge: remove a row (sparks:old-lesson, spark_links:a->b); repeatable")
    p.add_argument("--allow-shrink", action="store_true", help="allow a full import to drop most current sparks")
    p.add_argument("--force", action="store_true", help="make a new snapshot even if the content already exists")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(
        commands, "promote", "Promote an import's ready snapshot to current (the previous one is archived).",
        "Moves a pointer, not rows: it takes the same time for any snapshot size.",
        "musingly promote --latest", _promote,
    )
    p.add_argument("import_id", nargs="?", metavar="IMPORT_ID", help="from `musingly imports`")
    p.add_argument("--latest", action="store_true", help="the newest ready import")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(
        commands, "rollback", "Make the snapshot the current one replaced current again.",
        "With --import-id, refuses unless that import's snapshot is the current one.",
        "musingly rollback", _rollback,
    )
    p.add_argument("--import-id", metavar="ID", help="the import being rolled back (a safety check)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(commands, "snapshots", "List snapshots, newest first.", "",
                    "musingly snapshots --json", _snapshots)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(commands, "imports", "List recent imports (the import log), newest first.", "",
                    "musingly imports --status failed", _imports)
    p.add_argument("--status", choices=("pending", "importing", "ready", "promoted", "failed", "rolled_back"))
    p.add_argument("--limit", type=int, default=20, metavar="N")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(commands, "stats", "Import statistics (SELECT * FROM get_import_stats(DAYS)).", "",
                    "musingly stats --days 7", _stats)
    p.add_argument("--days", type=int, default=30, metavar="DAYS")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(commands, "delete-draft", "Delete a draft or ready (never promoted) snapshot and its rows.", "",
                    "musingly delete-draft 0b5c...", _delete_draft)
    p.add_argument("snapshot_id", metavar="SNAPSHOT_ID")

    p = add_command(
        commands, "cleanup", "Delete archived snapshots beyond the N most recently published.",
        "The current snapshot always counts among the N kept; drafts and ready snapshots are not touched.",
        "musingly cleanup --keep 5", _cleanup,
    )
    p.add_argument("--keep", type=int, required=True, metavar="N")

    p = add_command(
        commands, "diff", "Added, removed and changed entities and links between two snapshots, by slug.",
        "Default: the current snapshot against the newest ready one (what `promote --latest` would do);\n"
        "with no ready snapshot, the current one against the one it replaced (what the last promotion\n"
        "did). Changed rows name their changed fields.",
        "musingly diff --json", _diff,
    )
    p.add_argument("from_id", nargs="?", metavar="FROM", help="snapshot id (default: current)")
    p.add_argument("to_id", nargs="?", metavar="TO", help="snapshot id (default: newest ready)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="keys shown per kind in text output")
    p.add_argument("--json", action="store_true", help="print JSON (every key)")


class _TerminalProgress:
    """One overwritten line on stderr: which table, how many rows."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and done != total:
            return
        self.last = now
        text = f"{stage} {done:,}/{total:,}" if total else f"{stage} ..."
        sys.stderr.write(f"\r\033[K  {text}")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no entities"


def _import(args) -> int:
    from musingly_core.bundle_file import validate_bundle_file

    if args.dry_run or args.validate_only:
        checked = validate_bundle_file(args.file)
        if args.json:
            print_json({**validation_document([checked.report]), "dry_run": True})
        else:
            print_report(checked.report)
            if checked.valid:
                mode = "merged onto the current snapshot" if args.merge else "as a new snapshot"
                print(f"dry run: would import {checked.bundle.version_label} {mode}; the database was not touched")
        return EXIT_OK if checked.valid else EXIT_FAILURE

    progress = _TerminalProgress() if sys.stderr.isatty() and not args.json else None
    try:
        result = SnapshotStore().import_file(
            args.file, promote=args.promote, merge=args.merge, remove=args.remove,
            allow_shrink=args.allow_shrink, force=args.force, progress=progress)
    except BundleInvalid as exc:
        if args.json:
            print_json(validation_document([exc.report]))
        else:
            print_report(exc.report, out=sys.stderr)
        return EXIT_FAILURE
    finally:
        if progress is not None:
            progress.done()
    if args.json:
        print_json(result.to_dict())
        return EXIT_FAILURE if result.lifecycle_error else EXIT_OK
    verb = "merged" if result.merged else "imported"
    print(f"{verb} {result.source_file} as {result.version_label} in {result.seconds:.1f}s")
    print(f"  import   {result.import_id} ({result.status})")
    print(f"  snapshot {result.snapshot_id}: {_counts(result.entity_counts)}")
    if result.reused:
        which = "the current snapshot" if result.status == "promoted" else "this existing snapshot"
        print(f"  same content as {which}: no copy made (--force makes one)")
    if result.warnings:
        print(f"  {len(result.warnings)} warning(s); `musingly validate {args.file}` lists them")
    if result.status == "ready":
        print(f"  review with `musingly diff`, then `musingly promote {result.import_id}`")
    if result.lifecycle_error:
        raise SnapshotError("LIFECYCLE_SIGNAL_NOT_WRITTEN", result.lifecycle_error)
    return EXIT_OK


def _show_snapshot(verb: str, info: SnapshotInfo, as_json: bool) -> int:
    if as_json:
        print_json(info.to_dict())
    else:
        print(f"{verb}: {info.version_label} (snapshot {info.id}) is current; {_counts(info.entity_counts)}")
    return EXIT_OK


def _promote(args) -> int:
    info = SnapshotStore().promote(args.import_id, latest=args.latest)
    return _show_snapshot("promoted", info, args.json)


def _rollback(args) -> int:
    info = SnapshotStore().rollback(args.import_id)
    return _show_snapshot("rolled back", info, args.json)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _snapshots(args) -> int:
    rows = SnapshotStore().list_snapshots()
    if args.json:
        print_json([r.to_dict() for r in rows])
        return EXIT_OK
    if not rows:
        print("no snapshots yet; import a bundle with `musingly import FILE`")
        return EXIT_OK
    print(f"{'id':36}  {'status':8}  {'version':20}  {'created':19}  {'sparks':>7}")
    for r in rows:
        print(f"{r.id!s:36}  {r.status:8}  {r.version_label[:20]:20}  {_when(r.created_at):19}  "
              f"{r.entity_counts.get('sparks', 0):>7}")
    return EXIT_OK


def _imports(args) -> int:
    rows = SnapshotStore().list_imports(status=args.status, limit=args.limit)
    if args.json:
        print_json([r.to_dict() for r in rows])
        return EXIT_OK
    if not rows:
        print("no imports" + (f" with status {args.status}" if args.status else ""))
        return EXIT_OK
    print(f"{'id':36}  {'status':11}  {'version':20}  {'started':19}  note")
    for r in rows:
        if r.error_message:
            note = f"error: {r.error_message}"
        elif r.reused:
            note = f"reused snapshot {r.snapshot_id} (same content)"
        else:
            note = ""
        print(f"{r.id!s:36}  {r.status:11}  {r.version_label[:20]:20}  {_when(r.started_at):19}  {note}")
    return EXIT_OK


def _stats(args) -> int:
    if args.days < 1:
        raise CommandError("--days must be at least 1", 2)
    stats = SnapshotStore().import_stats(args.days)
    if args.json:
        print_json(stats.to_dict())
        return EXIT_OK
    print(f"imports in the last {args.days} day(s): {stats.total_imports}")
    for name in ("ready", "promoted", "failed", "rolled_back", "in_progress"):
        print(f"  {name:12} {getattr(stats, name)}")
    avg = "-" if stats.avg_duration_seconds is None else f"{stats.avg_duration_seconds:.2f}s"
    print(f"  mean duration {avg}; last import {_when(stats.last_import_at)}")
    return EXIT_OK


def _delete_draft(args) -> int:
    SnapshotStore().delete_draft(args.snapshot_id)
    print(f"deleted snapshot {args.snapshot_id}")
    return EXIT_OK


def _cleanup(args) -> int:
    store = SnapshotStore()
    deleted = store.cleanup(args.keep)
    print(f"deleted {deleted} archived snapshot(s); kept the {args.keep} most recently published")
    for held in store.bases_kept(args.keep):
        print(f"  also kept {held.version_label} ({held.id}): a kept merged snapshot stores only its "
              "changes on top of it; it goes with the last snapshot that stands on it")
    return EXIT_OK


def _diff(args) -> int:
    diff = SnapshotStore().diff(args.from_id, args.to_id)
    if args.json:
        print_json(diff.to_dict())
        return EXIT_OK
    source = diff.from_snapshot
    print(f"from {source.version_label + ' (' + source.status + ')' if source else '(nothing)'} "
          f"to {diff.to_snapshot.version_label} ({diff.to_snapshot.status})")
    if diff.empty:
        print("  no differences")
        return EXIT_OK
    for kind, d in diff.kinds.items():
        if not d:
            continue
        print(f"  {kind}: +{len(d.added)} -{len(d.removed)} ~{len(d.changed)}")
        for sign, keys in (("+", d.added), ("-", d.removed), ("~", d.changed)):
            for key in keys[:args.limit]:
                fields = d.fields.get(key) if sign == "~" else None
                print(f"    {sign} {key}" + (f" ({', '.join(fields)})" if fields else ""))
            if len(keys) > args.limit:
                print(f"    {sign} ... and {len(keys) - args.limit} more (--json lists all)")
    return EXIT_OK
