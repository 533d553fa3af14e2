"""Rerun the hostile-input and fault audit (issue 15) at scale and print its counts.

    python tools/fault_audit.py [--mutations 1600] [--kills 42] [--race-seconds 60] [--torn-lines 200]

Four experiments against a real PostgreSQL (a database of its own on the server of
MUSINGLY_TEST_DATABASE_URL, else the embedded one, dropped at the end) and a temporary signal store:

* mutations: generated hostile bundles (musingly_pipeline_tests/storage/bundle_mutations.py); for
  each, `validate` and `import` must agree and an import must read back as validated;
* kills: `kill -9` of an importing process at each stage in turn; afterwards no partial snapshot,
  the log marked failed, the current snapshot untouched;
* races: imports (same content again and again, promoted every other time), merges,
  promote/rollback, cleanup --keep 1 and delete-draft of the newest ready snapshot, all at once;
* torn lines: a process appends torn lines to a signal day file without the store's lock while
  the store writes batches; then acknowledged ids lost, ids stored twice, ids a fresh store writes again.

The test suite runs each experiment at a size that takes seconds; this script is for audits.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from musingly_pipeline.signals import FileSystemStore  # noqa: E402
from musingly_pipeline.bundles import ImportRefused, SnapshotError, SnapshotStore  # noqa: E402
from musingly_pipeline.storage.database import connect, create_database, drop_database, embedded_url  # noqa: E402
from musingly_pipeline.bundles.synthetic import write_bundle  # noqa: E402
from musingly_pipeline_tests.signals.conftest import DAY, signal as make_signal  # noqa: E402
from musingly_pipeline_tests.signals.test_foreign_writers import _FOREIGN_WRITER  # noqa: E402
from musingly_pipeline_tests.bundles.bundle_mutations import check_agreement, mutated_bundle  # noqa: E402
from musingly_pipeline_tests.bundles.helpers import HOTFIX, assert_consistent, bundle, variant  # noqa: E402
from musingly_pipeline_tests.bundles.test_faults import _IMPORTER  # noqa: E402

REFUSALS = (SnapshotError, ImportRefused)


def mutations(url: str, count: int) -> dict:
    outcomes = collections.Counter({"validate and import disagree": 0, "unhandled error": 0})
    failures: list[str] = []

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(mutated_bundle())
    def run(case):
        done, text = case
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mutated.json"
            path.write_text(text, encoding="utf-8")
            try:
                outcomes[check_agreement(url, path)] += 1
            except AssertionError as exc:
                outcomes["validate and import disagree"] += 1
                failures.append(f"{done}: {exc}")
            except Exception as exc:  # noqa: BLE001 - what the audit counts
                outcomes["unhandled error"] += 1
                failures.append(f"{done}: {type(exc).__name__}: {exc}")

    run()
    return {"mutated bundles": sum(outcomes.values()), **outcomes, "examples": failures[:5]}


def kills(url: str, count: int) -> dict:
    stages = ["hashing", "domains", "trails", "concepts", "sparks", "beacons", "concept_sparks",
              "spark_beacons", "spark_links", "concept_links"]
    base = SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    before = SnapshotStore(url).snapshot_row_counts(base.snapshot_id)
    outcomes: collections.Counter = collections.Counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bundle(Path(tmp) / "medium.json", 3000, content_bytes=300)
        for k in range(count):
            done = subprocess.run([sys.executable, "-c", _IMPORTER, url, str(path), stages[k % len(stages)]],
                                  env=env, capture_output=True, text=True, timeout=300)
            outcomes["killed" if done.returncode == -signal.SIGKILL else f"exit {done.returncode}"] += 1
            deadline = time.monotonic() + 10  # until the server has seen the dead client's socket close
            while True:
                logs = [log for log in SnapshotStore(url).list_imports(limit=1000) if log.version_label != "base"]
                left = sum(log.status in ("pending", "importing") for log in logs)
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            outcomes["logs left importing"] += left
            outcomes["logs marked failed"] = sum(log.status == "failed" for log in logs)
            with connect(url) as conn:
                outcomes["partial snapshots"] += conn.execute(
                    "SELECT count(*) FROM snapshots WHERE id <> %s", (base.snapshot_id,)).fetchone()[0]
            current = SnapshotStore(url).current_snapshot()
            outcomes["current snapshot changed"] += current.id != base.snapshot_id or \
                SnapshotStore(url).snapshot_row_counts(base.snapshot_id) != before
    return {"kills": count, **outcomes}


def races(url: str, seconds: float) -> dict:
    SnapshotStore(url).import_bundle(bundle("race-base"), promote=True)
    stop = time.monotonic() + seconds
    outcomes = collections.Counter({"unhandled errors": 0})
    failures: list[str] = []

    def loop(name, call):
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                call(i)
                outcomes[f"{name} ok"] += 1
            except REFUSALS:
                outcomes[f"{name} refused"] += 1
            except Exception as exc:  # noqa: BLE001 - what the audit counts
                outcomes["unhandled errors"] += 1
                failures.append(f"{name}: {type(exc).__name__}: {traceback.format_exc().splitlines()[-1]}")

    def delete_newest_ready(i):
        ready = [s for s in SnapshotStore(url).list_snapshots() if s.status == "ready"]
        if ready:
            SnapshotStore(url).delete_draft(ready[0].id)

    calls = {
        "import A": lambda i: SnapshotStore(url).import_bundle(variant(f"a{i}", f"content {i % 3}"), promote=i % 2 == 0),
        "import B": lambda i: SnapshotStore(url).import_bundle(variant(f"b{i}", f"content {i % 2}"), promote=i % 3 == 0),
        "merge": lambda i: SnapshotStore(url).import_file(HOTFIX, merge=True, promote=i % 3 == 0),
        "promote/rollback": lambda i: SnapshotStore(url).promote(latest=True) if i % 2 else SnapshotStore(url).rollback(),
        "cleanup": lambda i: SnapshotStore(url).cleanup(1),
        "delete-draft": delete_newest_ready,
    }
    threads = [threading.Thread(target=loop, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with connect(url) as conn:
        currents = conn.execute("SELECT count(*) FROM snapshots WHERE status = 'current'").fetchone()[0]
    try:
        assert_consistent(url)
        consistent = True
    except AssertionError:
        consistent = False
    operations = sum(v for k, v in outcomes.items() if k != "unhandled errors") + outcomes["unhandled errors"]
    return {"race operations": operations, **outcomes, "current snapshots at the end": currents,
            "logs consistent with snapshots": consistent, "examples": failures[:5]}


def torn_lines(count: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        writer_store = FileSystemStore(workspace, durable=False)
        writer_store.write_signal(make_signal(0))
        path = writer_store.partition_path("signal", DAY.date())
        foreign = subprocess.Popen([sys.executable, "-c", _FOREIGN_WRITER, str(path), str(count), "11"])
        acknowledged: set[str] = {"s-0"}
        repeats_acknowledged, n = 0, 1
        while foreign.poll() is None:
            batch = [make_signal(i, DAY + timedelta(seconds=i)) for i in range(n, n + 20)]
            again = [make_signal(i, DAY + timedelta(seconds=i)) for i in range(max(1, n - 5), n)]
            results = writer_store.write_signals(batch + again)
            acknowledged |= {r.event_id for r in results if r.written}
            repeats_acknowledged += sum(r.written for r in results[len(batch):])
            n += 20
            time.sleep(0.002)
        foreign.wait()
        read = FileSystemStore(workspace).read_partition("signal", DAY.date(), warn=False)
        stored = collections.Counter(e.signal_id for e in read.envelopes)
        fresh = FileSystemStore(workspace).write_signals(
            [make_signal(i, DAY + timedelta(seconds=i)) for i in range(1, n)])
        return {"torn lines appended": count, "ids acknowledged": len(acknowledged),
                "acknowledged ids lost": len(acknowledged - set(stored)),
                "ids stored twice": sum(v > 1 for v in stored.values()),
                "repeats acknowledged as written": repeats_acknowledged,
                "ids a fresh store wrote again": sum(r.written for r in fresh)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutations", type=int, default=1600)
    parser.add_argument("--kills", type=int, default=42)
    parser.add_argument("--race-seconds", type=float, default=60)
    parser.add_argument("--torn-lines", type=int, default=200)
    args = parser.parse_args()
    server = os.environ.get("MUSINGLY_TEST_DATABASE_URL", "").strip() or embedded_url()
    names = []

    def database() -> str:
        names.append(f"musingly_audit_{os.getpid()}_{uuid.uuid4().hex[:8]}")
        return create_database(server, names[-1])

    try:
        for title, run in (("mutations", lambda: mutations(database(), args.mutations)),
                           ("kills", lambda: kills(database(), args.kills)),
                           ("races", lambda: races(database(), args.race_seconds)),
                           ("torn lines", lambda: torn_lines(args.torn_lines))):
            started = time.perf_counter()
            result = run()
            print(f"{title} ({time.perf_counter() - started:.0f} s)")
            for key, value in result.items():
                if key == "examples":
                    for line in value:
                        print(f"    {line[:300]}")
                else:
                    print(f"  {key}: {value}")
    finally:
        for name in names:
            drop_database(server, name)


if __name__ == "__main__":
    main()
