"""What the JSONL backend does better than metaspn-store: crashes, concurrent writers, cold starts, fsync."""

from __future__ import annotations

import multiprocessing
import os
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from musingly_pipeline.signals import FileSystemStore, UnreadableLineWarning
from musingly_pipeline_tests.signals.conftest import DAY, signal

END = DAY + timedelta(days=30)
_OPENED: list[str] | None = None


def _audit(event: str, args) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened_files():
    """Every file path opened inside the block (Python's audit hook for ``open``/``os.open``)."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def partitions(paths: list[str]) -> set[str]:
    return {Path(p).name for p in paths if p.endswith(".jsonl")}


def test_a_torn_last_line_loses_only_that_line(tmp_path):
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(i) for i in range(3)])
    path = store.partition_path("signal", DAY.date())
    with open(path, "ab") as handle:  # a crash in the middle of a write
        handle.write(signal(99).to_line().encode()[:40])
    with pytest.warns(UnreadableLineWarning, match="torn last line"):
        assert [e.signal_id for e in store.iter_signals(DAY, END)] == ["s-0", "s-1", "s-2"]
    writer = FileSystemStore(tmp_path)  # a new process after the crash can write
    assert writer.write_signal(signal(3)).written
    assert writer.write_signal(signal(99)).written  # the torn id was never stored
    with pytest.warns(UnreadableLineWarning, match="unreadable line"):
        assert [e.signal_id for e in FileSystemStore(tmp_path).iter_signals(DAY, END)] == ["s-0", "s-1", "s-2", "s-3", "s-99"]
    read = store.read_partition("signal", DAY.date(), warn=False)
    assert [i.code for i in read.issues] == ["SIGNAL_UNREADABLE_LINE"] and read.lines == 6


def _write_many(workspace: str, start: int, count: int, barrier) -> None:
    store = FileSystemStore(workspace)
    big = "x" * 20_000  # records over 8 KB: larger than one pipe/stdio buffer
    barrier.wait()
    for k in range(0, count, 10):
        store.write_signals([signal(i, payload={"blob": big, "i": i}) for i in range(start + k, start + k + 10)])


def test_two_processes_writing_at_once_never_interleave_or_duplicate(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    # both processes write ids 50..149; each writes 100 ids, half of them shared with the other
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), start, 100, barrier)) for start in (0, 50)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = FileSystemStore(tmp_path)
    read = store.read_partition("signal", DAY.date(), warn=False)
    assert read.issues == []
    got = [e.signal_id for e in read.envelopes]
    assert len(got) == len(set(got)) == 150 == read.lines


def test_first_write_into_a_big_store_reads_no_history(tmp_path):
    store = FileSystemStore(tmp_path, durable=False)
    store.write_signals([signal(i, DAY + timedelta(days=i % 20, seconds=i)) for i in range(2000)])
    store.close()
    cold = FileSystemStore(tmp_path)
    with opened_files() as paths:
        assert cold.write_signal(signal("new", DAY + timedelta(days=40))).written
        assert not cold.write_signal(signal(1234)).written  # a duplicate: confirmed by one line of its day
    assert partitions(paths) == {"2026-03-17.jsonl", "2026-02-19.jsonl"}


def test_the_index_catches_up_with_lines_another_writer_appended(tmp_path):
    import metaspn_schemas
    from metaspn_store import FileSystemStore as TheirStore

    ours = FileSystemStore(tmp_path)
    ours.write_signals([signal(i) for i in range(5)])
    theirs = TheirStore(tmp_path)
    theirs.write_signal(metaspn_schemas.SignalEnvelope.from_dict(signal("theirs").to_record()))
    reopened = FileSystemStore(tmp_path)
    assert not reopened.write_signal(signal("theirs")).written
    assert reopened.write_signal(signal(5)).written
    # a truncated partition (restored from a backup) rebuilds the index instead of trusting it
    path = reopened.partition_path("signal", DAY.date())
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))
    again = FileSystemStore(tmp_path)
    assert again.reindex() == 2
    assert again.write_signal(signal(4)).written


def test_a_one_day_replay_reads_only_that_days_partition(tmp_path):
    store = FileSystemStore(tmp_path, durable=False)
    store.write_signals([signal(i, DAY + timedelta(days=i % 10, minutes=i)) for i in range(200)])
    day = DAY + timedelta(days=3)
    with opened_files() as paths:
        replay = list(store.iter_signals(day, day + timedelta(hours=23, minutes=59)))
    assert len(replay) == 20 and all(e.timestamp.date() == day.date() for e in replay)
    assert partitions(paths) == {"2026-02-08.jsonl"}


def test_a_batch_is_fsynced_before_the_write_returns(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(1, DAY), signal(2, DAY + timedelta(days=1))])
    assert {Path(p).name for p in synced} >= {"2026-02-05.jsonl", "2026-02-06.jsonl", "signals"}


def test_a_read_gives_what_a_line_by_line_read_gives(tmp_path):
    """The fast read (every line validated as bytes) and the careful one agree, whichever runs."""
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(i) for i in range(4)])
    path = store.partition_path("signal", DAY.date())
    fast = store.read_partition("signal", DAY.date())
    assert [e.signal_id for e in fast.envelopes] == ["s-0", "s-1", "s-2", "s-3"] and fast.lines == 4 and not fast.issues
    lines = path.read_bytes().split(b"\n")
    # another writer's lines: a +02:00 offset, blank lines, a bad line, invalid UTF-8 inside a string
    other = signal(4).to_line().replace("2026-02-05T00:04:00Z", "2026-02-05T02:04:00+02:00").encode()
    broken = signal(5).to_line().encode().replace(b'"n":"5"', b'"n":"5\xff"')
    path.write_bytes(b"\n".join([lines[0], b"", b"   ", other, b"{not json", lines[1], broken, lines[2], lines[3], b""]))
    with pytest.warns(UnreadableLineWarning, match=r"2026-02-05\.jsonl:5: skipped an unreadable line"):
        careful = store.read_partition("signal", DAY.date())
    assert [e.signal_id for e in careful.envelopes] == ["s-0", "s-4", "s-1", "s-5", "s-2", "s-3"]
    assert careful.lines == 7 and [i.path for i in careful.issues] == ["signals/2026-02-05.jsonl:5"]
    assert careful.envelopes[1] == signal(4)  # converted to UTC
    assert careful.envelopes[3].payload == {"n": "5\ufffd"}  # decoded leniently, as metaspn-store's reader does
    assert careful.envelopes[0] == fast.envelopes[0]


def test_envelopes_read_back_share_one_immutable_fields_set(tmp_path):
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(i) for i in range(3)])
    first, second, third = store.iter_signals(DAY, END)
    assert first.model_fields_set == set(type(first).model_fields) and first.model_fields_set is second.model_fields_set
    assert first.entity_refs[0].model_fields_set == {"label", "platform", "ref_type", "schema_version", "value"}
    with pytest.raises(AttributeError):
        first.model_fields_set.add("extra")  # shared, so it cannot be changed in place
    copy = first.model_copy(update={"source": "elsewhere"})
    assert copy.source == "elsewhere" and copy.model_fields_set == set(type(first).model_fields)
    assert second.source == "ingest.worker" and second.model_fields_set == set(type(first).model_fields)
    assert [e.model_dump() for e in (first, second, third)] == [signal(i).model_dump() for i in range(3)]
