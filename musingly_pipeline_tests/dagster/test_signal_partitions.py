"""signal_partitions with real Dagster: one day, a multi-day single run, re-runs, and the per-day checks."""

from __future__ import annotations

import shutil
from datetime import timedelta
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


def test_a_range_runs_as_one_run_and_checks_catch_a_corrupt_day(tmp_path):
    incoming = _incoming(tmp_path)
    days = sorted({p.name[:10] for p in incoming.glob("*.jsonl")})
    # the tags a range backfill (UI or `dagster asset materialize --partition-range`) puts on its single run
    result = _materialize(tmp_path, incoming, tags={"dagster/asset_partition_range_start": days[0],
                                                    "dagster/asset_partition_range_end": days[-1]})
    assert result.asset_materializations_for_node("signal_partitions")[0].metadata["days"].value == 3
    assert result.success
    store = FileSystemStore(tmp_path / "ws")
    assert [d.isoformat() for d in store.days()] == days
    assert all(store.read_daily_digest_snapshot(d) for d in days)
    # a foreign writer leaves a duplicate, an off-day timestamp and a torn line in one day's partition
    path = store.partition_path("signal", DAY.date())
    with open(path, "a") as handle:
        first = path.read_text().splitlines()[0]
        handle.write(first + "\n" + signal("off", DAY + timedelta(days=1)).to_line() + "\n" + '{"signal_id": "to')
    with pytest.warns(UnreadableLineWarning, match="torn last line"):  # the digest's replay skips it
        result = _materialize(tmp_path, incoming, partition_key=DAY.date().isoformat(), raise_on_error=False)
    assert _checks(result) == {"no_duplicate_ids": False, "timestamps_inside_day": False, "no_unreadable_lines": False}
