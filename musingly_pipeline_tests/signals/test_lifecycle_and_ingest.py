"""Lifecycle signals answer "which snapshot was current at T"; daily ingestion is idempotent and reports bad lines."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from musingly_pipeline.signals.ingest import day_digest, ingest_day, partition_health
from musingly_pipeline.signals.lifecycle import current_snapshot_at, record_snapshot_event
from musingly_pipeline_tests.signals.conftest import BOB, DAY, signal


def test_current_snapshot_at_replays_promotions_and_rollbacks(store):
    t = DAY
    record_snapshot_event(store, "import_started", 1, 10, "v1", t)
    record_snapshot_event(store, "snapshot_ready", 1, 10, "v1", t + timedelta(minutes=1))
    record_snapshot_event(store, "promoted", 1, 10, "v1", t + timedelta(minutes=2))
    record_snapshot_event(store, "promoted", 2, 11, "v2", t + timedelta(days=1))
    assert not record_snapshot_event(store, "promoted", 2, 11, "v2", t + timedelta(days=1)).written
    record_snapshot_event(store, "rolled_back", 1, 12, "v1", t + timedelta(days=2))
    assert current_snapshot_at(store, t + timedelta(minutes=1)) is None
    assert current_snapshot_at(store, t + timedelta(minutes=2)).snapshot_id == "1"
    assert current_snapshot_at(store, t + timedelta(days=1, hours=1)).version_label == "v2"
    now = current_snapshot_at(store, t + timedelta(days=3))
    assert (now.snapshot_id, now.event) == ("1", "rolled_back")
    with pytest.raises(ValueError, match="lifecycle event"):
        record_snapshot_event(store, "deleted", 1, 1, "v1", t)


def test_ingest_day_is_idempotent_and_rejects_bad_lines(store, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    lines = [signal(i, DAY + timedelta(hours=i)).to_line() for i in range(4)]
    lines.append(signal("bob", DAY + timedelta(hours=5), refs=(BOB,), source="crawler").to_line())
    lines.append('{"signal_id": "broken"')
    lines.append(signal("tomorrow", DAY + timedelta(days=1)).to_line())
    (incoming / "2026-02-05.jsonl").write_text("\n".join(lines[:4]) + "\n")
    (incoming / "2026-02-05-extra.jsonl").write_text("\n".join(lines[3:]) + "\n")
    (incoming / "2026-02-06.jsonl").write_text(lines[-1] + "\n")
    report = ingest_day(store, incoming, DAY.date())
    assert (report.lines, report.written, report.duplicates) == (8, 5, 1)
    assert [i.code for i in report.rejected] == ["SIGNAL_UNREADABLE_LINE", "SIGNAL_OUTSIDE_PARTITION"]
    again = ingest_day(store, incoming, DAY.date())
    assert (again.written, again.duplicates) == (0, 6)
    digest = day_digest(store, DAY.date())
    assert digest["signals"] == 5
    assert digest["by_source"] == {"crawler": 1, "ingest.worker": 4}
    assert digest["top_entities"][0] == {"entity": "person:x:alice", "signals": 4}
    json.dumps(digest)
    health = partition_health(store, DAY.date())
    assert (health.events, health.duplicate_ids, health.outside_day, health.unreadable) == (5, [], [], [])
