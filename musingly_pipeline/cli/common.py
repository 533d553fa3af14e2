"""What every command shares: exit codes, the user-error exception, help formatting, JSON output."""

from __future__ import annotations

import argparse
import json
import sys

from musingly_pipeline.errors import MusinglyError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3


class CommandError(MusinglyError):
    """A mistake in a command's arguments or a refusal of the command itself: one line, never a traceback.

    Without a ``code`` it is ``USAGE_INVALID`` (exit 2) or ``COMMAND_REFUSED`` (exit 1). Refusals from
    the areas are :class:`~musingly_pipeline.errors.MusinglyError` s with their own codes, printed the same way.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE, code: str | None = None):
        super().__init__(code or ("USAGE_INVALID" if exit_code == EXIT_USAGE else "COMMAND_REFUSED"), message)
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


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
