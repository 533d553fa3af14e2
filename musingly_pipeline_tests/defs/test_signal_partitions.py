"""signal_partitions with real Dagster: one day, a multi-day single run, re-runs, and the per-day checks."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from musingly_pipeline.defs.signals import asset_checks, assets, resources
from musingly_pipeline.signals import FileSystemStore, UnreadableLineWarning
from musingly_pipeline_tests.signals.conftest import DAY, signal

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "signals" / "incoming"


def _incoming(tmp_path: Path) -> Path:
    incoming = tmp_path / "incoming"
    shutil.copytree(EXAMPLES, incoming)
    return incoming


def _materialize(tmp_path, incoming, **kwargs):
    return dg.materialize([*assets, *asset_checks], resources=resources(str(tmp_path / "ws"), str(incoming)),
                          instance=dg.DagsterInstance.ephemeral(), **kwargs)


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_one_day_ingests_the_example_files_and_writes_a_digest(tmp_path):
    incoming = _incoming(tmp_path)
    result = _materialize(tmp_path, incoming, partition_key="2026-02-04")
    assert result.success
    meta = result.asset_materializations_for_node("signal_partitions")[0].metadata
    store = FileSystemStore(tmp_path / "ws")
    stored = store.read_partition("signal", DAY.date() - timedelta(days=1)).envelopes
    assert meta["signals_written"].value == len(stored) > 0
    digest = store.read_daily_digest_snapshot("2026-02-04")["digest"]
    assert digest["signals"] == len(stored) and digest["by_source"] and digest["top_entities"]
    assert _checks(result) == {"no_duplicate_ids": True, "timestamps_inside_day": True, "no_unreadable_lines": True}
    again = _materialize(tmp_path, incoming, partition_key="2026-02-04")
    assert again.asset_materializations_for_node("signal_partitions")[0].metadata["signals_written"].value == 0


def test_a_range_runs_as_one_run_and_every_day_reports_its_own_numbers(tmp_path):
    incoming = _incoming(tmp_path)
    days = sorted({p.name[:10] for p in incoming.glob("*.jsonl")})
    before = (date.fromisoformat(days[0]) - timedelta(days=1)).isoformat()  # a day with no incoming file
    # the tags a range backfill (UI or `dagster asset materialize --partition-range`) puts on its single run
    result = _materialize(tmp_path, incoming, tags={"dagster/asset_partition_range_start": before,
                                                    "dagster/asset_partition_range_end": days[-1]})
    assert result.success
    store = FileSystemStore(tmp_path / "ws")
    assert [d.isoformat() for d in store.days()] == days
    assert all(store.read_daily_digest_snapshot(d) for d in days)
    events = {e.partition: {k: v.value for k, v in e.metadata.items()}
              for e in result.asset_materializations_for_node("signal_partitions")}
    assert set(events) == {before, *days}
    for day in days:
        stored = len(store.read_partition("signal", date.fromisoformat(day)).envelopes)
        lines = sum(1 for p in incoming.glob(f"{day}*.jsonl") for line in p.read_text().splitlines() if line.strip())
        assert events[day]["signals_written"] == stored > 0 and events[day]["lines_read"] == lines
        assert events[day]["incoming_files"] == len(list(incoming.glob(f"{day}*.jsonl")))
    assert events[before]["incoming_files"] == 0 and events[before]["signals_written"] == 0
    assert events[before]["status"] == "nothing to ingest: no incoming file for this day"
    # one evaluation of each check per day, recorded for that day's partition
    evaluations = {(e.check_name, e.partition) for e in result.get_asset_check_evaluations() if e.partition}
    assert evaluations == {(c, d) for c in ("no_duplicate_ids", "timestamps_inside_day", "no_unreadable_lines")
                           for d in (before, *days)}


def test_checks_catch_a_corrupt_day(tmp_path):
    incoming = _incoming(tmp_path)
    assert _materialize(tmp_path, incoming, partition_key=DAY.date().isoformat()).success
    store = FileSystemStore(tmp_path / "ws")
    # a foreign writer leaves a duplicate, an off-day timestamp and a torn line in one day's partition
    path = store.partition_path("signal", DAY.date())
    with open(path, "a") as handle:
        first = path.read_text().splitlines()[0]
        handle.write(first + "\n" + signal("off", DAY + timedelta(days=1)).to_line() + "\n" + '{"signal_id": "to')
    with pytest.warns(UnreadableLineWarning, match="torn last line"):  # the digest's replay skips it
        result = _materialize(tmp_path, incoming, partition_key=DAY.date().isoformat(), raise_on_error=False)
    assert _checks(result) == {"no_duplicate_ids": False, "timestamps_inside_day": False, "no_unreadable_lines": False}
