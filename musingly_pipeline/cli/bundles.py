"""Commands on bundle files that need no database: validate, schema, generate."""

from __future__ import annotations

import sys
from pathlib import Path

import musingly_core
from musingly_core.report import ValidationReport
from musingly_core.schema import render_bundle_schema, write_bundle_schema

from musingly_pipeline.cli.common import EXIT_FAILURE, EXIT_OK, CommandError, add_command, print_json

# How many issues per file the text output shows; --json always has all of them.
TEXT_ISSUE_LIMIT = 50


def register(commands) -> None:
    p = add_command(
        commands, "validate", "Validate bundle files: contracts, references, slugs, links, cycles.",
        "Runs every rule without touching a database. Exit 0 when every file is valid (warnings\n"
        "allowed), 1 when any is invalid or unreadable, 2 for wrong usage.",
        "musingly validate data/examples/*.json --json", _validate,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="bundle JSON files")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")

    p = add_command(
        commands, "schema", "Write the JSON Schema of a bundle (import-schemas.json).",
        "The output is deterministic (sorted keys), so a committed copy can be compared in CI.",
        "musingly schema --out import-schemas.json", _schema,
    )
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")

    p = add_command(
        commands, "generate", "Write a synthetic, valid bundle of N sparks (for benchmarks and tests).",
        "About 1 KB of Markdown per spark and three prerequisite links per spark, in a DAG.",
        "musingly generate --sparks 100000 --out /tmp/big.json", _generate,
    )
    p.add_argument("--sparks", type=int, required=True, metavar="N")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--seed", type=int, default=0)


def validation_document(reports: list[ValidationReport]) -> dict:
    return {"valid": all(r.valid for r in reports), "files": [r.to_dict() for r in reports]}


def print_report(report: ValidationReport, out=sys.stdout) -> None:
    counts = ", ".join(f"{n} {kind}" for kind, n in report.counts.items() if n)
    if report.valid:
        extra = f", {len(report.warnings)} warning(s)" if report.warnings else ""
        print(f"ok    {report.file}: valid ({counts or 'no entities'}){extra}", file=out)
    else:
        print(f"FAIL  {report.file}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)", file=out)
    for issue in report.issues[:TEXT_ISSUE_LIMIT]:
        where = f" at {issue.path}" if issue.path else ""
        print(f"      {issue.severity.value} {issue.code}{where}: {issue.message}", file=out)
    if len(report.issues) > TEXT_ISSUE_LIMIT:
        print(f"      ... and {len(report.issues) - TEXT_ISSUE_LIMIT} more (use --json for all)", file=out)


def _validate(args) -> int:
    reports = [musingly_core.validate(f) for f in args.files]
    if args.json:
        print_json(validation_document(reports))
    else:
        for report in reports:
            print_report(report)
    return EXIT_OK if all(r.valid for r in reports) else EXIT_FAILURE


def _schema(args) -> int:
    if args.out:
        try:
            write_bundle_schema(Path(args.out))
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(render_bundle_schema())
    return EXIT_OK


def _generate(args) -> int:
    from musingly_pipeline.bundles.synthetic import write_bundle

    if args.sparks < 1:
        raise CommandError("--sparks must be at least 1")
    try:
        write_bundle(args.out, args.sparks, seed=args.seed)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"wrote {args.out} ({args.sparks} sparks)", file=sys.stderr)
    return EXIT_OK
