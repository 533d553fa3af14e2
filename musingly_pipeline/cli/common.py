"""What every command shares: exit codes, the user-error exception, help formatting, JSON output."""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3


class CommandError(Exception):
    """A user's mistake or a refused operation: printed as one line, never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and examples."""


def add_command(commands, name: str, summary: str, description: str, example: str, handler):
    """Add a subcommand whose --help shows its description and an example."""
    parser = commands.add_parser(
        name, help=summary, description=f"{summary}\n\n{description}".rstrip(),
        epilog=f"Example:\n  {example}", formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def print_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
