"""`musingly seed import|export`: seed unit folders to and from PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

from musingly_pipeline.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    HelpFormatter,
    add_command,
)
from musingly_pipeline.seed_units import SeedUnitStore
from musingly_pipeline.seed_units.errors import SeedUnitError
from musingly_pipeline.seed_units.folder import FolderImport

DEFAULT_SEED_DIR = "data/seed_data"
TEXT_ISSUE_LIMIT = 50


def register(commands) -> None:
    parser = commands.add_parser(
        "seed", help="Import and export seed units (lossless per-unit JSON files).",
        formatter_class=HelpFormatter,
        description="Import and export seed units: users.json and units/*.json, with an exact round trip.",
        epilog="Example:\n  musingly seed import --dir data/seed_data --verbose",
    )
    actions = parser.add_subparsers(dest="seed_command", metavar="ACTION", required=True)

    p = add_command(
        actions, "import", "Import users.json and units/*.json of a seed folder.",
        "Each unit file is imported on its own (a savepoint per unit): a broken unit fails alone with\n"
        "its errors listed, the others are imported. A unit already in the database (same id) is\n"
        "updated in place. Files are read only from inside DIR: a link leading out of it is refused\n"
        "(FILE_OUTSIDE_FOLDER). Exit 0 when every file was imported, 1 when any failed, 3 when the\n"
        "database cannot be reached.",
        f"musingly seed import --dir {DEFAULT_SEED_DIR} --verbose", _import,
    )
    p.add_argument("--dir", default=DEFAULT_SEED_DIR, metavar="DIR",
                   help=f"seed folder with users.json and units/ (default {DEFAULT_SEED_DIR})")
    p.add_argument("--verbose", action="store_true", help="print the rows written per unit")

    p = add_command(
        actions, "export", "Write units (and users) from the database as seed files.",
        "Writes DIR/units/{unit-title}.json per unit and, with --users, DIR/users.json, each file\n"
        "atomically, in the canonical form: exporting what was imported reproduces the files byte\n"
        "for byte. A DIR/units link leading out of DIR is refused (FILE_OUTSIDE_FOLDER).",
        "musingly seed export --all-units --users --output-dir /tmp/seed_export", _export,
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all-units", action="store_true", help="export every unit")
    which.add_argument("--unit", action="append", metavar="ID", help="export this unit (repeatable)")
    p.add_argument("--users", action="store_true", help="also write users.json")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder to write into")


def _import(args) -> int:
    result = SeedUnitStore().import_folder(Path(args.dir))
    print_import(result, verbose=args.verbose)
    return EXIT_OK if result.ok else EXIT_FAILURE


def print_import(result: FolderImport, verbose: bool = False, out=None) -> None:
    out = out or sys.stdout
    for item in result.items:
        if item.imported:
            if item.unchanged:
                what = "unchanged (already imported), skipped"
            elif item.unit_id:
                what = f"unit {item.unit_id} ({'new' if item.created else 'updated'})"
            else:
                what = f"{item.counts.get('users', 0)} user(s)"
            print(f"ok    {item.source}: {what}", file=out)
            if verbose and item.unit_id:
                print("      " + ", ".join(f"{n} {table}" for table, n in item.counts.items()), file=out)
        else:
            print(f"FAIL  {item.source}: {len(item.errors)} error(s)", file=out)
        for issue in item.issues[:TEXT_ISSUE_LIMIT]:
            where = f" at {issue.path}" if issue.path else ""
            print(f"      {issue.severity.value} {issue.code}{where}: {issue.message}", file=out)
        if len(item.issues) > TEXT_ISSUE_LIMIT:
            print(f"      ... and {len(item.issues) - TEXT_ISSUE_LIMIT} more", file=out)
    imported = sum(1 for u in result.units if u.imported)
    print(f"{imported} of {len(result.units)} unit(s) imported from {result.directory}"
          + (f", {len(result.failed)} file(s) failed" if result.failed else ""), file=out)


def _export(args) -> int:
    if not args.all_units and not args.unit and not args.users:
        raise CommandError("say what to export: --all-units, --unit ID or --users", EXIT_USAGE)
    unit_ids = None if args.all_units else (args.unit or [])
    result = SeedUnitStore().export_folder(Path(args.output_dir), unit_ids=unit_ids, users=args.users)
    for path in result.files:
        print(f"wrote {path}")
    if result.missing:
        raise SeedUnitError("SEED_UNIT_NOT_FOUND",
                            f"no unit with id {', '.join(result.missing)} in the database; nothing written for it")
    return EXIT_OK
