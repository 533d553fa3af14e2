"""`musingly dagster ...`: run the `dagster` command with this project's instance in PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from musingly_pipeline.cli.common import CommandError, add_command
from musingly_pipeline.storage.database import DAGSTER_STORAGE_ENV, PROJECT_ROOT, dagster_storage_url


def dagster_environment() -> dict[str, str]:
    """The environment Dagster needs: storage URL (embedded server by default) and DAGSTER_HOME."""
    env = dict(os.environ)
    env[DAGSTER_STORAGE_ENV] = dagster_storage_url()
    env.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))  # where dagster.yaml lives
    return env


def register(commands) -> None:
    p = add_command(
        commands, "dagster", "Run a `dagster` command against this project's PostgreSQL instance storage.",
        "Starts the embedded PostgreSQL if needed, points MUSINGLY_DAGSTER_STORAGE_URL at its `dagster`\n"
        "database and DAGSTER_HOME at the project (dagster.yaml), then runs dagster with the given\n"
        "arguments from the project folder. Put `--` before dagster's own options.",
        "musingly dagster -- dev -p 3000", _dagster,
    )
    p.add_argument("args", nargs="*", metavar="ARG", help="arguments for dagster")


def _dagster(args) -> int:
    # The dagster beside this interpreter (same virtual environment) first, then PATH.
    beside = Path(sys.executable).with_name("dagster")
    executable = str(beside) if beside.exists() else shutil.which("dagster")
    if executable is None:
        raise CommandError("the `dagster` command is not installed; pip install -e . installs it")
    if not args.args:
        raise CommandError("name a dagster command, e.g. `musingly dagster -- dev`", exit_code=2)
    return subprocess.call([executable, *args.args], env=dagster_environment(), cwd=PROJECT_ROOT)
