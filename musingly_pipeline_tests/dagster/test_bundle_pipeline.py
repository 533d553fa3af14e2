"""The bundle pipeline under real Dagster runs against a real PostgreSQL."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

import musingly_core
from musingly_pipeline.defs.bundles import asset_checks, assets
from musingly_pipeline.defs.bundles.jobs import cleanup_snapshots, promote_snapshot, rollback_snapshot
from musingly_pipeline.defs.bundles.partitions import bundle_partitions
from musingly_pipeline.defs.bundles.sensors import bundle_inbox_sensor
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource
from musingly_pipeline.defs.signals.resources import SignalStoreResource
from musingly_pipeline.signals.lifecycle import current_snapshot_at
from musingly_pipeline.storage import snapshots
from musingly_pipeline.validation.report import markdown_table

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def db(make_database) -> str:
    return make_database()


@pytest.fixture
def signal_store(tmp_path) -> SignalStoreResource:
    return SignalStoreResource(location=str(tmp_path / "signals"), incoming=str(tmp_path / "incoming"))


@pytest.fixture
def folder(tmp_path) -> DataFolderResource:
    (tmp_path / "inbox").mkdir()
    return DataFolderResource(root=str(tmp_path))


def drop(folder: DataFolderResource, source: Path, name: str | None = None, data: dict | None = None) -> str:
    name = name or source.name
    if data is None:
        shutil.copy(source, folder.inbox / name)
    else:
        (folder.inbox / name).write_text(json.dumps(data))
    return name


def run_chain(instance, db, folder, key, promote=False, signals=None):
    instance.add_dynamic_partitions(bundle_partitions.name, [key])
    signals = signals or SignalStoreResource(location=str(Path(folder.root) / "signals"))
    return dg.materialize(
        [*assets, *asset_checks], partition_key=key, instance=instance, raise_on_error=False,
        resources={"postgres": PostgresResource(url=db), "data_folder": folder, "signal_store": signals},
        run_config={"ops": {"promoted_snapshot": {"config": {"promote": promote}}}},
    )


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_valid_bundle_becomes_a_draft_then_current(instance, db, folder):
    key = drop(folder, EXAMPLES / "ml-curriculum.json")
    result = run_chain(instance, db, folder, key)
    assert result.success
    assert materialized(result) == {"raw_bundle", "validated_bundle", "draft_snapshot"}
    assert all(check_results(result).values())
    assert "draft_rows_match_bundle" in check_results(result)
    draft = result.output_for_node("draft_snapshot")
    assert snapshots.current_snapshot(db) is None  # drafts wait for a person
    meta = result.asset_materializations_for_node("draft_snapshot")[0].metadata
    assert meta["rows_sparks"].value == 4 and meta["snapshot_id"].value == str(draft.snapshot_id)

    promoted = run_chain(instance, db, folder, key, promote=True)
    assert promoted.success and "promoted_snapshot" in materialized(promoted)
    assert check_results(promoted)["exactly_one_current_snapshot"] is True
    assert str(snapshots.current_snapshot(db).id) == str(draft.snapshot_id)


def _broken(mutate) -> dict:
    data = json.loads((EXAMPLES / "ml-curriculum.json").read_text())
    mutate(data)
    return data


@pytest.mark.parametrize(("mutate", "failing_check"), [
    (lambda b: b["sparks"][0].update(slug="Not A Slug"), "schema"),
    (lambda b: b.update(schema_version="3.0.0"), "schema"),
    (lambda b: b["trails"][0].update(domain_slug="nowhere"), "referential_integrity"),
    (lambda b: b["sparks"].append(dict(b["sparks"][0])), "unique_slugs"),
    (lambda b: b["spark_links"].append({"source_slug": "multi-head-attention",
                                        "target_slug": "linear-algebra-basics"}), "acyclic_links"),
])
def test_invalid_bundle_stops_at_validated_bundle(instance, db, folder, mutate, failing_check):
    key = drop(folder, EXAMPLES / "ml-curriculum.json", "broken.json", _broken(mutate))
    result = run_chain(instance, db, folder, key)
    assert not result.success
    checks = check_results(result)
    assert checks[failing_check] is False
    assert [name for name, passed in checks.items() if not passed] == [failing_check]
    # The asset reports what musingly_core.validate (and so `musingly validate`) finds in the file.
    issues = result.asset_materializations_for_node("validated_bundle")[0].metadata["issues"].value
    assert issues == markdown_table(musingly_core.validate(folder.inbox / key).issues) != "No issues."
    assert "draft_snapshot" not in materialized(result)
    assert snapshots.list_snapshots(db) == []


def test_not_json_fails_the_schema_check(instance, db, folder):
    (folder.inbox / "junk.json").write_text("{ not json")
    result = run_chain(instance, db, folder, "junk.json")
    assert not result.success and check_results(result)["schema"] is False
    assert snapshots.list_snapshots(db) == []


def sensor_tick(instance, folder, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"data_folder": folder})
    result = bundle_inbox_sensor(context)
    return result, result.cursor


def test_sensor_new_changed_unchanged(instance, folder):
    drop(folder, EXAMPLES / "ml-curriculum.json")
    first, cursor = sensor_tick(instance, folder)
    assert first.run_requests == []  # first sight: wait one tick for the size to settle
    second, cursor = sensor_tick(instance, folder, cursor)
    (request,) = second.run_requests
    assert request.partition_key == "ml-curriculum.json"
    assert request.run_key.startswith("ml-curriculum.json:")
    (add,) = second.dynamic_partitions_requests
    assert list(add.partition_keys) == ["ml-curriculum.json"]
    instance.add_dynamic_partitions(bundle_partitions.name, ["ml-curriculum.json"])

    third, cursor = sensor_tick(instance, folder, cursor)
    assert third.run_requests == []  # unchanged never runs again

    data = json.loads((folder.inbox / "ml-curriculum.json").read_text())
    data["version_label"] = "v2.1.0-b"
    (folder.inbox / "ml-curriculum.json").write_text(json.dumps(data))
    _, cursor = sensor_tick(instance, folder, cursor)
    changed, cursor = sensor_tick(instance, folder, cursor)
    (again,) = changed.run_requests
    assert again.run_key != request.run_key
    assert changed.dynamic_partitions_requests == []  # the partition exists already


def test_sensor_ignores_half_written_and_hostile_files(instance, folder, tmp_path):
    (folder.inbox / "upload.json.part").write_text("{")
    (folder.inbox / "upload.tmp").write_text("{")
    (folder.inbox / ".hidden.json").write_text("{}")
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (folder.inbox / "escape.json").symlink_to(outside)
    growing = folder.inbox / "growing.json"
    growing.write_text("{")
    _, cursor = sensor_tick(instance, folder)
    growing.write_text('{"schema_version": ')
    result, _ = sensor_tick(instance, folder, cursor)
    assert result.run_requests == []


def test_promote_rollback_and_cleanup_jobs(instance, db, folder, signal_store):
    resources = {"postgres": PostgresResource(url=db), "signal_store": signal_store}
    first = run_chain(instance, db, folder, drop(folder, EXAMPLES / "ml-curriculum.json"), signals=signal_store)
    second = run_chain(instance, db, folder, drop(folder, EXAMPLES / "platform-foundations.json"),
                       signals=signal_store)
    first_id = first.output_for_node("draft_snapshot").import_id
    second_id = second.output_for_node("draft_snapshot").import_id

    result = promote_snapshot.execute_in_process(
        run_config={"ops": {"promote_op": {"config": {"import_id": str(first_id)}}}},
        resources=resources, instance=instance)
    assert result.success
    assert snapshots.current_snapshot(db).version_label == "v2.1.0"
    promote_snapshot.execute_in_process(
        run_config={"ops": {"promote_op": {"config": {"latest": True}}}}, resources=resources, instance=instance)
    assert snapshots.current_snapshot(db).version_label == "v2.2.0"
    assert str(second_id)

    promoted_at = snapshots.current_snapshot(db).promoted_at
    rolled = rollback_snapshot.execute_in_process(resources=resources, instance=instance)
    assert rolled.success and snapshots.current_snapshot(db).version_label == "v2.1.0"

    # The lifecycle signals answer "which snapshot was current at time T" by replay.
    store = signal_store.open()
    assert current_snapshot_at(store, promoted_at).version_label == "v2.2.0"
    now = current_snapshot_at(store, datetime.now(timezone.utc))
    assert now.version_label == "v2.1.0" and now.event == "rolled_back"

    bad = promote_snapshot.execute_in_process(resources=resources, instance=instance, raise_on_error=False)
    assert not bad.success  # neither import_id nor latest

    cleaned = cleanup_snapshots.execute_in_process(
        run_config={"ops": {"cleanup_op": {"config": {"keep": 1}}}}, resources=resources, instance=instance)
    assert cleaned.success
    assert snapshots.current_snapshot(db).version_label == "v2.1.0"


def test_definitions_load():
    from musingly_pipeline.definitions import defs

    dg.Definitions.validate_loadable(defs)
    for name in ("import_bundle", "promote_snapshot", "rollback_snapshot", "cleanup_snapshots"):
        assert defs.resolve_job_def(name) is not None
    assert defs.resolve_sensor_def("bundle_inbox_sensor") is not None
