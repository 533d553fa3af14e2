"""The JSONL backend's batch write path against a plain model of the store: results, bytes, index."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musingly_pipeline.signals import EmissionEnvelope, EntityRef, FileSystemStore, InvalidEnvelope, SignalEnvelope
from musingly_pipeline.signals import id_index
from musingly_pipeline.signals.id_hashes import id_hash, id_hashes
from musingly_pipeline_tests.signals.conftest import ALICE, DAY, signal

END = DAY + timedelta(days=10)
# ids that repeat across examples, and ids whose JSON needs escaping or looks like the batch marker
IDS = [f"s-{i}" for i in range(8)] + ['a,{"entity_refs":', "é-✓", "tab\tnew\nline", 'q"uote\\', "x" * 40]
TEXT = st.sampled_from(["", "plain", ',{"entity_refs":', '},{"entity_refs":[]', "héllo ✓", "\u2028", "\x00\x1f"])
SCALARS = st.none() | st.booleans() | st.integers(-10**18, 10**18) | st.floats(allow_nan=False, allow_infinity=False) | TEXT
PAYLOADS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["entity_refs", "caused_by", "k", "ü"]), inner, max_size=3), max_leaves=6)
REFS = st.lists(st.builds(EntityRef, ref_type=st.sampled_from(["person", "project"]), value=TEXT,
                          platform=st.none() | st.just("x")), max_size=2).map(tuple)
ENVELOPES = st.builds(
    lambda i, minutes, payload, refs: SignalEnvelope(signal_id=i, timestamp=DAY + timedelta(minutes=minutes), source="src",
                                                     payload_type="T", payload=payload, entity_refs=refs),
    st.sampled_from(IDS), st.integers(0, 3 * 24 * 60), PAYLOADS, REFS)


def _expected(batches, root: Path):
    """What a correct store returns and stores: first write of an id wins, per batch in batch order."""
    stored: dict[str, object] = {}
    lines: dict[object, list[bytes]] = {}
    results = []
    for batch in batches:
        seen: dict[str, object] = {}
        out = []
        for e in batch:
            day = stored.get(e.signal_id) or seen.get(e.signal_id)
            if day is None:
                seen[e.signal_id] = e.day
                lines.setdefault(e.day, []).append(e.to_json_bytes() + b"\n")
            out.append((e.signal_id, day or e.day, day is None, str(root / "store" / "signals" / f"{(day or e.day).isoformat()}.jsonl")))
        stored.update(seen)
        results.append(out)
    return results, lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(ENVELOPES, min_size=1, max_size=12), min_size=1, max_size=3), durable=st.booleans(),
       io_threads=st.sampled_from([0, 4]))
def test_batch_writes_match_a_plain_model_of_the_store(batches, durable, io_threads):
    """With worker threads (the fast path) or without (every write inline, in order): the same results and files."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = FileSystemStore(root, durable=durable, io_threads=io_threads)
        expected_results, expected_lines = _expected(batches, root)
        assert [[tuple(r) for r in store.write_signals(b)] for b in batches] == expected_results
        files = sorted((root / "store" / "signals").glob("*.jsonl"))
        # each line is pydantic's JSON of its envelope (what metaspn-store reads), in write order
        assert {p.name: p.read_bytes() for p in files} == {f"{d.isoformat()}.jsonl": b"".join(v) for d, v in expected_lines.items()}
        # a new store object (another process) finds every id through the persisted index
        again = FileSystemStore(root, durable=durable)
        for batch, results in zip(batches, expected_results):
            assert [(r.event_id, r.day, r.written) for r in again.write_signals(batch)] == \
                   [(i, d, False) for i, d, _, _ in results]
        replay = list(again.iter_signals(DAY, END))
        assert sorted(e.signal_id for e in replay) == sorted({e.signal_id for b in batches for e in b})


