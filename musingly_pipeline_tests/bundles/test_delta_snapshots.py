"""Merges stored as a delta on a full snapshot (issue 19), through the store, against a real PostgreSQL.

What a user checks: a merged snapshot reads (export, views, row counts, diff) exactly as a full
import of the merged content would, with the same content hash; it stays one delta away from its
base however many merges follow; promote, rollback, delete-draft and cleanup keep their meaning and
never remove a base a kept snapshot stands on; a kill -9 in the middle of a delta merge leaves nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from musingly_core.models import ENTITY_KINDS, ImportBundle

from musingly_pipeline.bundles import SnapshotError, SnapshotStore
from musingly_pipeline.bundles.delta import DeltaPolicy
from musingly_pipeline.bundles.synthetic import write_bundle
from musingly_pipeline.storage.database import connect
from musingly_pipeline_tests.bundles.helpers import EXAMPLE, HOTFIX, assert_consistent, example_data, parse

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DELTAS = DeltaPolicy(min_base_rows=0, max_share=1.0)
NO_DELTAS = DeltaPolicy(max_share=0)


@pytest.fixture
def url(make_database) -> str:
    return make_database()


def _patch(label: str, **lists) -> ImportBundle:
    return parse({"schema_version": "1.0.0", "version_label": label,
                  "metadata": {"generated_at": "2026-12-03T00:00:00+00:00", "source_system": "test"},
                  **{k: lists.get(k, []) for k in ENTITY_KINDS}})


def _as_full_import(url: str, store: SnapshotStore, snapshot_id) -> tuple[str, dict]:
    """The content hash and counts a full import of the snapshot's exported content gives."""
    exported = store.export_bundle(snapshot_id)
    full = SnapshotStore(url, delta=NO_DELTAS).import_bundle(exported, force=True, allow_shrink=True)
    return full.content_hash, full.entity_counts


def _views(url: str) -> dict[str, set]:
    """What readers see through the current_* views, by key (ids are uuid5 of slugs: stable)."""
    with connect(url) as conn:
        return {
            "sparks": set(conn.execute("SELECT slug, summary, estimated_minutes FROM current_sparks").fetchall()),
            "links": set(conn.execute("SELECT source_slug, target_slug, weight FROM current_spark_links").fetchall()),
            "joins": set(conn.execute("SELECT concept_slug, spark_slug FROM current_concept_sparks").fetchall()),
            "concepts": set(conn.execute("SELECT slug, trail_slug FROM current_concepts").fetchall()),
            "ids": {r[0] for r in conn.execute("SELECT snapshot_id FROM current_sparks")},
        }


def test_a_merged_snapshot_is_a_delta_that_reads_as_the_full_merged_content(url):
    store = SnapshotStore(url, delta=DELTAS)
    base = store.import_file(EXAMPLE, promote=True)
    merged = store.import_file(HOTFIX, merge=True, promote=True)
    info = store.get_snapshot(merged.snapshot_id)
    assert info.base_id == base.snapshot_id
    with connect(url) as conn:  # only the changed spark is stored again, and one mask hides the old one
        assert conn.execute("SELECT count(*) FROM sparks WHERE snapshot_id = %s", (merged.snapshot_id,)).fetchone() == (1,)
        assert conn.execute("SELECT table_name FROM snapshot_masks WHERE snapshot_id = %s",
                            (merged.snapshot_id,)).fetchall() == [("sparks",)]
    digest, counts = _as_full_import(url, store, merged.snapshot_id)
    assert merged.content_hash == digest and merged.entity_counts == counts == base.entity_counts
    assert store.snapshot_row_counts(merged.snapshot_id) == merged.entity_counts
    seen = _views(url)
    hotfix = json.loads(HOTFIX.read_text())["sparks"][0]
    assert (hotfix["slug"], hotfix["summary"], hotfix["estimated_minutes"]) in seen["sparks"]
    assert len(seen["sparks"]) == base.entity_counts["sparks"] and seen["ids"] == {merged.snapshot_id}
    assert store.diff(base.snapshot_id, merged.snapshot_id).kinds["sparks"].changed == (hotfix["slug"],)
    assert_consistent(url)


