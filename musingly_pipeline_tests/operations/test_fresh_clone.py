"""The plain `dagster` and `musingly dagster` commands of docs/dagster.md, as written, in a fresh copy of the
repository with no variable set: its own embedded PostgreSQL, its own data folder.

A Dagster user types these first; they once failed for want of MUSINGLY_DAGSTER_STORAGE_URL.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from musingly_pipeline_tests.operations.graphql import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def _documented_command(prefix: str) -> str:
    """The first command of docs/dagster.md (a code block's line, or inline code) that starts with ``prefix``."""
    for line in (ROOT / "docs" / "dagster.md").read_text().splitlines():
        found = re.search(rf"(?:^\s*|`)({re.escape(prefix)}[^`]*?)(?:`|\s*$)", line)
        if found:
            return found.group(1).strip()
    raise AssertionError(f"docs/dagster.md has no `{prefix}...` command")


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A fresh copy of the repository (what `git clone` gives), as its own git work tree."""
    target = tmp_path_factory.mktemp("clone") / "musingly_pipeline"
    for name in _tracked_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    for argv in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "clone"]):
        subprocess.run(["git", *argv], cwd=target, check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSINGLY_", "DAGSTER_"))}
    # The venv's commands, with the copy's code first (the venv holds an editable install of ROOT).
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(target))
    yield target, env
    subprocess.run([str(BIN / "musingly"), "db", "stop", "--force"], cwd=target, env=env, capture_output=True,
                   timeout=120)


def run(clone, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    target, env = clone
    result = subprocess.run(command, shell=True, cwd=target, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    return result


def test_plain_dagster_commands_work_with_no_variable_set(clone):
    target, _ = clone
    run(clone, "dagster definitions validate -m musingly_pipeline.definitions")
    backfill = _documented_command("dagster asset materialize")
    assert "--partition-range 2026-02-04...2026-02-06" in backfill
    run(clone, backfill)
    store = target / "data" / "signals" / "store" / "signals"
    assert sorted(p.name for p in store.glob("2026-02-0*.jsonl")) == [
        "2026-02-04.jsonl", "2026-02-05.jsonl", "2026-02-06.jsonl"]
    assert (target / "data" / ".postgres" / "PG_VERSION").is_file()  # the copy's own embedded server


def test_musingly_dagster_dev_stops_everything_on_sigterm_and_leaves_the_tree_clean(clone):
    target, env = clone
    run(clone, "musingly db stop")  # so that this command is the one that starts it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (target.parent / "dev.log").open("w")
    process = subprocess.Popen([str(BIN / "musingly"), "dagster", "--", "dev", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=target, env=env, stdout=log, stderr=subprocess.STDOUT)
    seen: dict[int, psutil.Process] = {}

    def up() -> bool:
        assert process.poll() is None, (target.parent / "dev.log").read_text()[-3000:]
        for child in psutil.Process(process.pid).children(recursive=True):
            seen.setdefault(child.pid, child)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for("dagster dev in the fresh copy", up, timeout=180)
        time.sleep(3)  # the daemon's first sensor tick
        up()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert code in (0, 130), (target.parent / "dev.log").read_text()[-3000:]
    assert len(seen) >= 3
    wait_for("every process of dagster dev to exit", lambda: not any(_alive(p) for p in seen.values()), timeout=30)
    assert "stopped the embedded PostgreSQL it had started" in (target.parent / "dev.log").read_text()
    from musingly_pipeline.storage.database import embedded_server

    assert not embedded_server(target / "data" / ".postgres").running
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=target,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status  # nothing the user would have to clean up or ignore by hand


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