def test_a_payload_holding_the_batch_marker_is_written_line_by_line(tmp_path):
    store = FileSystemStore(tmp_path)
    tricky = [signal("t1", payload=[1, {"entity_refs": [{"entity_refs": 2}]}]), signal("t2"), signal("t3", payload={"s": ',{"entity_refs":'})]
    assert all(r.written for r in store.write_signals(tricky))
    path = store.partition_path("signal", DAY.date())
    assert path.read_bytes() == b"".join(e.to_json_bytes() + b"\n" for e in tricky)
    assert [e.payload for e in store.iter_signals(DAY, END)] == [e.payload for e in tricky]


def test_emission_batches_are_written_one_line_each(tmp_path):
    store = FileSystemStore(tmp_path)
    emissions = [EmissionEnvelope(emission_id=f"e-{i}", timestamp=DAY + timedelta(hours=7 * i), emission_type="OutcomeSuccess",
                                  caused_by=f"s-{i}", payload={"caused_by": i} if i % 2 else [{"caused_by": i}], entity_refs=(ALICE,))
                 for i in range(8)]
    results = store.write_emissions(emissions + emissions[:2])
    assert [r.written for r in results] == [True] * 8 + [False] * 2
    for day in {e.day for e in emissions}:
        assert store.partition_path("emission", day).read_bytes() == \
               b"".join(e.to_json_bytes() + b"\n" for e in emissions if e.day == day)
    assert [e.emission_id for e in store.iter_emissions(DAY, END)] == [e.emission_id for e in emissions]


def test_id_hashes_are_stable_and_do_not_depend_on_the_batch():
    # the index file stores these hashes: a change here must change MAGIC (old indexes are rebuilt)
    assert id_hash("s-1") == 17907990169998199605
    assert id_hash("a-much-longer-signal-id-that-takes-several-words") == 12845219739180884183
    ids = ["s-1", "", "a", "a\x00", "é", "x" * 100, "a-much-longer-signal-id-that-takes-several-words"]
    together = id_hashes(ids)
    assert together.tolist() == [id_hash(i) for i in ids]
    assert len(set(together.tolist())) == len(ids)  # a trailing NUL byte is a different id
    assert id_hashes([]).tolist() == []


def test_an_index_written_by_the_previous_format_is_rebuilt(tmp_path):
    store = FileSystemStore(tmp_path)
    store.write_signals([signal(i) for i in range(5)])
    store.close()
    index = tmp_path / "store" / "signals" / ".ids.idx"
    data = bytearray(index.read_bytes())
    data[:8] = b"MSIDX001"  # BLAKE2b hashes: not comparable with today's
    index.write_bytes(bytes(data))
    reopened = FileSystemStore(tmp_path)
    assert [r.written for r in reopened.write_signals([signal(3), signal(5)])] == [False, True]
    assert index.read_bytes()[:8] == id_index.MAGIC


def index_settings(store: FileSystemStore, **settings) -> FileSystemStore:
    """``store`` with its id indexes' ``hash_ids`` or ``merge_threshold`` set (see IdIndex)."""
    for index in store._indexes.values():
        for name, value in settings.items():
            setattr(index, name, value)
    return store


