"""The bundle pipeline under real Dagster runs against a real PostgreSQL.

Each test runs the `import_bundle` job's assets on a real instance, with several partitions known
to it and, where it matters, a snapshot already current: the state an operator's instance is in.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

import musingly_core
from musingly_pipeline.defs.bundles import asset_checks, assets
from musingly_pipeline.defs.bundles.assets import SHA_TAG, BLOCKING_CHECKS
from musingly_pipeline.defs.bundles.jobs import cleanup_snapshots, promote_snapshot, rollback_snapshot
from musingly_pipeline.defs.bundles.partitions import bundle_partitions
from musingly_pipeline.defs.bundles.sensors import bundle_inbox_sensor
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource
from musingly_pipeline.defs.signals.resources import SignalStoreResource
from musingly_pipeline.signals.lifecycle import current_snapshot_at
from musingly_pipeline.bundles.staging import stage_file
from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.defs.metadata import markdown_table

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
    (tmp_path / "inbox" / "incremental").mkdir(parents=True)
    return DataFolderResource(root=str(tmp_path), settle_seconds=0)


def drop(folder: DataFolderResource, source: Path, name: str | None = None, data: dict | None = None) -> str:
    name = name or source.name
    if data is None:
        shutil.copy(source, folder.inbox / name)
    else:
        (folder.inbox / name).write_text(json.dumps(data))
    return name


def run_chain(instance, db, folder, key, promote=False, signals=None, config=None, tags=None):
    instance.add_dynamic_partitions(bundle_partitions.name, [key])
    signals = signals or SignalStoreResource(location=str(Path(folder.root) / "signals"))
    ops = {"promoted_snapshot": {"config": {"promote": promote}}}
    if config:
        ops["bundle_import"] = {"config": config}
    return dg.materialize(
        [*assets, *asset_checks], partition_key=key, instance=instance, raise_on_error=False, tags=tags,
        resources={"postgres": PostgresResource(url=db), "data_folder": folder, "signal_store": signals},
        run_config={"ops": ops},
    )


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def failure_message(result) -> str:
    """What the run page shows first: the failure's own description (a dg.Failure), not a stack."""
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    user = event.step_failure_data.user_failure_data
    assert user is not None, event.step_failure_data.error.to_string()
    return user.description


def failure_metadata(result) -> dict:
    """The failure's metadata (its ``code`` among them)."""
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return {k: v.value for k, v in event.step_failure_data.user_failure_data.metadata.items()}


def test_valid_bundle_becomes_a_draft_then_current(instance, db, folder):
    key = drop(folder, EXAMPLES / "ml-curriculum.json")
    result = run_chain(instance, db, folder, key)
    assert result.success
    assert materialized(result) == {"raw_bundle", "validated_bundle", "draft_snapshot"}
    assert all(check_results(result).values())
    assert set(check_results(result)) == {*BLOCKING_CHECKS, "content_warnings", "draft_rows_match_bundle"}
    assert {e.partition for e in result.get_asset_check_evaluations()} == {key}  # recorded for this file
    draft = metadata(result, "draft_snapshot")
    assert SnapshotStore(db).current_snapshot() is None  # drafts wait for a person
    assert draft["rows_sparks"] == 4 and metadata(result, "validated_bundle")["count_sparks"] == 4
    raw = metadata(result, "raw_bundle")
    assert raw["sha256"] == SnapshotStore(db).list_snapshots()[0].content_hash or len(raw["sha256"]) == 64
    assert raw["size_bytes"] == (EXAMPLES / "ml-curriculum.json").stat().st_size

    promoted = run_chain(instance, db, folder, key, promote=True)
    assert promoted.success and "promoted_snapshot" in materialized(promoted)
    assert check_results(promoted)["exactly_one_current_snapshot"] is True
    assert str(SnapshotStore(db).current_snapshot().id) == draft["snapshot_id"]


