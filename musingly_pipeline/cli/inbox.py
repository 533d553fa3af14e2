"""`musingly inbox push FILE`: hand a bundle to the pipeline without a shared folder."""

from __future__ import annotations

from pathlib import Path

from musingly_pipeline.cli.common import EXIT_OK, CommandError, add_command, print_json
from musingly_pipeline.bundles import SnapshotStore


def register(commands) -> None:
    p = add_command(
        commands, "inbox", "Hand bundles to the inbox from any machine (push).",
        "The bundle's bytes are staged in the shared PostgreSQL by sha256 and named as an inbox file;\n"
        "the running Dagster deployment's inbox sensor imports it as if it had been dropped into\n"
        "data/inbox/ (incremental/NAME.json: merged onto the current snapshot). Pushing the same bytes\n"
        "under the same name again imports nothing new.",
        "musingly inbox push data/examples/ml-curriculum.json", None,
    )
    sub = p.add_subparsers(dest="inbox_command", metavar="SUBCOMMAND", required=True)
    q = add_command(sub, "push", "Stage a bundle file and hand it to the inbox sensor.",
                    "Prints the push's id, inbox name and sha256. Nothing is validated here: the run does it,\n"
                    "and `musingly validate FILE` does it beforehand.",
                    "musingly inbox push hotfix.json --incremental", _push)
    q.add_argument("file", metavar="FILE", help="bundle JSON file ('-': standard input, with --name)")
    q.add_argument("--name", help="inbox file name (default: the file's name)")
    q.add_argument("--incremental", action="store_true", help="merge it onto the current snapshot (incremental/NAME)")
    q.add_argument("--json", action="store_true", help="print JSON")


def _push(args) -> int:
    import sys

    if args.file == "-" and not args.name:
        raise CommandError("name a bundle read from standard input with --name NAME.json", 2)
    name = args.name or Path(args.file).name
    if args.incremental and not name.startswith("incremental/"):
        name = f"incremental/{name}"
    try:
        if args.file == "-":
            push = SnapshotStore().push(sys.stdin.buffer, name, pushed_by="cli")
        else:
            with open(args.file, "rb") as stream:
                push = SnapshotStore().push(stream, name, pushed_by="cli")
    except FileNotFoundError:
        raise CommandError(f"{args.file} does not exist; check the path") from None
    except IsADirectoryError:
        raise CommandError(f"{args.file} is a directory; name a bundle .json file") from None
    if args.json:
        print_json({"push_id": push.id, "name": push.name, "sha256": push.sha256, "size": push.size,
                    "duplicate": push.duplicate})
        return EXIT_OK
    print(f"pushed {args.file} as {push.name} (push {push.id}, {push.size:,} bytes, sha256 {push.sha256})")
    if push.duplicate:
        print("  the same bytes as the previous push of this name: nothing new to import")
    else:
        print("  the inbox sensor of the running Dagster deployment imports it within seconds")
    return EXIT_OK
