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

from musingly_pipeline.bundles import ImportRefused, ImportResult, SnapshotError, SnapshotInfo, SnapshotStore, importing
from musingly_pipeline.storage.database import connect
from musingly_pipeline.bundles.synthetic import write_bundle
from musingly_pipeline_tests.bundles.helpers import assert_consistent, bundle, variant

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
    SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    for round_ in range(4):
        a = SnapshotStore(url).import_bundle(variant(f"a{round_}", f"a{round_}"))
        b = SnapshotStore(url).import_bundle(variant(f"b{round_}", f"b{round_}"))
        outcomes = _race(lambda: SnapshotStore(url).promote(a.import_id), lambda: SnapshotStore(url).promote(b.import_id))
        assert all(isinstance(o, SnapshotInfo) for o in outcomes), outcomes
        assert _current_count(url) == 1
        assert SnapshotStore(url).current_snapshot().id in (a.snapshot_id, b.snapshot_id)
        assert_consistent(url)


def test_promote_racing_rollback(url):
    SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    for round_ in range(4):
        SnapshotStore(url).import_bundle(variant(f"x{round_}", f"x{round_}"), promote=True)
        y = SnapshotStore(url).import_bundle(variant(f"y{round_}", f"y{round_}"))
        outcomes = _race(lambda: SnapshotStore(url).promote(y.import_id), lambda: SnapshotStore(url).rollback())
        assert isinstance(outcomes[0], SnapshotInfo), outcomes  # a ready snapshot is always promotable
        assert not isinstance(outcomes[1], Exception) or isinstance(outcomes[1], SnapshotError)
        assert _current_count(url) == 1
        assert_consistent(url)


def test_two_imports_in_parallel(url):
    SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    outcomes = _race(
        lambda: SnapshotStore(url).import_bundle(variant("p", "p"), promote=True),
        lambda: SnapshotStore(url).import_bundle(variant("q", "q"), promote=True),
        lambda: SnapshotStore(url).import_bundle(variant("same", "same")),
        lambda: SnapshotStore(url).import_bundle(variant("same-again", "same")),
    )
    assert all(isinstance(o, ImportResult) for o in outcomes), outcomes
    assert _current_count(url) == 1
    assert SnapshotStore(url).current_snapshot().id in (outcomes[0].snapshot_id, outcomes[1].snapshot_id)
    # the two imports of the same content made one snapshot between them
    assert outcomes[2].snapshot_id == outcomes[3].snapshot_id
    assert sorted((outcomes[2].reused, outcomes[3].reused)) == [False, True]
    assert {log.status for log in SnapshotStore(url).list_imports()} <= {"promoted", "ready"}
    assert_consistent(url)


