"""The snapshot lifecycle through the Python API, against a real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from musingly_core.models import ImportBundle

from musingly_pipeline.bundles import BundleInvalid, ImportRefused, SnapshotError, SnapshotStore
from musingly_pipeline.storage.database import connect
from musingly_pipeline_tests.bundles.helpers import (
    EXAMPLE,
    HOTFIX,
    assert_consistent,
    bundle,
    example_data,
    parse,
    variant,
)


@pytest.fixture
def url(make_database) -> str:
    return make_database()


def test_import_makes_a_ready_snapshot_with_every_row(url):
    result = SnapshotStore(url).import_file(EXAMPLE)
    assert result.status == "ready" and not result.reused
    expected = parse(example_data()).counts()
    assert result.entity_counts == expected
    assert SnapshotStore(url).snapshot_row_counts(result.snapshot_id) == expected
    assert SnapshotStore(url).current_snapshot() is None  # not served until promoted
    [log] = SnapshotStore(url).list_imports()
    assert (log.id, log.status, log.snapshot_id, log.source_file) == (
        result.import_id, "ready", result.snapshot_id, str(EXAMPLE))


def test_promote_then_rollback_moves_the_current_pointer(url):
    first = SnapshotStore(url).import_bundle(bundle("v1"), promote=True)
    second = SnapshotStore(url).import_bundle(variant("v2", "changed"))
    assert SnapshotStore(url).current_snapshot().id == first.snapshot_id
    promoted = SnapshotStore(url).promote(second.import_id)
    assert promoted.id == second.snapshot_id and promoted.previous_id == first.snapshot_id
    statuses = {s.id: s.status for s in SnapshotStore(url).list_snapshots()}
    assert statuses == {first.snapshot_id: "archived", second.snapshot_id: "current"}
    back = SnapshotStore(url).rollback()
    assert back.id == first.snapshot_id and back.status == "current"
    logs = {log.id: log.status for log in SnapshotStore(url).list_imports()}
    assert logs == {first.import_id: "promoted", second.import_id: "rolled_back"}
    assert_consistent(url)


def test_promote_latest_and_refusals(url):
    with pytest.raises(SnapshotError, match="no ready import"):
        SnapshotStore(url).promote(latest=True)
    result = SnapshotStore(url).import_bundle(bundle("v1"))
    assert SnapshotStore(url).promote(latest=True).id == result.snapshot_id
    with pytest.raises(SnapshotError, match="no previous snapshot"):
        SnapshotStore(url).rollback()
    with pytest.raises(SnapshotError, match="not a UUID"):
        SnapshotStore(url).promote("nonsense")


def test_same_content_reuses_the_snapshot_unless_forced(url):
    first = SnapshotStore(url).import_bundle(bundle("v1"), promote=True)
    again = SnapshotStore(url).import_bundle(bundle("v1-again"))
    assert again.reused and again.snapshot_id == first.snapshot_id
    assert len(SnapshotStore(url).list_snapshots()) == 1
    forced = SnapshotStore(url).import_bundle(bundle("v1-forced"), force=True)
    assert not forced.reused and forced.snapshot_id != first.snapshot_id
    assert len(SnapshotStore(url).list_snapshots()) == 2
    assert_consistent(url)


def _partitions(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'sparks'::regclass").fetchone()[0]


def test_content_identical_to_the_current_snapshot_is_reused_without_loading(url, monkeypatch):
    from musingly_pipeline.bundles import importing

    loads = []
    real = importing.load_and_hash
    monkeypatch.setattr(importing, "load_and_hash", lambda *a, **k: loads.append(k) or real(*a, **k))
    first = SnapshotStore(url).import_file(EXAMPLE, promote=True)
    assert len(loads) == 1 and _partitions(url) == 1
    stages = []
    again = SnapshotStore(url).import_bundle(bundle("v1-again"), progress=lambda stage, *_: stages.append(stage))
    assert again.reused and again.snapshot_id == first.snapshot_id and again.status == "promoted"
    assert again.content_hash == first.content_hash and again.warnings == first.warnings
    assert len(loads) == 1 and stages == ["hashing"]  # hashed, then nothing loaded
    assert _partitions(url) == 1 and len(SnapshotStore(url).list_snapshots()) == 1
    # the same row counts, other content: loaded as before, with the hash computed once
    other = SnapshotStore(url).import_bundle(variant("v2", "another summary"))
    assert not other.reused and len(loads) == 2 and loads[1]["digest"] == other.content_hash
    assert _partitions(url) == 2
    # an invalid bundle with the current snapshot's counts is still refused, and leaves no log
    broken = example_data()
    broken["version_label"] = "broken"
    broken["spark_links"][0]["target_slug"] = "no-such-spark"
    with pytest.raises(BundleInvalid):
        SnapshotStore(url).import_bundle(parse(broken))
    assert "broken" not in [log.version_label for log in SnapshotStore(url).list_imports()]
    assert_consistent(url)


def test_content_reused_before_loading_is_still_checked_and_warned_about(url):
    data = example_data()
    data["concept_sparks"] = [j for j in data["concept_sparks"] if j["spark_slug"] != data["sparks"][0]["slug"]]
    first = SnapshotStore(url).import_bundle(parse(data), promote=True)
    assert [w.code for w in first.warnings] == ["BUNDLE_ORPHAN_SPARK"]
    again = SnapshotStore(url).import_bundle(parse(data))
    assert again.reused and again.snapshot_id == first.snapshot_id
    assert again.warnings == first.warnings  # the rules ran, though nothing was loaded


def test_hotfix_without_merge_is_refused_and_merge_applies_it(url):
    base = SnapshotStore(url).import_file(EXAMPLE, promote=True)
    with pytest.raises(ImportRefused, match="--merge"):
        SnapshotStore(url).import_file(HOTFIX)
    merged = SnapshotStore(url).import_file(HOTFIX, merge=True, promote=True)
    assert merged.merged and merged.entity_counts == base.entity_counts
    content = SnapshotStore(url).export_bundle(merged.snapshot_id)
    spark = next(s for s in content.sparks if s.slug == "self-attention-explained")
    hotfix = json.loads(HOTFIX.read_text())["sparks"][0]
    assert spark.content_md == hotfix["content_md"] and spark.estimated_minutes == 8
    # relationships of the replaced spark stay
    assert any(j.spark_slug == "self-attention-explained" for j in content.concept_sparks)
    diff = SnapshotStore(url).diff(base.snapshot_id, merged.snapshot_id)
    assert diff.kinds["sparks"].changed == ("self-attention-explained",)
    assert sum(sum(c.values()) for c in diff.summary().values()) == 1


def test_a_merge_that_changes_nothing_reuses_the_current_snapshot_without_loading(url, monkeypatch):
    from musingly_pipeline.bundles import importing

    SnapshotStore(url).import_file(EXAMPLE, promote=True)
    merged = SnapshotStore(url).import_file(HOTFIX, merge=True, promote=True)
    loads = []
    real = importing.load_and_hash
    monkeypatch.setattr(importing, "load_and_hash", lambda *a, **k: loads.append(a) or real(*a, **k))
    again = SnapshotStore(url).import_file(HOTFIX, merge=True)  # delivered twice
    assert again.reused and again.merged and again.snapshot_id == merged.snapshot_id
    assert again.status == "promoted" and again.content_hash == merged.content_hash and not loads
    assert len(SnapshotStore(url).list_snapshots()) == 2
    # a patch row that differs is a change: loaded
    changed = json.loads(HOTFIX.read_text())
    changed["sparks"][0]["estimated_minutes"] = 9
    result = SnapshotStore(url).import_bundle(parse(changed), merge=True)
    assert not result.reused and len(loads) == 1 and result.content_hash != merged.content_hash
    assert_consistent(url)


def test_allow_shrink_replaces_the_content(url):
    SnapshotStore(url).import_file(EXAMPLE, promote=True)
    small = SnapshotStore(url).import_file(HOTFIX, allow_shrink=True)
    assert small.entity_counts["sparks"] == 1


def test_merge_removes_rows_by_slug_with_their_links(url):
    SnapshotStore(url).import_file(EXAMPLE, promote=True)
    patch = bundle("v2.2", domains=[], trails=[], concepts=[], sparks=[], beacons=[], concept_sparks=[],
                   spark_beacons=[], spark_links=[], concept_links=[])
    result = SnapshotStore(url).import_bundle(patch, merge=True, remove=["sparks:multi-head-attention"])
    content = SnapshotStore(url).export_bundle(result.snapshot_id)
    slugs = {s.slug for s in content.sparks}
    assert "multi-head-attention" not in slugs
    assert all("multi-head-attention" not in (l.source_slug, l.target_slug) for l in content.spark_links)
    assert all(j.spark_slug != "multi-head-attention" for j in content.concept_sparks)
    with pytest.raises(ImportRefused, match="no such row"):
        SnapshotStore(url).import_bundle(patch, merge=True, remove=["sparks:does-not-exist"])
    # removing a domain a trail still uses makes the merged content invalid, reported as such
    with pytest.raises(BundleInvalid) as caught:
        SnapshotStore(url).import_bundle(patch, merge=True, remove=["domains:machine-learning"])
    assert caught.value.report.errors[0].code == "BUNDLE_UNKNOWN_REFERENCE"


def test_invalid_bundle_raises_with_the_report_and_touches_nothing(url, tmp_path):
    data = example_data()
    data["trails"][0]["domain_slug"] = "no-such-domain"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BundleInvalid) as caught:
        SnapshotStore(url).import_file(path)
    assert caught.value.report.errors[0].code == "BUNDLE_UNKNOWN_REFERENCE"
    assert SnapshotStore(url).list_imports() == [] and SnapshotStore(url).list_snapshots() == []


@pytest.mark.parametrize("breakage", ["duplicate spark slug", "unknown spark in a link", "cycle"])
def test_rules_checked_during_the_load_leave_nothing(url, breakage):
    # The integrity rules run while the rows load. Two of these breakages also fail the load itself
    # (a unique violation; a slug with no id); the rule's report is the error, and nothing is kept.
    good = SnapshotStore(url).import_bundle(parse(example_data()))
    data = example_data()
    sparks = data["sparks"]
    if breakage == "duplicate spark slug":
        sparks[-1]["slug"] = sparks[0]["slug"]
        code = "BUNDLE_DUPLICATE_SLUG"
    elif breakage == "unknown spark in a link":
        data["spark_links"][0]["target_slug"] = "no-such-spark"
        code = "BUNDLE_UNKNOWN_REFERENCE"
    else:
        first = data["spark_links"][0]
        data["spark_links"].append({**first, "source_slug": first["target_slug"], "target_slug": first["source_slug"]})
        code = "BUNDLE_CYCLE"
    with pytest.raises(BundleInvalid) as caught:
        SnapshotStore(url).import_bundle(parse(data), force=True)
    assert code in {i.code for i in caught.value.report.errors}
    assert [log.id for log in SnapshotStore(url).list_imports()] == [good.import_id]
    assert [s.id for s in SnapshotStore(url).list_snapshots()] == [good.snapshot_id]


def test_a_large_invalid_file_stops_its_load_and_leaves_nothing(url, tmp_path):
    # 20k sparks: the rules finish while the COPY still runs; the load is cancelled, not awaited.
    from musingly_pipeline.bundles.synthetic import write_bundle

    path = write_bundle(tmp_path / "big.json", 20_000, content_bytes=100)
    data = json.loads(path.read_text())
    data["spark_links"][-1]["target_slug"] = "no-such-spark"
    path.write_text(json.dumps(data))
    with pytest.raises(BundleInvalid) as caught:
        SnapshotStore(url).import_file(path)
    assert [i.path for i in caught.value.report.errors] == [f"spark_links[{len(data['spark_links']) - 1}].target_slug"]
    assert SnapshotStore(url).list_imports() == [] and SnapshotStore(url).list_snapshots() == []
    with connect(url) as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM sparks) + (SELECT count(*) FROM spark_links)").fetchone()[0] == 0


def test_failed_load_rolls_back_and_logs_the_error(url):
    # PostgreSQL text cannot hold a NUL character: the load fails mid-way. (The contracts refuse
    # one; model_copy puts it in without validation, as a caller's own model might.)
    good = parse(example_data())
    bad_spark = good.sparks[-1].model_copy(update={"content_md": "bad \x00 byte"})
    with pytest.raises(Exception):
        SnapshotStore(url).import_bundle(good.model_copy(update={"sparks": [*good.sparks[:-1], bad_spark]}))
    [log] = SnapshotStore(url).list_imports()
    assert log.status == "failed" and log.error_message and log.snapshot_id is None
    assert SnapshotStore(url).list_snapshots() == []
    assert SnapshotStore(url).snapshot_row_counts("00000000-0000-0000-0000-000000000000") == {
        k: 0 for k in parse(example_data()).counts()}
    assert SnapshotStore(url).import_stats().failed == 1


def test_delete_draft_and_cleanup(url):
    a = SnapshotStore(url).import_bundle(bundle("a"), promote=True)
    b = SnapshotStore(url).import_bundle(variant("b", "b"), promote=True)
    c = SnapshotStore(url).import_bundle(variant("c", "c"), promote=True)
    draft = SnapshotStore(url).import_bundle(variant("d", "d"))
    with pytest.raises(SnapshotError, match="only a draft or ready"):
        SnapshotStore(url).delete_draft(c.snapshot_id)
    SnapshotStore(url).delete_draft(draft.snapshot_id)
    assert SnapshotStore(url).snapshot_row_counts(draft.snapshot_id)["sparks"] == 0
    assert SnapshotStore(url).cleanup(2) == 1
    remaining = {s.id for s in SnapshotStore(url).list_snapshots()}
    assert remaining == {b.snapshot_id, c.snapshot_id} and a.snapshot_id not in remaining
    assert_consistent(url)


HOSTILE = [
    "It's a \"quoted\" 'string'",
    "back\\slash \\N \\. \\\\ and a tab\tand\r\nCRLF",
    "'); DROP TABLE sparks; -- $$ $x$ %s %(name)s {0}",
    "Unicode: Ünïcödé — 日本語 — עברית — 🧠🚀 — e\u0301 — \u200b zero width — \U0010FFFF",
    "COPY sparks FROM STDIN;\n\\.\nSELECT 1;",
]


def test_hostile_text_round_trips_byte_exact(url):
    data = example_data()
    for spark, text in zip(data["sparks"], HOSTILE):
        spark["content_md"] = text
        spark["summary"] = text[::-1]
    data["sparks"][-1]["title"] = HOSTILE[4][:60]
    data["domains"][0]["description"] = HOSTILE[2]
    data["spark_links"][0]["description"] = HOSTILE[1]
    original = parse(data)
    result = SnapshotStore(url).import_bundle(original)
    back = SnapshotStore(url).export_bundle(result.snapshot_id)
    for kind in ("sparks", "domains", "spark_links"):
        key = (lambda r: r.slug) if kind != "spark_links" else (lambda r: (r.source_slug, r.target_slug))
        got = sorted((r.model_dump() for r in getattr(back, kind)), key=lambda d: str(d))
        want = sorted((r.model_dump() for r in getattr(original, kind)), key=lambda d: str(d))
        assert got == want, kind
        assert len(got) == len({key(r) for r in getattr(back, kind)})


def test_diff_defaults_to_current_against_newest_ready(url):
    SnapshotStore(url).import_file(EXAMPLE, promote=True)
    data = example_data()
    data["version_label"] = "v3"
    removed = data["sparks"].pop()  # the last spark and everything that mentions it
    data["concept_sparks"] = [j for j in data["concept_sparks"] if j["spark_slug"] != removed["slug"]]
    data["spark_beacons"] = [j for j in data["spark_beacons"] if j["spark_slug"] != removed["slug"]]
    data["spark_links"] = [l for l in data["spark_links"] if removed["slug"] not in (l["source_slug"], l["target_slug"])]
    data["beacons"].append({"name": "New", "slug": "new-beacon"})
    data["domains"][1]["color"] = "#000000"
    SnapshotStore(url).import_bundle(parse(data))
    diff = SnapshotStore(url).diff()
    assert diff.from_snapshot.status == "current" and diff.to_snapshot.version_label == "v3"
    assert diff.kinds["sparks"].removed == (removed["slug"],)
    assert diff.kinds["beacons"].added == ("new-beacon",)
    assert diff.kinds["domains"].changed == ("software-engineering",)
    assert diff.to_dict()["summary"]["sparks"] == {"added": 0, "removed": 1, "changed": 0}


def test_diff_names_changed_fields_and_without_a_ready_snapshot_shows_the_last_promotion(url):
    first = SnapshotStore(url).import_file(EXAMPLE, promote=True)
    diff = SnapshotStore(url).diff()  # nothing ready: what the first promotion did, from nothing
    assert diff.from_snapshot is None and diff.to_snapshot.id == first.snapshot_id
    assert diff.summary()["sparks"] == {"added": 4, "removed": 0, "changed": 0}
    data = example_data()
    data["version_label"] = "v3"
    data["sparks"][0]["summary"] = "changed"
    data["sparks"][0]["estimated_minutes"] = 42
    data["domains"][0]["name"] = "Renamed"
    second = SnapshotStore(url).import_bundle(parse(data), promote=True)
    diff = SnapshotStore(url).diff()
    assert (diff.from_snapshot.id, diff.to_snapshot.id) == (first.snapshot_id, second.snapshot_id)
    spark = data["sparks"][0]["slug"]
    assert diff.kinds["sparks"].changed == (spark,)
    assert diff.kinds["sparks"].fields == {spark: ("summary", "estimated_minutes")}
    assert diff.kinds["domains"].fields == {data["domains"][0]["slug"]: ("name",)}
    assert diff.to_dict()["changes"]["sparks"]["changed_fields"] == {spark: ["summary", "estimated_minutes"]}
    SnapshotStore(url).cleanup(1)  # the snapshot the current one replaced is gone: say so, do not diff from nothing
    with pytest.raises(SnapshotError, match="records no snapshot it replaced"):
        SnapshotStore(url).diff()


def test_import_promote_and_rollback_record_lifecycle_signals(url, tmp_path):
    from datetime import datetime, timezone

    from musingly_pipeline.signals import FileSystemStore
    from musingly_pipeline.signals.lifecycle import current_snapshot_at
    from musingly_pipeline.signals.store import EPOCH

    signals = FileSystemStore(tmp_path / "signals")
    first = SnapshotStore(url, signals=signals).import_file(EXAMPLE, promote=True)
    second = SnapshotStore(url, signals=signals).import_bundle(variant("v2", "changed"))
    SnapshotStore(url, signals=signals).promote(second.import_id)
    events = [s.payload["event"] for s in signals.iter_signals(EPOCH, datetime.now(timezone.utc))]
    assert events == ["import_started", "snapshot_ready", "promoted", "import_started", "snapshot_ready", "promoted"]
    assert current_snapshot_at(signals, datetime.now(timezone.utc)).snapshot_id == str(second.snapshot_id)
    SnapshotStore(url, signals=signals).rollback()
    now = current_snapshot_at(signals, datetime.now(timezone.utc))
    assert (now.snapshot_id, now.event) == (str(first.snapshot_id), "rolled_back")


def test_current_views_serve_the_current_snapshot(url):
    from musingly_pipeline.storage.database import connect

    SnapshotStore(url).import_file(EXAMPLE, promote=True)
    with connect(url) as conn:
        rows = conn.execute("SELECT slug FROM current_sparks ORDER BY slug").fetchall()
        links = conn.execute("SELECT source_slug, target_slug FROM current_spark_links ORDER BY 1").fetchall()
    data = example_data()
    assert [r[0] for r in rows] == sorted(s["slug"] for s in data["sparks"])
    assert links == sorted((l["source_slug"], l["target_slug"]) for l in data["spark_links"])


def test_trusted_rows_read_back_equal_model_construct_and_the_imported_bundle(url):
    from musingly_pipeline.storage.database import connect
    from musingly_pipeline.bundles.projections import MODELS, read_entities

    imported = parse(example_data())
    result = SnapshotStore(url).import_bundle(imported)
    with connect(url) as conn:
        for kind, model in MODELS.items():
            rows = read_entities(conn, result.snapshot_id, kind)
            assert rows, kind
            for row in rows:
                assert type(row) is model
                same = model.model_construct(**row.__dict__)
                assert row == same and row.model_fields_set == same.model_fields_set
                assert row.model_dump_json() == same.model_dump_json()
            key = {"concept_sparks": ("concept_slug", "spark_slug"), "spark_beacons": ("spark_slug", "beacon_slug"),
                   "spark_links": ("source_slug", "target_slug"),
                   "concept_links": ("source_slug", "target_slug")}.get(kind, ("slug",))
            def order(r):
                return tuple(getattr(r, f) for f in key)
            assert sorted(rows, key=order) == sorted(getattr(imported, kind), key=order), kind
