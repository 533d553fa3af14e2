"""`musingly db migrate` and `musingly db status`: the schema of the database in use."""

from __future__ import annotations

from musingly_pipeline.cli.common import EXIT_OK, CommandError, HelpFormatter, add_command, print_json
from musingly_pipeline.storage.database import database_target
from musingly_pipeline.storage.migrations import MigrationError, migrate, status


def register(commands) -> None:
    p = add_command(
        commands, "db", "Database schema: apply migrations or show their state.",
        "Every other command applies pending migrations itself; these are for operators and CI.",
        "musingly db status", None,
    )
    sub = p.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    m = sub.add_parser("migrate", help="apply pending migrations", formatter_class=HelpFormatter,
                       description="Apply every pending migration, once each, under an advisory lock.",
                       epilog="Example:\n  musingly db migrate")
    m.set_defaults(handler=_migrate)
    s = sub.add_parser("status", help="list migrations and when they were applied", formatter_class=HelpFormatter,
                       description="List every migration file and when it was applied (pending if never).",
                       epilog="Example:\n  musingly db status --json")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(handler=_status)


def _migrate(args) -> int:
    target = database_target()
    try:
        applied = migrate(target.url)
    except MigrationError as exc:
        raise CommandError(str(exc)) from exc
    print(f"{target.display}: applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return EXIT_OK


def _status(args) -> int:
    target = database_target()
    states = status(target.url)
    if args.json:
        print_json({"database": target.display, "migrations": [
            {"name": s.name, "applied_at": s.applied_at} for s in states]})
        return EXIT_OK
    print(f"database {target.display}")
    for state in states:
        print(f"  {state.name:40} {state.applied_at.isoformat(timespec='seconds') if state.applied_at else 'pending'}")
    return EXIT_OK
