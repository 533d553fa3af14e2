"""The snapshot lifecycle through the Python API, against a real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from musingly_pipeline.contracts.bundle import ImportBundle
from musingly_pipeline.storage import snapshots as store
from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.diff import diff_snapshots
from musingly_pipeline_tests.storage.helpers import (
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
    result = store.import_bundle_file(url, EXAMPLE)
    assert result.status == "ready" and not result.reused
    expected = parse(example_data()).counts()
    assert result.entity_counts == expected
    assert store.snapshot_row_counts(url, result.snapshot_id) == expected
    assert store.current_snapshot(url) is None  # not served until promoted
    [log] = store.list_imports(url)
    assert (log.id, log.status, log.snapshot_id, log.source_file) == (
        result.import_id, "ready", result.snapshot_id, str(EXAMPLE))


def test_promote_then_rollback_moves_the_current_pointer(url):
    first = store.import_bundle(url, bundle("v1"), promote=True)
    second = store.import_bundle(url, variant("v2", "changed"))
    assert store.current_snapshot(url).id == first.snapshot_id
    promoted = store.promote(url, second.import_id)
    assert promoted.id == second.snapshot_id and promoted.previous_id == first.snapshot_id
    statuses = {s.id: s.status for s in store.list_snapshots(url)}
    assert statuses == {first.snapshot_id: "archived", second.snapshot_id: "current"}
    back = store.rollback(url)
    assert back.id == first.snapshot_id and back.status == "current"
    logs = {log.id: log.status for log in store.list_imports(url)}
    assert logs == {first.import_id: "promoted", second.import_id: "rolled_back"}
    assert_consistent(url)


def test_promote_latest_and_refusals(url):
    with pytest.raises(store.SnapshotError, match="no ready import"):
        store.promote(url, latest=True)
    result = store.import_bundle(url, bundle("v1"))
    assert store.promote(url, latest=True).id == result.snapshot_id
    with pytest.raises(store.SnapshotError, match="no previous snapshot"):
        store.rollback(url)
    with pytest.raises(store.SnapshotError, match="not a UUID"):
        store.promote(url, "nonsense")


def test_same_content_reuses_the_snapshot_unless_forced(url):
    first = store.import_bundle(url, bundle("v1"), promote=True)
    again = store.import_bundle(url, bundle("v1-again"))
    assert again.reused and again.snapshot_id == first.snapshot_id
    assert len(store.list_snapshots(url)) == 1
    forced = store.import_bundle(url, bundle("v1-forced"), force=True)
    assert not forced.reused and forced.snapshot_id != first.snapshot_id
    assert len(store.list_snapshots(url)) == 2
    assert_consistent(url)


def test_hotfix_without_merge_is_refused_and_merge_applies_it(url):
    base = store.import_bundle_file(url, EXAMPLE, promote=True)
    with pytest.raises(store.ImportRefused, match="--merge"):
        store.import_bundle_file(url, HOTFIX)
    merged = store.import_bundle_file(url, HOTFIX, merge=True, promote=True)
    assert merged.merged and merged.entity_counts == base.entity_counts
    content = store.export_bundle(url, merged.snapshot_id)
    spark = next(s for s in content.sparks if s.slug == "self-attention-explained")
    hotfix = json.loads(HOTFIX.read_text())["sparks"][0]
    assert spark.content_md == hotfix["content_md"] and spark.estimated_minutes == 8
    # relationships of the replaced spark stay
    assert any(j.spark_slug == "self-attention-explained" for j in content.concept_sparks)
    diff = diff_snapshots(url, base.snapshot_id, merged.snapshot_id)
    assert diff.kinds["sparks"].changed == ("self-attention-explained",)
    assert sum(sum(c.values()) for c in diff.summary().values()) == 1


def test_allow_shrink_replaces_the_content(url):
    store.import_bundle_file(url, EXAMPLE, promote=True)
    small = store.import_bundle_file(url, HOTFIX, allow_shrink=True)
    assert small.entity_counts["sparks"] == 1


def test_merge_removes_rows_by_slug_with_their_links(url):
    store.import_bundle_file(url, EXAMPLE, promote=True)
    patch = bundle("v2.2", domains=[], trails=[], concepts=[], sparks=[], beacons=[], concept_sparks=[],
                   spark_beacons=[], spark_links=[], concept_links=[])
    result = store.import_bundle(url, patch, merge=True, remove=["sparks:multi-head-attention"])
    content = store.export_bundle(url, result.snapshot_id)
    slugs = {s.slug for s in content.sparks}
    assert "multi-head-attention" not in slugs
    assert all("multi-head-attention" not in (l.source_slug, l.target_slug) for l in content.spark_links)
    assert all(j.spark_slug != "multi-head-attention" for j in content.concept_sparks)
    with pytest.raises(store.ImportRefused, match="no such row"):
        store.import_bundle(url, patch, merge=True, remove=["sparks:does-not-exist"])
    # removing a domain a trail still uses makes the merged content invalid, reported as such
    with pytest.raises(store.BundleInvalid) as caught:
        store.import_bundle(url, patch, merge=True, remove=["domains:machine-learning"])
    assert caught.value.report.errors[0].code == "BUNDLE_UNKNOWN_REFERENCE"


def test_invalid_bundle_raises_with_the_report_and_touches_nothing(url, tmp_path):
    data = example_data()
    data["trails"][0]["domain_slug"] = "no-such-domain"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(store.BundleInvalid) as caught:
        store.import_bundle_file(url, path)
    assert caught.value.report.errors[0].code == "BUNDLE_UNKNOWN_REFERENCE"
    assert store.list_imports(url) == [] and store.list_snapshots(url) == []


@pytest.mark.parametrize("breakage", ["duplicate spark slug", "unknown spark in a link", "cycle"])
def test_rules_checked_during_the_load_leave_nothing(url, breakage):
    # The integrity rules run while the rows load. Two of these breakages also fail the load itself
    # (a unique violation; a slug with no id); the rule's report is the error, and nothing is kept.
    good = store.import_bundle(url, parse(example_data()))
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
    with pytest.raises(store.BundleInvalid) as caught:
        store.import_bundle(url, parse(data), force=True)
    assert code in {i.code for i in caught.value.report.errors}
    assert [log.id for log in store.list_imports(url)] == [good.import_id]
    assert [s.id for s in store.list_snapshots(url)] == [good.snapshot_id]


def test_a_large_invalid_file_stops_its_load_and_leaves_nothing(url, tmp_path):
    # 20k sparks: the rules finish while the COPY still runs; the load is cancelled, not awaited.
    from musingly_pipeline.synthetic import write_bundle

    path = write_bundle(tmp_path / "big.json", 20_000, content_bytes=100)
    data = json.loads(path.read_text())
    data["spark_links"][-1]["target_slug"] = "no-such-spark"
    path.write_text(json.dumps(data))
    with pytest.raises(store.BundleInvalid) as caught:
        store.import_bundle_file(url, path)
    assert [i.path for i in caught.value.report.errors] == [f"spark_links[{len(data['spark_links']) - 1}].target_slug"]
    assert store.list_imports(url) == [] and store.list_snapshots(url) == []
    with connect(url) as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM sparks) + (SELECT count(*) FROM spark_links)").fetchone()[0] == 0


def test_failed_load_rolls_back_and_logs_the_error(url):
    # PostgreSQL text cannot hold a NUL character: the load fails mid-way. (The contracts refuse
    # one; model_copy puts it in without validation, as a caller's own model might.)
    good = parse(example_data())
    bad_spark = good.sparks[-1].model_copy(update={"content_md": "bad \x00 byte"})
    with pytest.raises(Exception):
        store.import_bundle(url, good.model_copy(update={"sparks": [*good.sparks[:-1], bad_spark]}))
    [log] = store.list_imports(url)
    assert log.status == "failed" and log.error_message and log.snapshot_id is None
    assert store.list_snapshots(url) == []
    assert store.snapshot_row_counts(url, "00000000-0000-0000-0000-000000000000") == {
        k: 0 for k in parse(example_data()).counts()}
    assert store.import_stats(url).failed == 1


def test_delete_draft_and_cleanup(url):
    a = store.import_bundle(url, bundle("a"), promote=True)
    b = store.import_bundle(url, variant("b", "b"), promote=True)
    c = store.import_bundle(url, variant("c", "c"), promote=True)
    draft = store.import_bundle(url, variant("d", "d"))
    with pytest.raises(store.SnapshotError, match="only a draft or ready"):
        store.delete_draft(url, c.snapshot_id)
    store.delete_draft(url, draft.snapshot_id)
    assert store.snapshot_row_counts(url, draft.snapshot_id)["sparks"] == 0
    assert store.cleanup(url, 2) == 1
    remaining = {s.id for s in store.list_snapshots(url)}
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
    result = store.import_bundle(url, original)
    back = store.export_bundle(url, result.snapshot_id)
    for kind in ("sparks", "domains", "spark_links"):
        key = (lambda r: r.slug) if kind != "spark_links" else (lambda r: (r.source_slug, r.target_slug))
        got = sorted((r.model_dump() for r in getattr(back, kind)), key=lambda d: str(d))
        want = sorted((r.model_dump() for r in getattr(original, kind)), key=lambda d: str(d))
        assert got == want, kind
        assert len(got) == len({key(r) for r in getattr(back, kind)})


def test_diff_defaults_to_current_against_newest_ready(url):
    store.import_bundle_file(url, EXAMPLE, promote=True)
    data = example_data()
    data["version_label"] = "v3"
    removed = data["sparks"].pop()  # the last spark and everything that mentions it
    data["concept_sparks"] = [j for j in data["concept_sparks"] if j["spark_slug"] != removed["slug"]]
    data["spark_beacons"] = [j for j in data["spark_beacons"] if j["spark_slug"] != removed["slug"]]
    data["spark_links"] = [l for l in data["spark_links"] if removed["slug"] not in (l["source_slug"], l["target_slug"])]
    data["beacons"].append({"name": "New", "slug": "new-beacon"})
    data["domains"][1]["color"] = "#000000"
    store.import_bundle(url, parse(data))
    diff = diff_snapshots(url)
    assert diff.from_snapshot.status == "current" and diff.to_snapshot.version_label == "v3"
    assert diff.kinds["sparks"].removed == (removed["slug"],)
    assert diff.kinds["beacons"].added == ("new-beacon",)
    assert diff.kinds["domains"].changed == ("software-engineering",)
    assert diff.to_dict()["summary"]["sparks"] == {"added": 0, "removed": 1, "changed": 0}


def test_current_views_serve_the_current_snapshot(url):
    from musingly_pipeline.storage.database import connect

    store.import_bundle_file(url, EXAMPLE, promote=True)
    with connect(url) as conn:
        rows = conn.execute("SELECT slug FROM current_sparks ORDER BY slug").fetchall()
        links = conn.execute("SELECT source_slug, target_slug FROM current_spark_links ORDER BY 1").fetchall()
    data = example_data()
    assert [r[0] for r in rows] == sorted(s["slug"] for s in data["sparks"])
    assert links == sorted((l["source_slug"], l["target_slug"]) for l in data["spark_links"])


def test_trusted_rows_read_back_equal_model_construct_and_the_imported_bundle(url):
    from musingly_pipeline.storage.database import connect
    from musingly_pipeline.storage.projections import MODELS, read_entities

    imported = parse(example_data())
    result = store.import_bundle(url, imported)
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