_IMPORTER = textwrap.dedent("""
    import os, signal, sys
    from musingly_pipeline.bundles import SnapshotStore
    url, path, kill_at = sys.argv[1:4]

    def progress(stage, done, total):
        if stage == kill_at and done == total:
            print("killing", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    SnapshotStore(url).import_file(path, progress=progress, allow_shrink=True)
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
    base = SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    before = SnapshotStore(url).snapshot_row_counts(base.snapshot_id)

    done = _run_importer(url, medium_bundle, kill_at)
    assert done.returncode == -signal.SIGKILL, done.stderr

    deadline = time.monotonic() + 10  # until the server has seen the dead client's socket close
    while True:
        logs = SnapshotStore(url).list_imports()
        if all(log.status not in ("pending", "importing") for log in logs) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    killed = [log for log in logs if log.version_label != "base"]
    # every stage runs after the log row is written (hashing runs beside the COPY)
    [log] = killed
    assert log.status == "failed" and "ended before finishing" in log.error_message
    assert SnapshotStore(url).current_snapshot().id == base.snapshot_id
    assert SnapshotStore(url).snapshot_row_counts(base.snapshot_id) == before
    assert [s.id for s in SnapshotStore(url).list_snapshots()] == [base.snapshot_id]
    with connect(url) as conn:  # no rows of any other snapshot anywhere
        assert conn.execute("SELECT count(*) FROM sparks WHERE snapshot_id <> %s",
                            (base.snapshot_id,)).fetchone()[0] == 0

    result = SnapshotStore(url).import_file(medium_bundle, allow_shrink=True)
    assert result.entity_counts["sparks"] == 3000 and not result.reused
    assert_consistent(url)


def _wait_for_a_lock_wait(url: str, timeout: float = 30) -> None:
    """Until some session of the database waits for a lock (the race is then set up)."""
    deadline = time.monotonic() + timeout
    with connect(url, autocommit=True) as conn:
        while not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'").fetchone()[0]:
            assert time.monotonic() < deadline, "no session started waiting"
            time.sleep(0.02)


def test_cleanup_of_an_import_parent_waits_for_the_import_instead_of_deadlocking(url):
    """The import holds its parent's row and needs a content table; cleanup deleting that parent
    (archived by a promote meanwhile) used to drop partitions first and then wait for the row."""
    base = SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    other = SnapshotStore(url).import_bundle(variant("other", "other"))
    with connect(url) as importer:
        snapshot_id = importer.execute("SELECT create_snapshot_row('n', 'v', NULL, %s)",
                                       (base.snapshot_id,)).fetchone()[0]
        SnapshotStore(url).promote(other.import_id)  # the import's parent is now archived
        [cleaned] = _race_in_background(lambda: SnapshotStore(url).cleanup(1), lambda: _wait_for_a_lock_wait(url))
        # the import goes on to its first table: it must not wait for the cleanup
        importer.execute("SELECT prepare_snapshot_partition('domains', %s)", (snapshot_id,))
        importer.execute("SELECT finish_snapshot_partition('domains', %s)", (snapshot_id,))
        importer.rollback()
    assert cleaned.result(timeout=60) == 1
    assert [s.id for s in SnapshotStore(url).list_snapshots()] == [other.snapshot_id]
    assert_consistent(url)


def _race_in_background(call, until):
    """Start ``call`` in a thread, wait for ``until()``; the future of ``call``."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    until()
    pool.shutdown(wait=False)
    return [future]


def test_an_import_reusing_a_snapshot_being_deleted_keeps_its_own_copy(url):
    """A delete-draft of the snapshot an import is about to reuse waits for the import's tables; it
    used to get them when the import rolled its load back to reuse, and commit before the import
    recorded the reuse: ForeignKeyViolation on the import's log."""
    SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    ready = SnapshotStore(url).import_bundle(variant("first", "same"))
    deleting = []

    def progress(stage, done, total):  # the import holds the domains table: start the delete now
        if stage == "trails" and not deleting:
            deleting.extend(_race_in_background(lambda: SnapshotStore(url).delete_draft(ready.snapshot_id),
                                                lambda: _wait_for_a_lock_wait(url)))

    result = SnapshotStore(url).import_bundle(variant("second", "same"), progress=progress)
    deleting[0].result(timeout=60)
    assert not result.reused and result.snapshot_id != ready.snapshot_id
    assert SnapshotStore(url).get_snapshot(result.snapshot_id).status == "ready"
    assert {log.version_label: log.status for log in SnapshotStore(url).list_imports()} == {
        "base": "promoted", "first": "failed", "second": "ready"}
    assert_consistent(url)


def test_imports_cleanup_and_delete_draft_running_together_raise_only_refusals(url):
    """Three loops at once for a few seconds: imports (same content again and again, so they reuse,
    and promoted every other time), cleanup --keep 1 and delete-draft of the newest ready snapshot.
    Refusals are legitimate outcomes of a race; anything else is a defect."""
    SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    stop = time.monotonic() + 4
    outcomes: dict[str, list] = {"import": [], "cleanup": [], "delete": []}
    unhandled: list[str] = []

    def loop(name, call):
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                call(i)
                outcomes[name].append("ok")
            except (SnapshotError, ImportRefused) as exc:
                outcomes[name].append(type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - what the test counts
                unhandled.append(f"{name}: {type(exc).__name__}: {exc}")

    def newest_ready(i):
        ready = [s for s in SnapshotStore(url).list_snapshots() if s.status == "ready"]
        if ready:
            SnapshotStore(url).delete_draft(ready[0].id)

    threads = [
        threading.Thread(target=loop, args=("import", lambda i: SnapshotStore(url).import_bundle(variant(f"i{i}", f"content {i % 3}"), promote=i % 2 == 0))),
        threading.Thread(target=loop, args=("import", lambda i: SnapshotStore(url).import_bundle(variant(f"j{i}", f"content {i % 2}"), promote=i % 3 == 0))),
        threading.Thread(target=loop, args=("cleanup", lambda i: SnapshotStore(url).cleanup(1))),
        threading.Thread(target=loop, args=("delete", newest_ready)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert unhandled == []
    assert outcomes["import"].count("ok") >= 2 and outcomes["cleanup"] and outcomes["delete"]
    assert _current_count(url) == 1
    assert_consistent(url)


def test_a_merge_whose_base_is_deleted_meanwhile_is_refused_with_a_code(url, monkeypatch):
    """The merge read the current snapshot; before it loaded, another import was promoted and
    cleanup deleted the one it read (it used to end in ForeignKeyViolation)."""
    from musingly_pipeline_tests.bundles.helpers import HOTFIX

    base = SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    merge = importing.merge_bundles

    def merge_while_the_base_goes(*args):
        SnapshotStore(url).import_bundle(variant("newer", "newer"), promote=True)
        assert SnapshotStore(url).cleanup(1) == 1
        return merge(*args)

    monkeypatch.setattr(importing, "merge_bundles", merge_while_the_base_goes)
    with pytest.raises(ImportRefused) as refused:
        SnapshotStore(url).import_file(HOTFIX, merge=True)
    assert refused.value.code == "IMPORT_BASE_DELETED" and str(refused.value).startswith("IMPORT_BASE_DELETED: ")
    assert SnapshotStore(url).get_snapshot(base.snapshot_id) is None
    [failed] = SnapshotStore(url).list_imports(status="failed")
    assert failed.version_label == "v2.1.1-hotfix" and "IMPORT_BASE_DELETED" in failed.error_message
    assert [s.version_label for s in SnapshotStore(url).list_snapshots()] == ["newer"]
    assert_consistent(url)


def test_a_full_import_whose_parent_is_deleted_meanwhile_takes_the_current_one(url, monkeypatch):
    """Parent: the snapshot current when the import started; archived and cleaned up before the
    import created its snapshot, it used to fail the import with ForeignKeyViolation."""
    SnapshotStore(url).import_bundle(bundle("base"), promote=True)
    refuse_shrink = importing.refuse_shrink

    def check_while_the_parent_goes(current, new):
        if not checked:  # once: the import made here checks too
            checked.append(None)
            checked[0] = SnapshotStore(url).import_bundle(variant("newer", "newer"), promote=True).snapshot_id
            assert SnapshotStore(url).cleanup(1) == 1
        return refuse_shrink(current, new)

    checked: list = []
    monkeypatch.setattr(importing, "refuse_shrink", check_while_the_parent_goes)
    result = SnapshotStore(url).import_bundle(variant("full", "full"))
    assert SnapshotStore(url).get_snapshot(result.snapshot_id).parent_id == checked[0]
    assert_consistent(url)


def test_a_reused_import_log_follows_its_snapshot(url):
    """import X; import X; promote --latest; import Y --promote: the first X log said 'ready'
    while its snapshot was archived."""
    first = SnapshotStore(url).import_bundle(bundle("x"))
    again = SnapshotStore(url).import_bundle(bundle("x-again"))
    assert again.reused and again.snapshot_id == first.snapshot_id
    SnapshotStore(url).promote(latest=True)
    SnapshotStore(url).import_bundle(variant("y", "y"), promote=True)
    statuses = {log.version_label: log.status for log in SnapshotStore(url).list_imports()}
    assert statuses == {"x": "promoted", "x-again": "promoted", "y": "promoted"}
    assert_consistent(url)
    # a reuse of the current snapshot is live already: logged promoted, rolled back with it
    live = SnapshotStore(url).import_bundle(variant("y-again", "y"))
    assert live.reused and live.status == "promoted"
    SnapshotStore(url).rollback()
    statuses = {log.version_label: log.status for log in SnapshotStore(url).list_imports()}
    assert statuses["y"] == statuses["y-again"] == "rolled_back"
    assert_consistent(url)
