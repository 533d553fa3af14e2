"""The same bytes imported again (issue 19, part 2): recognised by the file's sha256 and reused
without being parsed, against a real PostgreSQL. A parse is counted by wrapping the one parse
function every file goes through (``musingly_core.bundle_file.parse_bundle``)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from musingly_pipeline.bundles import ImportRefused, SnapshotStore, importing, same_bytes
from musingly_pipeline.storage.database import connect
from musingly_pipeline_tests.bundles.helpers import EXAMPLE, HOTFIX, assert_consistent, example_data


@pytest.fixture
def url(make_database) -> str:
    return make_database()


@pytest.fixture
def parses(monkeypatch) -> list[int]:
    """The size of every file parsed from now on."""
    import musingly_core.bundle_file as bundle_file

    calls: list[int] = []
    real = bundle_file.parse_bundle
    monkeypatch.setattr(bundle_file, "parse_bundle", lambda data, report: calls.append(len(data)) or real(data, report))
    return calls


def _write(path: Path, data: dict, **dump) -> Path:
    path.write_text(json.dumps(data, **dump), encoding="utf-8")
    return path


def _with_a_warning(label: str = "v-warned") -> dict:
    """The example with its first spark in no concept: a BUNDLE_ORPHAN_SPARK warning at sparks[0]."""
    data = example_data()
    data["version_label"] = label
    data["concept_sparks"] = [j for j in data["concept_sparks"] if j["spark_slug"] != data["sparks"][0]["slug"]]
    return data


def _log(url: str, import_id) -> dict:
    with connect(url) as conn:
        row = conn.execute("SELECT source_sha256, rules_version, reused, status, version_label, source_system, "
                           "source_version FROM import_logs WHERE id = %s", (import_id,)).fetchone()
    return dict(zip(("sha256", "rules", "reused", "status", "label", "system", "version"), row))


def _snapshot_count(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]


def test_the_same_file_again_is_reused_without_parsing_with_the_same_warnings_and_counts(url, tmp_path, parses):
    path = _write(tmp_path / "warned.json", _with_a_warning())
    first = SnapshotStore(url).import_file(path)
    assert not first.reused and len(parses) == 1
    assert [(w.code, w.path) for w in first.warnings] == [("BUNDLE_ORPHAN_SPARK", "sparks[0]")]
    logged = _log(url, first.import_id)
    assert logged["sha256"] == first.source.sha256 and logged["rules"] == same_bytes.rules_version()

    again = SnapshotStore(url).import_file(path)
    assert len(parses) == 1  # not parsed
    assert again.reused and again.snapshot_id == first.snapshot_id and again.status == "ready"
    assert again.warnings == first.warnings and again.entity_counts == first.entity_counts
    assert again.content_hash == first.content_hash and again.version_label == first.version_label
    assert (again.source.sha256, again.source.size) == (first.source.sha256, first.source.size)
    assert again.source.counts == first.source.counts and not again.merged
    assert again.parent_id is None and again.import_id != first.import_id
    first_log, again_log = _log(url, first.import_id), _log(url, again.import_id)
    assert again_log == {**first_log, "reused": True}  # the label and metadata of the first log
    assert _snapshot_count(url) == 1

    # promoted through the reuse, like any import; once current, a reuse is logged promoted
    promoted = SnapshotStore(url).import_file(path, promote=True)
    assert len(parses) == 1 and promoted.reused and promoted.status == "promoted"
    assert SnapshotStore(url).current_snapshot().id == first.snapshot_id
    current = SnapshotStore(url).import_file(path)
    assert len(parses) == 1 and current.reused and current.status == "promoted"
    assert {log.status for log in SnapshotStore(url).list_imports()} == {"promoted"}
    assert_consistent(url)


def test_the_same_file_again_records_its_lifecycle_signals(url, tmp_path, parses):
    from datetime import datetime, timezone

    from musingly_pipeline.signals import FileSystemStore
    from musingly_pipeline.signals.lifecycle import current_snapshot_at
    from musingly_pipeline.signals.store import EPOCH

    signals = FileSystemStore(tmp_path / "signals")
    path = _write(tmp_path / "b.json", example_data())
    first = SnapshotStore(url, signals=signals).import_file(path)
    again = SnapshotStore(url, signals=signals).import_file(path, promote=True)
    assert again.reused and len(parses) == 1 and again.lifecycle_error is None
    events = [s.payload["event"] for s in signals.iter_signals(EPOCH, datetime.now(timezone.utc))]
    assert events == ["import_started", "snapshot_ready", "import_started", "snapshot_ready", "promoted"]
    assert current_snapshot_at(signals, datetime.now(timezone.utc)).snapshot_id == str(first.snapshot_id)


def test_other_bytes_with_the_same_content_are_parsed_and_reused_by_content(url, tmp_path, parses):
    data = example_data()
    compact = _write(tmp_path / "compact.json", data)
    indented = _write(tmp_path / "indented.json", data, indent=2)
    first = SnapshotStore(url).import_file(compact)
    second = SnapshotStore(url).import_file(indented)
    assert len(parses) == 2 and second.reused and second.snapshot_id == first.snapshot_id
    assert second.source.sha256 != first.source.sha256
    # the same warnings (none): the second file's bytes are recorded too, and found next time
    assert _log(url, second.import_id)["sha256"] == second.source.sha256
    third = SnapshotStore(url).import_file(indented)
    assert len(parses) == 2 and third.reused and third.snapshot_id == first.snapshot_id


def test_a_file_whose_warnings_differ_from_the_snapshots_is_parsed_each_time(url, tmp_path, parses):
    """The warnings name places in the file: the same content in another order warns elsewhere, so
    those bytes are not recorded against the snapshot (its stored warnings are the first file's)."""
    data = _with_a_warning()
    first_file = _write(tmp_path / "first.json", data)
    data["sparks"].append(data["sparks"].pop(0))  # the orphan spark last
    reordered = _write(tmp_path / "reordered.json", data)
    first = SnapshotStore(url).import_file(first_file)
    second = SnapshotStore(url).import_file(reordered)
    assert second.reused and second.snapshot_id == first.snapshot_id
    assert [w.path for w in second.warnings] == [f"sparks[{len(data['sparks']) - 1}]"]
    assert _log(url, second.import_id)["sha256"] is None
    third = SnapshotStore(url).import_file(reordered)
    assert len(parses) == 3 and third.warnings == second.warnings


def test_another_rules_version_parses_again(url, tmp_path, parses, monkeypatch):
    path = _write(tmp_path / "b.json", example_data())
    first = SnapshotStore(url).import_file(path)
    monkeypatch.setattr(same_bytes, "rules_version", lambda: "a later version of the rules")
    again = SnapshotStore(url).import_file(path)
    assert len(parses) == 2  # parsed, then reused by its content as before
    assert again.reused and again.snapshot_id == first.snapshot_id
    assert _log(url, again.import_id)["rules"] == "a later version of the rules"
    third = SnapshotStore(url).import_file(path)
    assert len(parses) == 2 and third.reused


def test_the_rules_version_names_musingly_core_and_changes_with_its_modules(monkeypatch, tmp_path):
    import musingly_core

    version = same_bytes.rules_version()
    assert f"musingly-core {musingly_core.__version__} " in version
    assert f"pipeline {same_bytes.RULES_REVISION}" in version
    copy = tmp_path / "musingly_core"
    copy.mkdir()
    source = Path(musingly_core.__file__).parent
    for module in source.glob("*.py"):
        (copy / module.name).write_bytes(module.read_bytes())
    monkeypatch.setattr(musingly_core, "__file__", str(copy / "__init__.py"))
    same_bytes.rules_version.cache_clear()
    try:
        assert same_bytes.rules_version() == version  # the same text, the same version
        (copy / "integrity.py").write_text((copy / "integrity.py").read_text() + "\n# a rule changed\n")
        same_bytes.rules_version.cache_clear()
        assert same_bytes.rules_version() != version
    finally:
        monkeypatch.undo()
        same_bytes.rules_version.cache_clear()
    assert same_bytes.rules_version() == version


def test_a_merge_never_records_nor_uses_the_files_sha256(url, tmp_path, parses):
    SnapshotStore(url).import_file(EXAMPLE, promote=True)
    merged = SnapshotStore(url).import_file(HOTFIX, merge=True, promote=True)
    assert _log(url, merged.import_id)["sha256"] is None
    with connect(url) as conn:
        stored = conn.execute("SELECT warnings FROM snapshots WHERE id = %s", (merged.snapshot_id,)).fetchone()[0]
    assert stored == [w.to_dict() for w in merged.warnings]  # a merged snapshot keeps its warnings too
    before = len(parses)
    again = SnapshotStore(url).import_file(HOTFIX, merge=True)
    assert len(parses) == before + 1 and again.reused and again.merged  # parsed: merged, changing nothing
    assert _log(url, again.import_id)["sha256"] is None
    # the hotfix file imported in full is a shrink: refused after parsing, as before
    with pytest.raises(ImportRefused) as refused:
        SnapshotStore(url).import_file(HOTFIX)
    assert refused.value.code == "IMPORT_SHRINK_REFUSED" and len(parses) == before + 2


def test_a_snapshot_deleted_by_delete_draft_is_not_reused(url, tmp_path, parses):
    path = _write(tmp_path / "b.json", example_data())
    first = SnapshotStore(url).import_file(path)
    SnapshotStore(url).delete_draft(first.snapshot_id)
    again = SnapshotStore(url).import_file(path)
    assert len(parses) == 2 and not again.reused and again.snapshot_id != first.snapshot_id
    assert SnapshotStore(url).get_snapshot(again.snapshot_id).status == "ready"
    assert {log.id: log.status for log in SnapshotStore(url).list_imports()} == {
        first.import_id: "failed", again.import_id: "ready"}
    assert_consistent(url)


def test_a_snapshot_deleted_between_finding_and_locking_it_gives_a_fresh_import(url, tmp_path, parses, monkeypatch):
    path = _write(tmp_path / "b.json", example_data())
    first = SnapshotStore(url).import_file(path)
    real = same_bytes.find

    def find_then_delete(conn, sha256):
        found = real(conn, sha256)
        SnapshotStore(url).delete_draft(found.snapshot_id)  # another session, before the lock
        return found

    monkeypatch.setattr(same_bytes, "find", find_then_delete)
    again = SnapshotStore(url).import_file(path)
    assert len(parses) == 2 and not again.reused and again.snapshot_id != first.snapshot_id
    # the reuse's log row was discarded: one log per import
    assert {log.id: log.status for log in SnapshotStore(url).list_imports()} == {
        first.import_id: "failed", again.import_id: "ready"}
    assert _log(url, again.import_id)["sha256"] == again.source.sha256
    assert_consistent(url)


def test_a_delete_draft_waits_for_the_reuse_to_commit(url, tmp_path, parses, monkeypatch):
    """The reuse holds the snapshot FOR KEY SHARE until it commits: a delete-draft started meanwhile
    waits, then deletes it and marks the reuse's log failed with the others."""
    from musingly_pipeline_tests.bundles.test_faults import _race_in_background, _wait_for_a_lock_wait

    path = _write(tmp_path / "b.json", example_data())
    first = SnapshotStore(url).import_file(path)
    deleting: list = []
    real = same_bytes.rules_version

    def rules_version():  # called by the reuse after it locked the snapshot, before it commits
        if threading.current_thread() is threading.main_thread() and not deleting and _locked(url):
            deleting.extend(_race_in_background(lambda: SnapshotStore(url).delete_draft(first.snapshot_id),
                                                lambda: _wait_for_a_lock_wait(url)))
        return real()

    monkeypatch.setattr(same_bytes, "rules_version", rules_version)
    again = SnapshotStore(url).import_file(path)
    assert deleting, "the reuse never held the snapshot"
    deleting[0].result(timeout=60)
    assert again.reused and again.snapshot_id == first.snapshot_id and len(parses) == 1
    assert SnapshotStore(url).get_snapshot(first.snapshot_id) is None
    assert {log.status for log in SnapshotStore(url).list_imports()} == {"failed"}
    assert_consistent(url)


def _locked(url: str) -> bool:
    """Whether another session holds a row lock on a snapshot (the reuse's FOR KEY SHARE)."""
    with connect(url) as conn:
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.relation = 'snapshots'::regclass AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid() "
            "AND a.state = 'idle in transaction')").fetchone()[0]