def test_merges_onto_a_delta_stay_one_delta_from_the_base_and_removals_take_their_links(url):
    store = SnapshotStore(url, delta=DELTAS)
    base = store.import_file(EXAMPLE, promote=True)
    data = example_data()
    first = store.import_file(HOTFIX, merge=True, promote=True)
    hotfix = json.loads(HOTFIX.read_text())["sparks"][0]
    spark, removed = [s for s in data["sparks"] if s["slug"] != hotfix["slug"]][:2]
    second = store.import_bundle(_patch("v3", sparks=[{**spark, "summary": "second change"}]), merge=True,
                                 promote=True, remove=[f"sparks:{removed['slug']}"])
    info = store.get_snapshot(second.snapshot_id)
    assert info.base_id == base.snapshot_id  # the new delta carries the first one's change
    content = store.export_bundle(second.snapshot_id)
    slugs = {s.slug: s for s in content.sparks}
    assert slugs[hotfix["slug"]].content_md == hotfix["content_md"]
    gone = removed["slug"]
    assert slugs[spark["slug"]].summary == "second change" and gone not in slugs
    assert all(gone not in (l.source_slug, l.target_slug) for l in content.spark_links)
    assert all(j.spark_slug != gone for j in content.concept_sparks)
    digest, counts = _as_full_import(url, store, second.snapshot_id)
    assert second.content_hash == digest and second.entity_counts == counts
    # the views show the same rows as the export
    seen = _views(url)
    assert {s[0] for s in seen["sparks"]} == set(slugs)
    assert seen["links"] == {(l.source_slug, l.target_slug, l.weight) for l in content.spark_links}
    assert seen["joins"] == {(j.concept_slug, j.spark_slug) for j in content.concept_sparks}
    # rollback to the first delta, then to the base: every step reads as it did
    assert store.rollback().id == first.snapshot_id
    assert {s[0] for s in _views(url)["sparks"]} == {s.slug for s in store.export_bundle(first.snapshot_id).sparks}
    assert store.rollback().id == base.snapshot_id
    assert len(_views(url)["sparks"]) == len(data["sparks"])
    assert_consistent(url)


def test_a_merge_that_breaks_a_rule_is_refused_as_the_full_check_would(url):
    store = SnapshotStore(url, delta=DELTAS)
    store.import_file(EXAMPLE, promote=True)
    data = example_data()
    link = data["spark_links"][0]
    with pytest.raises(Exception) as caught:  # a link back closes a cycle
        store.import_bundle(_patch("loop", spark_links=[{**link, "source_slug": link["target_slug"],
                                                         "target_slug": link["source_slug"]}]), merge=True)
    assert caught.value.code == "IMPORT_BUNDLE_INVALID"
    assert [i.code for i in caught.value.report.errors] == ["BUNDLE_CYCLE"]
    domain = data["trails"][0]["domain_slug"]
    with pytest.raises(Exception) as caught:  # a trail still refers to the removed domain
        store.import_bundle(_patch("gone"), merge=True, remove=[f"domains:{domain}"])
    [error] = caught.value.report.errors
    assert error.code == "BUNDLE_UNKNOWN_REFERENCE" and f"`{domain}`" in error.message
    assert len(store.list_snapshots()) == 1  # nothing kept of either


