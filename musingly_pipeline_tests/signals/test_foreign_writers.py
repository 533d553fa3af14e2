"""A process that appends to a day file without the store's lock (unsupported, but it happens).

The audit appended 200 torn lines without the lock while a store wrote: 41 acknowledged ids were
lost (their line glued onto a torn one), 3 were written twice, and a reopened store did not notice
its offsets were wrong (a fresh store then wrote 1,068 ids again). A store must notice that a day
file changed under its index, and never acknowledge a line it did not write intact.
"""

from __future__ import annotations

import os
import signal as signals
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from musingly_pipeline.signals import FileSystemStore
from musingly_pipeline_tests.signals.conftest import DAY, signal

PROJECT_ROOT = Path(__file__).resolve().parents[2]
END = DAY + timedelta(days=1)


def stored_ids(workspace: Path) -> Counter:
    """How many times each id is in the day file, read by a fresh store (unreadable lines skipped)."""
    read = FileSystemStore(workspace).read_partition("signal", DAY.date(), warn=False)
    return Counter(e.signal_id for e in read.envelopes)


def foreign_append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def between_open_and_write(store: FileSystemStore, data: bytes) -> None:
    """The next batch of ``store`` gets ``data`` appended to its day file by a foreign writer after the
    store opened the file and before the store's own write lands."""
    original = store._open_partition

    def open_partition(kind, day):
        opened = original(kind, day)
        foreign_append(store.partition_path(kind, day), data)
        store._open_partition = original  # once
        return opened

    store._open_partition = open_partition


def test_a_line_glued_onto_a_foreign_torn_line_is_not_acknowledged(tmp_path):
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(i) for i in range(3)])
    between_open_and_write(store, b'{"signal_id": "torn-by-a-foreign-writer", "payl')
    results = store.write_signals([signal(i) for i in range(3, 8)])
    assert [r.written for r in results] == [True] * 5
    assert stored_ids(tmp_path) == Counter(f"s-{i}" for i in range(8))  # s-3 used to be glued, unreadable


def test_a_foreign_line_landing_before_a_batch_leaves_no_stale_offsets(tmp_path):
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(i) for i in range(3)])
    between_open_and_write(store, signal("foreign").to_line().encode() + b"\n")
    assert all(r.written for r in store.write_signals([signal(i) for i in range(3, 8)]))
    # the same ids again: the index must find every one (its offsets used to point one line early)
    assert not any(r.written for r in store.write_signals([signal(i) for i in range(8)]))
    assert not any(r.written for r in FileSystemStore(tmp_path).write_signals([signal(i) for i in range(8)]))
    assert stored_ids(tmp_path) == Counter([*(f"s-{i}" for i in range(8)), "s-foreign"])


_KILLED_AFTER_A_RACED_WRITE = textwrap.dedent("""
    import os, signal, sys
    from musingly_pipeline.signals import FileSystemStore
    from musingly_pipeline_tests.signals.conftest import signal as make
    workspace = sys.argv[1]
    store = FileSystemStore(workspace)
    store.write_signals([make(i) for i in range(10, 20)])
    original, fsync = store._open_partition, os.fsync

    def open_partition(kind, day):  # a foreign line, as long as ours, lands first
        opened = original(kind, day)
        with open(store.partition_path(kind, day), "ab") as f:
            f.write(make(99).to_line().encode() + b"\\n")
        return opened

    def fsync_then_die(fd):  # the lines are written; the process dies before anything else
        fsync(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    store._open_partition = open_partition
    os.fsync = fsync_then_die
    store.write_signals([make(i) for i in range(20, 30)])
""")


def test_a_reopened_store_notices_offsets_a_killed_writer_left_wrong(tmp_path):
    done = subprocess.run([sys.executable, "-c", _KILLED_AFTER_A_RACED_WRITE, str(tmp_path)],
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, timeout=60)
    assert done.returncode == -signals.SIGKILL, done.stderr.decode()
    lines = FileSystemStore(tmp_path).partition_path("signal", DAY.date()).read_bytes().splitlines()
    assert len(lines) == 21 and len({len(line) for line in lines}) == 1  # one foreign line, all as long
    # the killed call was never acknowledged; writing its batch again must write nothing twice
    reopened = FileSystemStore(tmp_path)
    results = reopened.write_signals([signal(i) for i in range(10, 30)])
    assert not any(r.written for r in results)
    assert stored_ids(tmp_path) == Counter([*(f"s-{i}" for i in range(10, 30)), "s-99"])


_FOREIGN_WRITER = textwrap.dedent("""
    import os, random, sys, time
    path, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    for k in range(count):  # torn lines (no newline), appended without the store's lock
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, ('{"signal_id": "foreign-%d", "payload": {"n": "' % k).encode()[:rng.randint(5, 40)])
        os.close(fd)
        time.sleep(rng.uniform(0, 0.01))
""")


def test_torn_lines_appended_without_the_lock_during_writes_lose_and_repeat_nothing(tmp_path):
    store = FileSystemStore(tmp_path, durable=False)
    store.write_signal(signal(0))
    path = store.partition_path("signal", DAY.date())
    writer = subprocess.Popen([sys.executable, "-c", _FOREIGN_WRITER, str(path), "200", "7"])
    acknowledged: set[str] = set()
    duplicates_acknowledged = 0
    n = 1
    while writer.poll() is None:
        batch = [signal(i, DAY + timedelta(seconds=i)) for i in range(n, n + 20)]
        again = [signal(i, DAY + timedelta(seconds=i)) for i in range(max(1, n - 5), n)]  # already stored
        results = store.write_signals(batch + again)
        acknowledged |= {r.event_id for r in results if r.written}
        duplicates_acknowledged += sum(r.written for r in results[len(batch):])
        n += 20
        time.sleep(0.002)
    assert writer.wait(30) == 0
    assert n > 100  # the writes ran while the foreign writer did
    counts = stored_ids(tmp_path)
    assert duplicates_acknowledged == 0
    assert set(counts) == acknowledged | {"s-0"}  # nothing acknowledged is lost
    assert max(counts.values()) == 1  # nothing is stored twice
    # a fresh store finds every stored id: it writes none again
    fresh = FileSystemStore(tmp_path)
    again = fresh.write_signals([signal(i, DAY + timedelta(seconds=i)) for i in range(1, n)])
    assert sum(r.written for r in again) == 0