def test_every_partition_imports_while_others_exist_and_a_snapshot_is_current(instance, db, folder):
    """Defects 1 and 2: with a current snapshot the draft's diff was an AttributeError after the
    commit, and an unpartitioned check loaded every partition known to the instance."""
    instance.add_dynamic_partitions(bundle_partitions.name, ["never-materialized.json", "other.json"])
    first = drop(folder, EXAMPLES / "platform-foundations.json")
    assert run_chain(instance, db, folder, first, promote=True).success
    data = json.loads((EXAMPLES / "platform-foundations.json").read_text())
    data["version_label"] = "v2.2.1"
    data["sparks"][0]["summary"] = "A sharper summary"
    data["sparks"][1]["title"] = "A new title"
    changed = drop(folder, EXAMPLES / "platform-foundations.json", "changed.json", data)
    result = run_chain(instance, db, folder, changed)
    assert result.success, failure_message(result)
    assert all(check_results(result).values())
    diff = metadata(result, "draft_snapshot")["diff_against_current"]
    assert diff["from"]["version_label"] == "v2.2.0"
    assert diff["summary"]["sparks"] == {"added": 0, "removed": 0, "changed": 2}
    assert diff["changed_fields"]["sparks"] == {data["sparks"][0]["slug"]: ["summary"],
                                               data["sparks"][1]["slug"]: ["title"]}
    [log] = [log for log in SnapshotStore(db).list_imports() if log.version_label == "v2.2.1"]
    assert log.status == "ready"  # the run is green and the log agrees
    assert SnapshotStore(db).list_imports(status="failed") == []


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
    issues = metadata(result, "validated_bundle")["issues"]
    assert issues == markdown_table(musingly_core.validate(folder.inbox / key).issues) != "No issues."
    assert "draft_snapshot" not in materialized(result)
    assert metadata(result, "validated_bundle")["valid"] is False
    message = failure_message(result)
    assert message.startswith(f"IMPORT_BUNDLE_INVALID: broken.json is invalid: blocking check {failing_check} failed")
    assert SnapshotStore(db).list_snapshots() == [] and SnapshotStore(db).list_imports() == []


def test_not_json_fails_the_schema_check(instance, db, folder):
    (folder.inbox / "junk.json").write_text("{ not json")
    result = run_chain(instance, db, folder, "junk.json")
    assert not result.success and check_results(result)["schema"] is False
    assert "JSON_INVALID" in failure_message(result)
    assert SnapshotStore(db).list_snapshots() == []


def test_a_shrink_is_refused_with_its_own_message_and_allowed_by_config(instance, db, folder):
    assert run_chain(instance, db, folder, drop(folder, EXAMPLES / "platform-foundations.json"), promote=True).success
    small = drop(folder, EXAMPLES / "ml-curriculum.json")
    refused = run_chain(instance, db, folder, small)
    assert not refused.success
    message = failure_message(refused)
    assert message.startswith("IMPORT_SHRINK_REFUSED: this bundle has 4 spark(s) but the current snapshot v2.2.0 has 23")
    assert "inbox/incremental/" in message and "allow_shrink: true" in message
    assert failure_metadata(refused)["code"] == "IMPORT_SHRINK_REFUSED"
    assert [s.version_label for s in SnapshotStore(db).list_snapshots()] == ["v2.2.0"]
    allowed = run_chain(instance, db, folder, small, config={"allow_shrink": True})
    assert allowed.success and metadata(allowed, "draft_snapshot")["rows_sparks"] == 4


def test_incremental_partitions_and_merge_config_merge_onto_current(instance, db, folder):
    assert run_chain(instance, db, folder, drop(folder, EXAMPLES / "ml-curriculum.json"), promote=True).success
    key = drop(folder, EXAMPLES / "incremental" / "hotfix-v2.1.1.json", "incremental/hotfix-v2.1.1.json")
    merged = run_chain(instance, db, folder, key)
    assert merged.success, failure_message(merged)
    draft = metadata(merged, "draft_snapshot")
    assert draft["merged"] is True and draft["rows_sparks"] == 4
    assert draft["diff_against_current"]["summary"]["sparks"]["changed"] == 1
    # the same file dropped as a full bundle would shrink; `merge: true` in the launchpad merges it
    full_key = drop(folder, EXAMPLES / "incremental" / "hotfix-v2.1.1.json", "hotfix.json")
    assert not run_chain(instance, db, folder, full_key).success
    removed = run_chain(instance, db, folder, full_key,
                        config={"merge": True, "remove": ["spark_beacons:self-attention-explained->nlp"]})
    assert removed.success, failure_message(removed)
    assert metadata(removed, "draft_snapshot")["rows_spark_beacons"] == 1