def test_the_shrink_refusal_still_applies_to_the_same_bytes(url, tmp_path, parses):
    data = example_data()
    small = dict(data, version_label="small", sparks=data["sparks"][:1],
                 concept_sparks=[j for j in data["concept_sparks"] if j["spark_slug"] == data["sparks"][0]["slug"]],
                 spark_links=[], spark_beacons=[b for b in data["spark_beacons"]
                                                 if b["spark_slug"] == data["sparks"][0]["slug"]])
    path = _write(tmp_path / "small.json", small)
    first = SnapshotStore(url).import_file(path)  # nothing current yet: not a shrink
    SnapshotStore(url).import_file(EXAMPLE, promote=True)
    parsed = len(parses)
    with pytest.raises(ImportRefused) as refused:
        SnapshotStore(url).import_file(path)
    assert refused.value.code == "IMPORT_SHRINK_REFUSED" and len(parses) == parsed  # refused unparsed
    assert refused.value.source.sha256 == first.source.sha256 and refused.value.source.counts["sparks"] == 1
    allowed = SnapshotStore(url).import_file(path, allow_shrink=True)
    assert allowed.reused and allowed.snapshot_id == first.snapshot_id and len(parses) == parsed
    assert_consistent(url)


def test_a_staged_bundle_must_still_have_its_sha256(url, tmp_path, parses):
    path = _write(tmp_path / "b.json", example_data())
    first = SnapshotStore(url).import_file(path)
    staged = SnapshotStore(url).import_file(path, expect_sha256=first.source.sha256)
    assert staged.reused and len(parses) == 1
    with pytest.raises(ImportRefused) as refused:
        SnapshotStore(url).import_file(path, expect_sha256="0" * 64)
    assert refused.value.code == "IMPORT_SHA256_MISMATCH" and refused.value.source.sha256 == first.source.sha256
    assert len(SnapshotStore(url).list_imports()) == 2


