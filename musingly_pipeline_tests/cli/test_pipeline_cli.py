"""`musingly pipeline`, the README's main job, on fresh databases: twice, the second a no-op."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.storage.database import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]


def test_main_job_imports_promotes_and_is_idempotent(tmp_path, make_database):
    url = make_database()
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home)
    data = tmp_path / "data"  # the example signal days, in a data folder of this test's own
    shutil.copytree(ROOT / "data" / "signals" / "incoming", data / "signals" / "incoming")
    env = dict(os.environ, MUSINGLY_DATABASE_URL=url, DAGSTER_HOME=str(home), MUSINGLY_DATA_DIR=str(data),
               MUSINGLY_DAGSTER_STORAGE_URL=sqlalchemy_url(make_database()))

    def run():
        return subprocess.run([sys.executable, "-m", "musingly_pipeline.cli", "pipeline"], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    assert "(v2.2.0) promoted to current" in first.stdout
    assert "units_imported 2, units_failed 0" in first.stdout
    for day in ("2026-02-04", "2026-02-05", "2026-02-06"):
        assert f"signals {day}:" in first.stdout
    assert first.stdout.count("checks passed: 3/3") == 3
    current = SnapshotStore(url).current_snapshot()
    assert current.version_label == "v2.2.0" and current.entity_counts["sparks"] == 23
    assert len(list((data / "signals" / "store" / "signals").glob("2026-02-0*.jsonl"))) == 3

    second = run()
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reused" in second.stdout and "units_new 0" in second.stdout
    assert [s.id for s in SnapshotStore(url).list_snapshots()] == [current.id]