def test_cleanup_and_deletion_never_remove_a_base_a_kept_snapshot_stands_on(url):
    store = SnapshotStore(url, delta=DELTAS)
    base = store.import_file(EXAMPLE, promote=True)
    merged = store.import_file(HOTFIX, merge=True, promote=True)  # base archived, merged current on it
    assert store.cleanup(1) == 0  # the archived base is still needed
    assert store.get_snapshot(base.snapshot_id).status == "archived"
    with connect(url) as conn, pytest.raises(psycopg.errors.DependentObjectsStillExist, match="is the base of"):
        conn.execute("SELECT delete_snapshot_content(%s)", (base.snapshot_id,))
    with connect(url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("DELETE FROM snapshots WHERE id = %s", (base.snapshot_id,))
    # a ready delta is deleted alone; its base stays whole
    ready = store.import_bundle(_patch("v4", sparks=[{**example_data()["sparks"][0], "summary": "v4"}]), merge=True)
    assert store.get_snapshot(ready.snapshot_id).base_id == base.snapshot_id
    store.delete_draft(ready.snapshot_id)
    assert store.snapshot_row_counts(merged.snapshot_id) == merged.entity_counts
    # a full import replaces them: the delta goes, then its base with it
    full = SnapshotStore(url, delta=NO_DELTAS).import_bundle(parse({**example_data(), "version_label": "v5",
                                                                    "sparks": [{**s, "summary": "v5"} for s in
                                                                               example_data()["sparks"]]}),
                                                             promote=True)
    assert store.cleanup(1) == 2
    assert [s.id for s in store.list_snapshots()] == [full.snapshot_id]
    with connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM snapshot_masks").fetchone() == (0,)
    assert_consistent(url)


_MERGER = textwrap.dedent("""
    import os, signal, sys
    from musingly_pipeline.bundles import SnapshotStore
    from musingly_pipeline.bundles.delta import DeltaPolicy
    url, path, kill_at = sys.argv[1:4]

    def progress(stage, done, total):
        if stage == kill_at:
            print("killing", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    SnapshotStore(url, delta=DeltaPolicy(min_base_rows=0, max_share=1.0)).import_file(path, merge=True, progress=progress)
""")


@pytest.mark.parametrize("kill_at", ["sparks", "spark_links"])
def test_kill_9_mid_delta_merge_leaves_nothing_and_can_be_rerun(url, tmp_path, kill_at):
    big = write_bundle(tmp_path / "base.json", 2000, content_bytes=200)
    store = SnapshotStore(url, delta=DELTAS)
    base = store.import_file(big, promote=True)
    content = store.export_bundle(base.snapshot_id)
    changed = _patch("patch", sparks=[{**s.model_dump(mode="json"), "summary": "changed"} for s in content.sparks[:5]],
                     spark_links=[{"source_slug": content.sparks[0].slug, "target_slug": content.sparks[-1].slug}])
    patch = tmp_path / "patch.json"
    patch.write_text(changed.model_dump_json())
    done = subprocess.run([sys.executable, "-c", _MERGER, url, str(patch), kill_at],
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    deadline = time.monotonic() + 10
    while any(log.status in ("pending", "importing") for log in store.list_imports()) and time.monotonic() < deadline:
        time.sleep(0.05)
    [killed] = [log for log in store.list_imports() if log.version_label == "patch"]
    assert killed.status == "failed" and "ended before finishing" in killed.error_message
    assert [s.id for s in store.list_snapshots()] == [base.snapshot_id]
    with connect(url) as conn:  # no delta rows, no masks, no partition of the killed snapshot
        assert conn.execute("SELECT count(*) FROM snapshot_masks").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM sparks WHERE snapshot_id <> %s", (base.snapshot_id,)).fetchone() == (0,)
    again = store.import_file(patch, merge=True)
    assert store.get_snapshot(again.snapshot_id).base_id == base.snapshot_id
    assert again.content_hash == _as_full_import(url, store, again.snapshot_id)[0]
    assert_consistent(url)


@pytest.mark.parametrize("policy", [DELTAS, NO_DELTAS], ids=["delta", "full"])
def test_a_merge_file_may_link_stored_sparks_it_does_not_define(url, tmp_path, policy):
    """A hotfix that adds one prerequisite link between two sparks already stored: the file alone
    names sparks it does not define; the merged content has them (it used to be refused)."""
    store = SnapshotStore(url, delta=policy)
    store.import_file(EXAMPLE, promote=True)
    sparks = [s["slug"] for s in example_data()["sparks"]]
    stored = {(l["source_slug"], l["target_slug"]) for l in example_data()["spark_links"]}

    def reaches(a, b):  # a path a -> ... -> b in the stored links
        seen, todo = set(), [a]
        while todo:
            node = todo.pop()
            if node == b:
                return True
            seen.add(node)
            todo.extend(t for s, t in stored if s == node and t not in seen)
        return False

    source, target = next((a, b) for a in sparks for b in sparks
                          if a != b and (a, b) not in stored and not reaches(b, a))
    patch = tmp_path / "link.json"
    patch.write_text(_patch("link", spark_links=[{"source_slug": source, "target_slug": target}]).model_dump_json())
    merged = store.import_file(patch, merge=True, promote=True)
    assert (source, target) in {(l[0], l[1]) for l in _views(url)["links"]}
    assert merged.entity_counts["spark_links"] == len(stored) + 1
    missing = tmp_path / "missing.json"
    missing.write_text(_patch("missing", spark_links=[{"source_slug": source, "target_slug": "no-such-spark"}])
                       .model_dump_json())
    with pytest.raises(Exception) as caught:
        store.import_file(missing, merge=True)
    assert [i.code for i in caught.value.report.errors] == ["BUNDLE_UNKNOWN_REFERENCE"]
    assert "no-such-spark" in caught.value.report.errors[0].message


@pytest.mark.parametrize("policy", [DELTAS, NO_DELTAS], ids=["delta", "full"])
def test_a_refused_merge_names_the_places_in_its_file_or_the_kept_rows_by_slug(url, tmp_path, policy):
    """Both ways of merging name a row the file wrote by its place in the file, and a row kept from
    the current snapshot by its slug (its place in the merged lists means nothing to the author)."""
    store = SnapshotStore(url, delta=policy)
    store.import_file(EXAMPLE, promote=True)
    spark = example_data()["sparks"][0]["slug"]
    typo = tmp_path / "typo.json"
    typo.write_text(_patch("typo", spark_links=[{"source_slug": spark, "target_slug": "no-such-spark"}])
                    .model_dump_json())
    with pytest.raises(Exception) as caught:
        store.import_file(typo, merge=True)
    assert [i.path for i in caught.value.report.errors] == ["spark_links[0].target_slug"]
    trail = example_data()["trails"][0]
    with pytest.raises(Exception) as caught:
        store.import_bundle(_patch("gone"), merge=True, remove=[f"domains:{trail['domain_slug']}"])
    assert [i.path for i in caught.value.report.errors] == [f"trails:{trail['slug']}.domain_slug"]