def test_force_loads_a_copy_and_records_the_sha256(url, tmp_path, parses):
    path = _write(tmp_path / "b.json", example_data())
    first = SnapshotStore(url).import_file(path)
    forced = SnapshotStore(url).import_file(path, force=True)
    assert len(parses) == 2 and not forced.reused and forced.snapshot_id != first.snapshot_id
    assert _log(url, forced.import_id)["sha256"] == first.source.sha256


def test_a_snapshot_made_before_warnings_were_stored_gets_them_from_its_next_import(url, tmp_path, parses):
    path = _write(tmp_path / "warned.json", _with_a_warning())
    first = SnapshotStore(url).import_file(path)
    with connect(url) as conn:  # as a snapshot and log made before 0002_same_bytes.sql
        conn.execute("UPDATE snapshots SET warnings = NULL")
        conn.execute("UPDATE import_logs SET source_sha256 = NULL, rules_version = NULL")
        conn.commit()
    again = SnapshotStore(url).import_file(path)
    assert len(parses) == 2 and again.reused and again.warnings == first.warnings
    third = SnapshotStore(url).import_file(path)
    assert len(parses) == 2 and third.reused and third.warnings == first.warnings


def test_musingly_import_twice_prints_reused(make_database, monkeypatch, capsys, tmp_path, parses):
    from musingly_pipeline.cli import main

    monkeypatch.setenv("MUSINGLY_DATABASE_URL", make_database())
    path = _write(tmp_path / "b.json", example_data())
    assert main(["import", str(path)]) == 0
    capsys.readouterr()
    assert main(["import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "same content as this existing snapshot: no copy made" in out and len(parses) == 1
    assert main(["import", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["reused"] is True and shown["source_sha256"] and len(parses) == 1


def test_the_import_module_has_no_dagster():
    assert "dagster" not in Path(importing.__file__).read_text() + Path(same_bytes.__file__).read_text()
