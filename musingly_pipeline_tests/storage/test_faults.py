"""Races and crashes against a real PostgreSQL: separate connections in threads, kill -9 of a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from musingly_pipeline.storage import snapshots as store
from musingly_pipeline.storage.database import connect
from musingly_pipeline.synthetic import write_bundle
from musingly_pipeline_tests.storage.helpers import assert_consistent, bundle, variant

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(make_database) -> str:
    return make_database()


def _race(*calls):
    """Run the calls at the same moment in threads (each opens its own connection); return outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            outcomes[i] = call()
        except Exception as exc:  # a refusal is a legitimate outcome of a race
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def _current_count(url) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM snapshots WHERE status = 'current'").fetchone()[0]


def test_two_promotes_racing(url):
    store.import_bundle(url, bundle("base"), promote=True)
    for round_ in range(4):
        a = store.import_bundle(url, variant(f"a{round_}", f"a{round_}"))
        b = store.import_bundle(url, variant(f"b{round_}", f"b{round_}"))
        outcomes = _race(lambda: store.promote(url, a.import_id), lambda: store.promote(url, b.import_id))
        assert all(isinstance(o, store.SnapshotInfo) for o in outcomes), outcomes
        assert _current_count(url) == 1
        assert store.current_snapshot(url).id in (a.snapshot_id, b.snapshot_id)
        assert_consistent(url)


def test_promote_racing_rollback(url):
    store.import_bundle(url, bundle("base"), promote=True)
    for round_ in range(4):
        store.import_bundle(url, variant(f"x{round_}", f"x{round_}"), promote=True)
        y = store.import_bundle(url, variant(f"y{round_}", f"y{round_}"))
        outcomes = _race(lambda: store.promote(url, y.import_id), lambda: store.rollback(url))
        assert isinstance(outcomes[0], store.SnapshotInfo), outcomes  # a ready snapshot is always promotable
        assert not isinstance(outcomes[1], Exception) or isinstance(outcomes[1], store.SnapshotError)
        assert _current_count(url) == 1
        assert_consistent(url)


def test_two_imports_in_parallel(url):
    store.import_bundle(url, bundle("base"), promote=True)
    outcomes = _race(
        lambda: store.import_bundle(url, variant("p", "p"), promote=True),
        lambda: store.import_bundle(url, variant("q", "q"), promote=True),
        lambda: store.import_bundle(url, variant("same", "same")),
        lambda: store.import_bundle(url, variant("same-again", "same")),
    )
    assert all(isinstance(o, store.ImportResult) for o in outcomes), outcomes
    assert _current_count(url) == 1
    assert store.current_snapshot(url).id in (outcomes[0].snapshot_id, outcomes[1].snapshot_id)
    # the two imports of the same content made one snapshot between them
    assert outcomes[2].snapshot_id == outcomes[3].snapshot_id
    assert sorted((outcomes[2].reused, outcomes[3].reused)) == [False, True]
    assert {log.status for log in store.list_imports(url)} <= {"promoted", "ready"}
    assert_consistent(url)


_IMPORTER = textwrap.dedent("""
    import os, signal, sys
    from musingly_pipeline.storage import snapshots as store
    url, path, kill_at = sys.argv[1:4]

    def progress(stage, done, total):
        if stage == kill_at and done == total:
            print("killing", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    store.import_bundle_file(url, path, progress=progress, allow_shrink=True)
""")


@pytest.fixture(scope="module")
def medium_bundle(tmp_path_factory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("bundles") / "medium.json", 3000, content_bytes=300)


def _run_importer(url: str, path: Path, kill_at: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-c", _IMPORTER, url, str(path), kill_at],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kill_at", ["hashing", "domains", "sparks", "spark_links", "concept_links"])
def test_kill_9_mid_import_leaves_nothing_and_can_be_rerun(url, medium_bundle, kill_at):
    base = store.import_bundle(url, bundle("base"), promote=True)
    before = store.snapshot_row_counts(url, base.snapshot_id)

    done = _run_importer(url, medium_bundle, kill_at)
    assert done.returncode == -signal.SIGKILL, done.stderr

    deadline = time.monotonic() + 10  # until the server has seen the dead client's socket close
    while True:
        logs = store.list_imports(url)
        if all(log.status not in ("pending", "importing") for log in logs) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    killed = [log for log in logs if log.version_label != "base"]
    # every stage runs after the log row is written (hashing runs beside the COPY)
    [log] = killed
    assert log.status == "failed" and "ended before finishing" in log.error_message
    assert store.current_snapshot(url).id == base.snapshot_id
    assert store.snapshot_row_counts(url, base.snapshot_id) == before
    assert [s.id for s in store.list_snapshots(url)] == [base.snapshot_id]
    with connect(url) as conn:  # no rows of any other snapshot anywhere
        assert conn.execute("SELECT count(*) FROM sparks WHERE snapshot_id <> %s",
                            (base.snapshot_id,)).fetchone()[0] == 0

    result = store.import_bundle_file(url, medium_bundle, allow_shrink=True)
    assert result.entity_counts["sparks"] == 3000 and not result.reused
    assert_consistent(url)
