"""A batch whose process is killed (SIGKILL, a real subprocess) is resumed without counting anything twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

from musingly_pipeline_tests.batches.processors import make_manager
from musingly_pipeline_tests.conftest import PROJECT_ROOT

RUNNER = """
import sys
from musingly_pipeline.batches import BatchManager
from musingly_pipeline_tests.batches.processors import make_registry
BatchManager(sys.argv[1], make_registry(), chunk_size=5).process_batch(sys.argv[2])
"""


def start_run(url: str, batch_id, **env) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}
    return subprocess.Popen([sys.executable, "-c", RUNNER, url, str(batch_id)], env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def item_statuses(url: str, batch_id) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM import_batch_items WHERE batch_id = %s"
                                 " GROUP BY status", (batch_id,)).fetchall())


def counted(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT n FROM counted ORDER BY n").fetchall()]


def test_killed_run_is_resumed_and_nothing_is_counted_twice(make_database):
    url = make_database()
    manager = make_manager(url, chunk_size=5)
    batch_id = manager.create_batch("counter", [{"n": n} for n in range(23)])

    run = start_run(url, batch_id, BATCH_TEST_HANG_ON="12")
    deadline = time.monotonic() + 30
    # Two chunks committed and the third claimed: the run is inside the hanging item 12.
    while item_statuses(url, batch_id) != {"completed": 10, "processing": 5, "pending": 8}:
        assert run.poll() is None, run.stderr.read().decode()
        assert time.monotonic() < deadline, "the subprocess never reached item 12"
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)

    assert item_statuses(url, batch_id) == {"completed": 10, "processing": 5, "pending": 8}
    assert counted(url) == list(range(10))
    assert manager.get_batch_summary(batch_id).status == "processing"

    summary = manager.process_batch(batch_id)
    assert (summary.status, summary.completed_items, summary.failed_items) == ("completed", 23, 0)
    assert counted(url) == list(range(23))
    attempts = {i.item_index: i.attempts for i in manager.get_batch_items(batch_id)}
    assert {n: attempts[n] for n in range(10, 15)} == {n: 2 for n in range(10, 15)}
    assert any("resuming an interrupted run" in log.message for log in manager.get_batch_logs(batch_id))


def test_an_item_that_kills_the_process_is_failed_after_max_attempts(make_database):
    url = make_database()
    manager = make_manager(url, chunk_size=5, max_attempts=3)
    items = [{"n": n, "crash": n == 7} for n in range(12)]
    batch_id = manager.create_batch("counter", items)

    exits = []
    for _ in range(6):
        run = start_run(url, batch_id, BATCH_TEST_CRASH="1")
        exits.append(run.wait(timeout=60))
        if exits[-1] == 0:
            break
    assert exits == [-signal.SIGKILL] * 3 + [0]

    summary = manager.get_batch_summary(batch_id)
    assert (summary.status, summary.completed_items, summary.failed_items) == ("failed", 11, 1)
    [poison] = manager.get_batch_items(batch_id, status="failed")
    assert (poison.item_index, poison.error_code, poison.attempts) == (7, "ITEM_INTERRUPTED", 3)
    assert counted(url) == [n for n in range(12) if n != 7]