def test_a_run_imports_exactly_the_staged_bytes_its_tag_names(instance, db, folder):
    """Defect 4: a run imported whatever was on disk when it started, not the content its run key named."""
    path = folder.inbox / "a.json"
    shutil.copy(EXAMPLES / "ml-curriculum.json", path)
    staged = stage_file(db, path)
    data = json.loads(path.read_text())
    data["version_label"] = "rewritten-after-the-sensor-decided"
    path.write_text(json.dumps(data))
    result = run_chain(instance, db, folder, "a.json", tags={SHA_TAG: staged.sha256})
    assert result.success
    assert metadata(result, "draft_snapshot")["version_label"] == "v2.1.0"
    assert metadata(result, "raw_bundle")["sha256"] == staged.sha256
    # a damaged local copy of the staged bytes is refused, not imported
    cached = Path(metadata(result, "raw_bundle")["read_from"])
    cached.write_text(path.read_text())
    again = run_chain(instance, db, folder, "a.json", tags={SHA_TAG: staged.sha256})
    assert not again.success
    assert f"not the {staged.sha256} it was staged as" in failure_message(again)
    missing = run_chain(instance, db, folder, "a.json", tags={SHA_TAG: "0" * 64})
    assert not missing.success and "no staged bundle has sha256" in failure_message(missing)


def sensor_tick(instance, folder, db, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"data_folder": folder, "postgres": PostgresResource(url=db)})
    result = bundle_inbox_sensor(context)
    return result, result.cursor


def test_sensor_new_changed_unchanged_incremental(instance, folder, db):
    drop(folder, EXAMPLES / "ml-curriculum.json")
    first, cursor = sensor_tick(instance, folder, db)
    assert first.run_requests == []  # first sight: wait one tick for the size to settle
    second, cursor = sensor_tick(instance, folder, db, cursor)
    (request,) = second.run_requests
    assert request.partition_key == "ml-curriculum.json"
    sha = request.tags[SHA_TAG]
    assert request.run_key.startswith(f"ml-curriculum.json:{sha}:")
    assert (EXAMPLES / "ml-curriculum.json").read_bytes() == _staged_bytes(db, sha, folder)
    (add,) = second.dynamic_partitions_requests
    assert list(add.partition_keys) == ["ml-curriculum.json"]
    instance.add_dynamic_partitions(bundle_partitions.name, ["ml-curriculum.json"])

    third, cursor = sensor_tick(instance, folder, db, cursor)
    assert third.run_requests == []  # unchanged never runs again
    shutil.copy(EXAMPLES / "ml-curriculum.json", folder.inbox / "ml-curriculum.json")  # same bytes again
    _, cursor = sensor_tick(instance, folder, db, cursor)
    redropped, cursor = sensor_tick(instance, folder, db, cursor)
    assert redropped.run_requests == []

    data = json.loads((folder.inbox / "ml-curriculum.json").read_text())
    data["version_label"] = "v2.1.0-b"
    (folder.inbox / "ml-curriculum.json").write_text(json.dumps(data))
    shutil.copy(EXAMPLES / "incremental" / "hotfix-v2.1.1.json", folder.inbox / "incremental" / "fix.json")
    _, cursor = sensor_tick(instance, folder, db, cursor)
    changed, cursor = sensor_tick(instance, folder, db, cursor)
    requests = {r.partition_key: r for r in changed.run_requests}
    assert set(requests) == {"ml-curriculum.json", "incremental/fix.json"}
    assert requests["ml-curriculum.json"].run_key != request.run_key
    assert requests["incremental/fix.json"].run_config == {"ops": {"bundle_import": {"config": {"merge": True}}}}


