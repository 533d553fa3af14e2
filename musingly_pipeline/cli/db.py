"""`musingly db migrate`, `musingly db status` and `musingly db stop`: the database in use."""

from __future__ import annotations

import os

from musingly_pipeline.cli.common import EXIT_OK, CommandError, HelpFormatter, add_command, print_json
from musingly_pipeline.storage.database import DATABASE_URL_ENV, database_target, stop_embedded_server
from musingly_pipeline.storage.migrations import migrate, status


def register(commands) -> None:
    p = add_command(
        commands, "db", "The database: apply migrations, show their state, stop the embedded server.",
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
    t = sub.add_parser("stop", help="stop the embedded PostgreSQL server", formatter_class=HelpFormatter,
                       description="Stop the embedded PostgreSQL (data/.postgres/) if no other process or connection\n"
                       "uses it. The next command that needs it starts it again. Refused (exit 1) when\n"
                       f"{DATABASE_URL_ENV} names a server: stop that server with its own tools.",
                       epilog="Example:\n  musingly db stop")
    t.add_argument("--force", action="store_true", help="stop it even if other processes use it (they are disconnected)")
    t.set_defaults(handler=_stop)


def _migrate(args) -> int:
    target = database_target()
    applied = migrate(target.url)  # a MigrationError (MIGRATION_FAILED, MIGRATION_EDITED) prints as every refusal does
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


def _stop(args) -> int:
    if os.environ.get(DATABASE_URL_ENV, "").strip():
        raise CommandError(f"{DATABASE_URL_ENV} is set: that server is not the embedded one; stop it the way it was started")
    state = stop_embedded_server(force=args.force)
    if not state.running:
        print(f"the embedded PostgreSQL in {state.pgdata} is not running")
    elif state.in_use and not args.force:
        raise CommandError(
            f"the embedded PostgreSQL in {state.pgdata} is in use ({_users(state)}); stop those first, "
            "or use --force to disconnect them")
    else:
        print(f"stopped the embedded PostgreSQL in {state.pgdata}" + (f" (disconnected {_users(state)})" if state.in_use else ""))
    return EXIT_OK


def _users(state) -> str:
    parts = []
    if state.other_processes:
        parts.append("processes " + ", ".join(map(str, state.other_processes)))
    if state.other_connections:
        parts.append(f"{state.other_connections} connection(s)")
    return "; ".join(parts)
