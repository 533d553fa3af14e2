"""The `musingly` command: argument parsing and output only; every command calls domain functions.

Exit codes: 0 success (warnings allowed), 1 invalid input or a refused operation, 2 wrong usage,
3 the database cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from musingly_pipeline import __version__
from musingly_pipeline.cli import api, batches, bundles, dagster_cmd, db, inbox, pipeline, seed, signals, snapshots, worker
from musingly_pipeline.cli.common import EXIT_DATABASE, EXIT_FAILURE, HelpFormatter, print_json
from musingly_pipeline.errors import MusinglyError
from musingly_pipeline.storage.database import DatabaseUnavailable

# Each module adds its subcommands; the order here is the order of `musingly --help`.
COMMAND_MODULES = (bundles, snapshots, inbox, pipeline, seed, batches, signals, api, db, dagster_cmd, worker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musingly",
        description="Validate, import and manage AI-generated learning content in PostgreSQL.",
        epilog="Example: musingly validate data/examples/*.json\n"
               "Run `musingly COMMAND --help` for a command's options and an example.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"musingly {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def _refused(args, exc: MusinglyError, exit_code: int) -> int:
    """Every command's refusals in one shape: ``musingly CMD: message`` on stderr and, with ``--json``,
    ``{"error": {"code", "severity", "path", "message"}}`` on stdout."""
    print(f"musingly {args.command}: {exc}", file=sys.stderr)
    if getattr(args, "json", False):
        print_json({"error": exc.to_dict()})
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MusinglyError as exc:
        return _refused(args, exc, getattr(exc, "exit_code", EXIT_FAILURE))
    except DatabaseUnavailable as exc:
        return _refused(args, MusinglyError("DATABASE_UNAVAILABLE", f"database unavailable: {exc}"), EXIT_DATABASE)
    except KeyboardInterrupt:
        print(f"musingly {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