def _staged_bytes(db, sha, folder) -> bytes:
    from musingly_pipeline.bundles.staging import fetch_staged

    return fetch_staged(db, sha, Path(folder.root) / "cache").read_bytes()


def test_sensor_ignores_half_written_and_hostile_files(instance, folder, db, tmp_path):
    (folder.inbox / "upload.json.part").write_text("{")
    (folder.inbox / "upload.tmp").write_text("{")
    (folder.inbox / ".hidden.json").write_text("{}")
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (folder.inbox / "escape.json").symlink_to(outside)
    (folder.inbox / "loop.json").symlink_to(folder.inbox / "loop.json")
    growing = folder.inbox / "growing.json"
    growing.write_text("{")
    _, cursor = sensor_tick(instance, folder, db)
    growing.write_text('{"schema_version": ')
    result, _ = sensor_tick(instance, folder, db, cursor)
    assert result.run_requests == []


def test_promote_rollback_and_cleanup_jobs(instance, db, folder, signal_store):
    resources = {"postgres": PostgresResource(url=db), "signal_store": signal_store}
    first = run_chain(instance, db, folder, drop(folder, EXAMPLES / "ml-curriculum.json"), signals=signal_store)
    second = run_chain(instance, db, folder, drop(folder, EXAMPLES / "platform-foundations.json"),
                       signals=signal_store)
    first_id = metadata(first, "draft_snapshot")["import_id"]
    assert second.success

    result = promote_snapshot.execute_in_process(
        run_config={"ops": {"promote_op": {"config": {"import_id": first_id}}}},
        resources=resources, instance=instance)
    assert result.success
    assert SnapshotStore(db).current_snapshot().version_label == "v2.1.0"
    promote_snapshot.execute_in_process(
        run_config={"ops": {"promote_op": {"config": {"latest": True}}}}, resources=resources, instance=instance)
    assert SnapshotStore(db).current_snapshot().version_label == "v2.2.0"

    promoted_at = SnapshotStore(db).current_snapshot().promoted_at
    rolled = rollback_snapshot.execute_in_process(resources=resources, instance=instance)
    assert rolled.success and SnapshotStore(db).current_snapshot().version_label == "v2.1.0"

    # The lifecycle signals answer "which snapshot was current at time T" by replay.
    store = signal_store.open()
    assert current_snapshot_at(store, promoted_at).version_label == "v2.2.0"
    now = current_snapshot_at(store, datetime.now(timezone.utc))
    assert now.version_label == "v2.1.0" and now.event == "rolled_back"

    bad = promote_snapshot.execute_in_process(resources=resources, instance=instance, raise_on_error=False)
    assert not bad.success  # neither import_id nor latest: the refusal is the run's message
    assert failure_message(bad).startswith("PROMOTE_TARGET_MISSING: name the import to promote")

    cleaned = cleanup_snapshots.execute_in_process(
        run_config={"ops": {"cleanup_op": {"config": {"keep": 1}}}}, resources=resources, instance=instance)
    assert cleaned.success
    assert SnapshotStore(db).current_snapshot().version_label == "v2.1.0"
    zero = cleanup_snapshots.execute_in_process(
        run_config={"ops": {"cleanup_op": {"config": {"keep": 0}}}}, resources=resources, instance=instance,
        raise_on_error=False)
    assert not zero.success and "at least 1" in failure_message(zero)


def test_definitions_load_and_describe_themselves():
    from musingly_pipeline.definitions import defs

    dg.Definitions.validate_loadable(defs)
    for name in ("import_bundle", "promote_snapshot", "rollback_snapshot", "cleanup_snapshots"):
        assert defs.resolve_job_def(name) is not None
    sensor = defs.resolve_sensor_def("bundle_inbox_sensor")
    assert "inbox" in sensor.description and "incremental" in sensor.description
    graph = defs.resolve_asset_graph()
    for key in graph.asset_check_keys:  # what each check guarantees, not "no references errors"
        description = graph.get_check_spec(key).description or ""
        assert len(description) > 30 and not re.fullmatch(r"no .* errors", description), (key, description)
