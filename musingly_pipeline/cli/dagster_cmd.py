"""`musingly dagster ...`: run the `dagster` command in the project folder, and stop what it started.

Plain `dagster ...` in the project folder works too (`dagster.yaml` needs no variable). This wrapper
adds three things: it runs from the project folder wherever it is called, with `DAGSTER_HOME` there
unless set; it passes Ctrl-C, SIGTERM and SIGHUP on to dagster and waits until dagster and its
webserver, daemon and code servers have stopped (killing what is left after a grace period); and
when it started the embedded PostgreSQL itself and nothing else uses it any more, it stops it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from musingly_pipeline.cli.common import CommandError, add_command
from musingly_pipeline.storage.database import (
    DATABASE_URL_ENV,
    DAGSTER_STORAGE_ENV,
    PROJECT_ROOT,
    dagster_storage_url,
    embedded_server,
    stop_embedded_server,
)

# How long dagster may take to stop after the first signal before what is left is killed.
STOP_GRACE_SECONDS = 90
# How long what dagster left in its session (code servers, runs) may take to exit on SIGTERM.
LEFTOVER_GRACE_SECONDS = 10
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def dagster_environment() -> dict[str, str]:
    """The environment Dagster runs with: the instance storage URL (starting the embedded server if
    that is the database) and DAGSTER_HOME at the project (dagster.yaml), unless set."""
    env = dict(os.environ)
    env[DAGSTER_STORAGE_ENV] = dagster_storage_url()
    env.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))  # where dagster.yaml lives
    return env


def register(commands) -> None:
    p = add_command(
        commands, "dagster", "Run a `dagster` command in the project folder; Ctrl-C stops everything it started.",
        "Runs dagster with the given arguments from the project folder (DAGSTER_HOME there unless set;\n"
        "the instance storage in the project's PostgreSQL, the embedded server by default). Ctrl-C or\n"
        "SIGTERM stops dagster's webserver, daemon and code servers, then the embedded PostgreSQL if this\n"
        "command started it and nothing else uses it. Put `--` before dagster's own options.",
        "musingly dagster -- dev -p 3000", _dagster,
    )
    p.add_argument("args", nargs="*", metavar="ARG", help="arguments for dagster")


def _prepare_child() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Let the child stop on the signals this process forwards, even if they were ignored here (a
    shell starts background jobs with SIGINT ignored, and Python keeps it so), and, on Linux, make it
    get SIGTERM if this process dies without forwarding anything (kill -9)."""
    for sig in _FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _dagster(args) -> int:
    # The dagster beside this interpreter (same virtual environment) first, then PATH.
    beside = Path(sys.executable).with_name("dagster")
    executable = str(beside) if beside.exists() else shutil.which("dagster")
    if executable is None:
        raise CommandError("the `dagster` command is not installed; pip install -e . installs it")
    if not args.args:
        raise CommandError("name a dagster command, e.g. `musingly dagster -- dev`", exit_code=2)
    embedded = not os.environ.get(DATABASE_URL_ENV, "").strip()
    started_server = embedded and not embedded_server().running
    env = dagster_environment()
    # Its own session: signals reach dagster through this process only, once each.
    child = subprocess.Popen([executable, *args.args], env=env, cwd=PROJECT_ROOT, start_new_session=True,
                             preexec_fn=_prepare_child)
    received: list[int] = []

    def forward(signum, _frame) -> None:
        received.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGINT if signum == signal.SIGHUP else signum)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    try:
        code = _wait(child, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_group(child.pid)  # anything dagster left behind in its session (a code server, a run)
    if started_server:
        state = stop_embedded_server()
        if state.running and not state.in_use:
            print("musingly dagster: stopped the embedded PostgreSQL it had started", file=sys.stderr)
    return 130 if received and code in (0, -signal.SIGINT) else code


def _wait(child: subprocess.Popen, received: list[int]) -> int:
    while True:
        try:
            return child.wait(timeout=STOP_GRACE_SECONDS if received else None)
        except subprocess.TimeoutExpired:
            print(f"musingly dagster: dagster did not stop within {STOP_GRACE_SECONDS}s; killing it", file=sys.stderr)
            _signal_group(child.pid, signal.SIGKILL)
            return child.wait()


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group; False if it has no process left."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False


def _stop_group(pgid: int) -> None:
    """SIGTERM what is left of the group, then SIGKILL what is still there after a short grace."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if not _signal_group(pgid, 0):
            return
    _signal_group(pgid, signal.SIGKILL)
