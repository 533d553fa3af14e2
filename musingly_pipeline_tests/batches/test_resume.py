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
    """Item counts by status as users see them (the items in flight are recorded on the batch)."""
    with psycopg.connect(url) as conn:
        counts = conn.execute("SELECT pending_items, processing_items, completed_items, failed_items, skipped_items"
                              " FROM import_batch_summary WHERE batch_id = %s", (batch_id,)).fetchone()
    return {status: n for status, n in zip(("pending", "processing", "completed", "failed", "skipped"), counts) if n}


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
    # What is in flight is recorded once on the batch, not on each item; listings show it.
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT in_flight_from, in_flight_to FROM import_batches WHERE id = %s",
                            (batch_id,)).fetchone() == (10, 14)
        assert conn.execute("SELECT DISTINCT status, attempts FROM import_batch_items WHERE batch_id = %s"
                            " AND item_index BETWEEN 10 AND 14", (batch_id,)).fetchall() == [("pending", 0)]
    assert [i.item_index for i in manager.get_batch_items(batch_id, status="processing")] == list(range(10, 15))
    assert {i.status for i in manager.get_batch_items(batch_id) if i.item_index >= 15} == {"pending"}

    summary = manager.process_batch(batch_id)
    assert (summary.status, summary.completed_items, summary.failed_items) == ("completed", 23, 0)
    assert counted(url) == list(range(23))
    attempts = {i.item_index: i.attempts for i in manager.get_batch_items(batch_id)}
    assert {n: attempts[n] for n in range(10, 15)} == {n: 2 for n in range(10, 15)}
    assert any("resuming an interrupted run" in log.message for log in manager.get_batch_logs(batch_id))
    assert {n: attempts[n] for n in (0, 9, 15, 22)} == {0: 1, 9: 1, 15: 1, 22: 1}
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT in_flight_from FROM import_batches WHERE id = %s", (batch_id,)).fetchone() == (None,)


def test_items_left_processing_by_the_code_before_the_in_flight_record_are_resumed(make_database):
    # Before the in-flight range (legacy migration 0006) a run marked a chunk's items 'processing' (attempts + 1) and committed.
    url = make_database()
    manager = make_manager(url, chunk_size=4, max_attempts=3)
    batch_id = manager.create_batch("counter", [{"n": n} for n in range(10)])
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE import_batches SET status = 'processing' WHERE id = %s", (batch_id,))
        conn.execute("UPDATE import_batch_items SET status = 'processing', attempts = 1"
                     " WHERE batch_id = %s AND item_index IN (4, 5)", (batch_id,))
        conn.execute("UPDATE import_batch_items SET status = 'processing', attempts = 3"
                     " WHERE batch_id = %s AND item_index = 6", (batch_id,))
    assert item_statuses(url, batch_id) == {"pending": 7, "processing": 3}

    summary = manager.process_batch(batch_id)
    assert (summary.completed_items, summary.failed_items) == (9, 1)
    done = {i.item_index: i for i in manager.get_batch_items(batch_id)}
    assert (done[6].status, done[6].error_code, done[6].attempts) == ("failed", "ITEM_INTERRUPTED", 3)
    assert {n: done[n].attempts for n in (0, 4, 5, 7)} == {0: 1, 4: 2, 5: 2, 7: 1}
    assert counted(url) == [n for n in range(10) if n != 6]


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
