"""Scale-out as an operator runs it: the Dagster daemon and two Celery workers, each in its own folder
with its own data folder, sharing nothing but PostgreSQL and the broker; bundles handed in with
`musingly inbox push` while both workers are busy; then one worker killed mid-import."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.storage.database import sqlalchemy_url
from musingly_pipeline.bundles.synthetic import write_bundle
from musingly_pipeline_tests.operations.distributed import Deployment, broker_vhost

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, make_database):
    root = tmp_path_factory.mktemp("distributed")
    with broker_vhost() as broker:
        deployment = Deployment(root, make_database(), sqlalchemy_url(make_database()), broker)
        try:
            deployment.start_worker("w1")
            deployment.start_worker("w2")
            deployment.start_daemon()
            deployment.wait_ready(["w1", "w2", "daemon"])
            yield deployment
        finally:
            deployment.stop()


def _variant(label: str, summary: str) -> dict:
    data = json.loads((EXAMPLES / "platform-foundations.json").read_text())
    data["version_label"] = label
    data["sparks"][0]["summary"] = summary
    return data


def test_six_pushed_bundles_on_two_workers(deployment, tmp_path):
    files = {}
    for name, data in (("b1", _variant("b-v1", "first")), ("b2", _variant("b-v2", "second"))):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(data))
    broken = json.loads((EXAMPLES / "ml-curriculum.json").read_text())
    broken["trails"][0]["domain_slug"] = "nowhere"
    files["broken"] = tmp_path / "broken.json"
    files["broken"].write_text(json.dumps(broken))
    files["big"] = tmp_path / "big.json"
    write_bundle(files["big"], 5000)

    pushes = [deployment.push(EXAMPLES / "platform-foundations.json", "a.json"),
              deployment.push(files["big"], "big.json"),
              deployment.push(files["b1"], "b.json"),
              deployment.push(files["broken"], "broken.json"),
              deployment.push(files["b2"], "b.json"),  # changed content under a name already pushed
              deployment.push(EXAMPLES / "platform-foundations.json", "a.json")]  # the same bytes again
    assert [p["duplicate"] for p in pushes] == [False, False, False, False, False, True]

    runs = deployment.wait_runs(5)
    by_partition: dict[str, list] = {}
    for run in runs:
        by_partition.setdefault(run.tags["dagster/partition"], []).append(run)
    assert {k: len(v) for k, v in by_partition.items()} == {"a.json": 1, "big.json": 1, "b.json": 2, "broken.json": 1}
    statuses = {k: sorted(r.status.value for r in v) for k, v in by_partition.items()}
    assert statuses == {"a.json": ["SUCCESS"], "big.json": ["SUCCESS"], "b.json": ["SUCCESS", "SUCCESS"],
                        "broken.json": ["FAILURE"]}  # content that failed a check is not retried
    assert not any("dagster/parent_run_id" in r.tags for r in runs)

    workers = {}
    for run in runs:
        for step, names in deployment.step_workers(run.run_id).items():
            workers.setdefault(step, set()).update(names)
    assert set().union(*workers.values()) == {"w1", "w2"}  # steps ran on both workers

    ready = [s for s in SnapshotStore(deployment.url).list_snapshots() if s.status == "ready"]
    assert sorted(s.version_label for s in ready) == sorted(["v2.2.0", "synthetic-5000-0", "b-v1", "b-v2"])
    assert len({s.content_hash for s in ready}) == 4  # each distinct valid content exactly once
    with psycopg.connect(deployment.url) as conn:  # the lifecycle signals, in PostgreSQL
        events = dict(conn.execute("SELECT record->'payload'->>'event', count(*) FROM signal_events "
                                   "GROUP BY 1").fetchall())
    assert events == {"import_started": 4, "snapshot_ready": 4}
    # Each worker's folder holds only what it fetched itself, from PostgreSQL.
    staged = {w: {p.stem for p in (deployment.root / w / "data" / ".staging").glob("*.json")} for w in ("w1", "w2")}
    assert staged["w1"] and staged["w2"] and not staged["w1"] & staged["w2"]
    assert staged["w1"] | staged["w2"] == {p["sha256"] for p in pushes}


def test_a_worker_killed_mid_import_leaves_nothing_partial_and_the_step_runs_again(deployment, tmp_path):
    before = {s.id for s in SnapshotStore(deployment.url).list_snapshots()}
    path = tmp_path / "k.json"
    path.write_text(json.dumps(_variant("k-v1", "killed once")))
    holder = psycopg.connect(deployment.url)
    holder.execute("LOCK TABLE sparks IN ACCESS EXCLUSIVE MODE")  # the import will wait at its sparks
    try:
        deployment.push(path, "k.json")
        deadline = time.monotonic() + 120
        victim = None
        # (pg_stat_activity is read outside the holder's transaction, where it would stay as first seen)
        with psycopg.connect(deployment.url, autocommit=True) as watcher:
            while victim is None:
                assert time.monotonic() < deadline, "no worker started the import"
                row = watcher.execute("SELECT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      "AND application_name LIKE 'musingly-w%'").fetchone()
                victim = row[0].removeprefix("musingly-") if row else None
                time.sleep(0.2)
            # mid-load: its log says importing
            status = watcher.execute("SELECT status FROM import_logs WHERE version_label = 'k-v1'").fetchone()
            assert status == ("importing",)
        deployment.kill(victim)
    finally:
        holder.rollback()
        holder.close()
    runs = [r for r in deployment.wait_runs(6) if r.tags["dagster/partition"] == "k.json"]
    assert [r.status.value for r in runs] == ["SUCCESS"]
    survivor = ({"w1", "w2"} - {victim}).pop()
    assert survivor in deployment.step_workers(runs[0].run_id)["bundle_import"]
    new = [s for s in SnapshotStore(deployment.url).list_snapshots() if s.id not in before]
    assert [(s.version_label, s.status) for s in new] == [("k-v1", "ready")]  # nothing partial
    logs = [log.status for log in SnapshotStore(deployment.url).list_imports() if log.version_label == "k-v1"]
    assert sorted(logs) == ["failed", "ready"]  # the killed attempt is marked failed, not left importing