def test_recent_entries_merge_into_the_main_index(tmp_path):
    store = index_settings(FileSystemStore(tmp_path, durable=False), merge_threshold=25)
    for start in range(0, 200, 20):
        batch = [signal(i, DAY + timedelta(hours=i % 72)) for i in range(start, start + 20)] + [signal(start // 2)]
        results = store.write_signals(batch)
        assert [r.written for r in results] == [True] * 20 + [False]
    assert store._indexes["signal"].size == 200
    assert not any(r.written for r in store.write_signals([signal(i, DAY) for i in range(0, 200, 7)]))
    assert not any(r.written for r in FileSystemStore(tmp_path).write_signals([signal(i) for i in range(0, 200, 9)]))


def test_a_failed_write_leaves_the_ids_unstored(tmp_path, monkeypatch):
    store = FileSystemStore(tmp_path)
    batch = [signal(i, DAY + timedelta(days=i % 3)) for i in range(9)]
    real = os.write

    def failing(fd, data):  # the disk fills up under one day file
        if os.readlink(f"/proc/self/fd/{fd}").endswith("2026-02-06.jsonl"):
            raise OSError(28, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", failing)
    with pytest.raises(OSError, match="No space"):
        store.write_signals(batch)
    monkeypatch.setattr(os, "write", real)
    # the other days' lines may be on disk; the failed day's ids are not taken as stored
    results = store.write_signals(batch)
    assert {r.event_id for r in results if r.written} >= {e.signal_id for e in batch if e.day == (DAY + timedelta(days=1)).date()}
    replay = [e.signal_id for e in FileSystemStore(tmp_path).iter_signals(DAY, END)]
    assert sorted(replay) == sorted(e.signal_id for e in batch)


def test_a_subclass_instance_is_stored_as_the_envelope_it_is(tmp_path):
    class Tagged(SignalEnvelope):
        pass

    class Extra(SignalEnvelope):
        note: str = "x"

    store = FileSystemStore(tmp_path)
    base = signal("sub")
    assert store.write_signal(Tagged(**dict(base))).written
    assert store.partition_path("signal", DAY.date()).read_bytes() == base.to_json_bytes() + b"\n"
    with pytest.raises(InvalidEnvelope):  # a field the store's format has no place for
        store.write_signal(Extra(**dict(signal("extra"))))


def test_the_index_lookup_reads_every_entry_of_a_hash(tmp_path):
    """Entries sharing a hash (a collision, or an id stored twice) are all candidates, loaded or appended later."""
    store = FileSystemStore(tmp_path, durable=False)
    store.write_signals([signal(0), signal(1)])
    store.close()
    path = tmp_path / "store" / "signals" / ".ids.idx"
    entries = np.frombuffer(path.read_bytes()[id_index.HEADER_SIZE:], id_index.ENTRY)
    h0, h1 = id_hash("s-0"), id_hash("s-1")
    collision = entries[entries["h"] == h1].copy()
    collision["h"] = h0  # an entry for s-1's line under s-0's hash
    with open(path, "ab") as handle:
        handle.write(collision.tobytes())
    probe = np.array([h0], "<u8")
    for when in ("loaded", "appended later"):
        index = FileSystemStore(tmp_path, durable=False)._indexes["signal"]
        index.refresh()
        if when == "appended later":  # another writer's entry, picked up from the file's tail
            with open(path, "ab") as handle:
                handle.write(collision.tobytes())
            index.refresh()
        assert index.lookup_many(["s-0"], probe) == {0: DAY.date()}
        assert index.lookup_many(["s-1"], probe) == {0: DAY.date()}
        assert index.lookup_many(["s-9"], probe) == {}


@pytest.mark.parametrize("distinct_hashes", [1, 3])
def test_ids_sharing_a_hash_are_told_apart(tmp_path, distinct_hashes):
    """Every id hashed to one of a few values: the entries this store object appended are confirmed by
    the ids it kept, those of another store object by reading the lines; results as with real hashes."""
    def colliding(store):  # also merged into the main arrays on the way
        return index_settings(store, hash_ids=lambda ids: np.array([len(i) % distinct_hashes for i in ids], np.uint64),
                              merge_threshold=30)

    batches = [[signal(i, DAY + timedelta(hours=i % 50)) for i in range(start, start + 12)] + [signal(start // 3), signal(start)]
               for start in range(0, 120, 12)]
    store = colliding(FileSystemStore(tmp_path, durable=False))
    expected_results, expected_lines = _expected(batches, tmp_path)
    assert [[tuple(r) for r in store.write_signals(b)] for b in batches] == expected_results
    assert {p.name: p.read_bytes() for p in (tmp_path / "store" / "signals").glob("*.jsonl")} == \
           {f"{d.isoformat()}.jsonl": b"".join(v) for d, v in expected_lines.items()}
    other = colliding(FileSystemStore(tmp_path, durable=False))
    for batch, results in zip(batches, expected_results):
        assert [(r.event_id, r.day, r.written) for r in other.write_signals(batch)] == [(i, d, False) for i, d, _, _ in results]
    assert [r.written for r in store.write_signals([signal(500), signal(7), signal(501)])] == [True, False, True]
