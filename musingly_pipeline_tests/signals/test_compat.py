"""A workspace written by this store is read by the real metaspn-store 0.1.8, and the other way round."""

from __future__ import annotations

from datetime import timedelta

import metaspn_schemas as ms
from metaspn_store import FileSystemStore as TheirStore
from metaspn_store import ReplayCheckpoint as TheirCheckpoint

from musingly_pipeline.signals import EmissionEnvelope, FileSystemStore, ReplayCheckpoint, SignalEnvelope, TraceContext
from musingly_pipeline_tests.signals.conftest import ALICE, DAY, signal

END = DAY + timedelta(days=5)


def _ours() -> list[SignalEnvelope]:
    return [
        signal(1, DAY + timedelta(hours=1)),
        SignalEnvelope(signal_id="s-rich", timestamp=DAY + timedelta(days=1, microseconds=1500), source="ingest.worker",
                       payload_type="SocialPostSeen", payload={"text": "héllo ✓", "nested": [1, 2.5, None, True]},
                       entity_refs=(ALICE,), raw={"html": "<p>"},
                       trace=TraceContext(trace_id="t-1", caused_by=("s-1",), metadata={"k": "v"})),
    ]


def test_a_workspace_written_by_ours_is_read_by_metaspn_store(tmp_path):
    ours = FileSystemStore(tmp_path)
    ours.write_signals(_ours())
    ours.write_emission(EmissionEnvelope(emission_id="e-1", timestamp=DAY + timedelta(hours=2), emission_type="DraftApproved",
                                         caused_by="s-1", payload={"ok": True}, entity_refs=(ALICE,)))
    ours.write_checkpoint("worker", ReplayCheckpoint(DAY + timedelta(hours=1), ("s-1",)))
    ours.write_daily_digest_snapshot(day=DAY, digest={"top": ["s-1"]})

    theirs = TheirStore(tmp_path)
    replay = list(theirs.iter_signals(DAY, END))
    assert [s.to_dict() for s in replay] == [e.to_record() for e in _ours()]
    assert replay[1].entity_refs[0] == ms.EntityRef(ref_type="person", value="alice", platform="x")
    assert [e.emission_id for e in theirs.iter_emissions(DAY, END)] == ["e-1"]
    assert theirs.read_checkpoint("worker") == TheirCheckpoint(DAY + timedelta(hours=1), ("s-1",))
    assert theirs.read_daily_digest_snapshot(DAY)["digest"] == {"top": ["s-1"]}
    # their writer sees our ids as duplicates
    assert theirs.write_signal(ms.SignalEnvelope.from_dict(_ours()[0].to_record())).name == "2026-02-05.jsonl"
    assert len((tmp_path / "store/signals/2026-02-05.jsonl").read_text().splitlines()) == 1


def test_a_workspace_written_by_metaspn_store_is_read_by_ours(tmp_path):
    theirs = TheirStore(tmp_path)
    records = [e.to_record() for e in _ours()]
    theirs.write_signals([ms.SignalEnvelope.from_dict(r) for r in records])
    theirs.write_emission(ms.EmissionEnvelope(emission_id="e-1", timestamp=DAY, emission_type="OutcomeSuccess",
                                              payload={}, caused_by="s-1"))
    theirs.write_checkpoint("worker", TheirCheckpoint(DAY + timedelta(hours=1), ("s-1",)))
    theirs.write_calibration_snapshot(day=DAY, report={"n": 2})

    ours = FileSystemStore(tmp_path)
    assert [e.to_record() for e in ours.iter_signals(DAY, END)] == records
    assert [e.emission_id for e in ours.iter_emissions(DAY, END)] == ["e-1"]
    checkpoint = ours.read_checkpoint("worker")
    assert checkpoint == ReplayCheckpoint(DAY + timedelta(hours=1), ("s-1",))
    assert [e.signal_id for e in ours.iter_signals_from_checkpoint(end=END, checkpoint=checkpoint)] == ["s-rich"]
    assert ours.read_calibration_snapshot(DAY)["report"] == {"n": 2}
    assert [e.signal_id for e in ours.get_recent_signals_by_entity(entity_ref=ALICE, limit=5, end=END)] == ["s-rich", "s-1"]
    # our writer indexes their lines: their ids are duplicates, a new id is appended after them
    assert not ours.write_signal(signal(1, DAY + timedelta(hours=1))).written
    assert ours.write_signal(signal(2, DAY + timedelta(hours=1))).written
    assert [s.signal_id for s in TheirStore(tmp_path).iter_signals(DAY, END)] == ["s-1", "s-2", "s-rich"]
