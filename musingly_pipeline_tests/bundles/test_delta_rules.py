"""The delta checks (issue 19) against the full checks, on generated merges, against a real PostgreSQL.

A merge stored as a delta is checked over what it changes (``delta.check_delta``), never over the
whole merged content. The property: on any base and any patch with removals, it refuses exactly
what ``check_bundle`` on the merged content (``merge_bundles``) refuses, with the same codes; when
it accepts, every warning the merge brings is among its warnings, each of which the full check also
gives; and the merged content hash it computes from the base's sums is the full content's.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from musingly_core.integrity import check_bundle
from musingly_core.models import ENTITY_KINDS, ImportBundle

from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.bundles.content_hash import content_hash
from musingly_pipeline.bundles.delta import DeltaPolicy, plan_delta
from musingly_pipeline.bundles.errors import RemovalError
from musingly_pipeline.bundles.merge import merge_bundles
from musingly_pipeline.bundles.session import current_row, session

EVERY_MERGE_A_DELTA = DeltaPolicy(min_base_rows=0, max_share=100.0)
_HEADER = {"schema_version": "1.0.0", "metadata": {"generated_at": "2026-12-03T00:00:00+00:00",
                                                   "source_system": "test"}}


def _domain(i, published=True):
    return {"name": f"D{i}", "slug": f"d{i}", "is_published": published}


def _trail(i, domain, published=True):
    return {"domain_slug": f"d{domain}", "title": f"T{i}", "slug": f"t{i}", "is_published": published}


def _concept(i, trail):
    return {"trail_slug": None if trail is None else f"t{trail}", "title": f"C{i}", "slug": f"c{i}"}


def _spark(i, minutes=5):
    return {"title": f"S{i}", "slug": f"s{i}", "content_md": f"# S{i}", "estimated_minutes": minutes}


@st.composite
def bases(draw):
    """A valid bundle: 2 domains, 3 trails, 4 concepts, 8 sparks, 2 beacons, links forward only."""
    n_sparks, n_concepts = 8, 4
    data = {
        "domains": [_domain(0), _domain(1, draw(st.booleans()))],
        "trails": [_trail(i, i % 2, draw(st.booleans())) for i in range(3)],
        "concepts": [_concept(i, i % 3) for i in range(n_concepts)],
        "sparks": [_spark(i) for i in range(n_sparks)],
        "beacons": [{"name": f"B{i}", "slug": f"b{i}"} for i in range(2)],
        "concept_sparks": [{"concept_slug": f"c{s % 3}", "spark_slug": f"s{s}"}
                           for s in range(n_sparks) if draw(st.integers(0, 4))],
        "spark_beacons": [{"spark_slug": f"s{s}", "beacon_slug": f"b{s % 2}"} for s in range(0, n_sparks, 2)],
        "spark_links": [{"source_slug": f"s{a}", "target_slug": f"s{b}"}
                        for a, b in draw(st.sets(st.tuples(st.integers(0, n_sparks - 1), st.integers(0, n_sparks - 1))
                                                 .filter(lambda p: p[0] < p[1]), max_size=14))],
        "concept_links": [{"source_slug": f"c{a}", "target_slug": f"c{b}"}
                          for a, b in draw(st.sets(st.tuples(st.integers(0, 3), st.integers(0, 3))
                                                   .filter(lambda p: p[0] < p[1]), max_size=4))],
    }
    return ImportBundle.model_validate({**_HEADER, "version_label": "base", **data})


@st.composite
def patches(draw):
    """A patch over slugs of the base and a few new ones (some of them unknown on purpose), and removals."""
    spark = st.integers(0, 10)  # 8..10 are new sparks (only known if the patch defines them)
    concept = st.integers(0, 5)
    data = {
        "domains": [_domain(i, draw(st.booleans())) for i in draw(st.sets(st.integers(0, 2), max_size=1))],
        "trails": [_trail(i, draw(st.integers(0, 2)), draw(st.booleans()))
                   for i in draw(st.sets(st.integers(0, 3), max_size=2))],
        "concepts": [_concept(i, draw(st.one_of(st.none(), st.integers(0, 3))))
                     for i in draw(st.sets(concept, max_size=2))],
        "sparks": [_spark(i, draw(st.integers(1, 9))) for i in draw(st.sets(spark, max_size=3))],
        "beacons": [],
        "concept_sparks": [{"concept_slug": f"c{c}", "spark_slug": f"s{s}"}
                           for c, s in draw(st.sets(st.tuples(concept, spark), max_size=2))],
        "spark_beacons": [{"spark_slug": f"s{s}", "beacon_slug": f"b{b}"}
                          for s, b in draw(st.sets(st.tuples(spark, st.integers(0, 2)), max_size=1))],
        "spark_links": [{"source_slug": f"s{a}", "target_slug": f"s{b}", "weight": draw(st.sampled_from([0.5, 1.0]))}
                        for a, b in draw(st.sets(st.tuples(spark, spark), max_size=3))],
        "concept_links": [{"source_slug": f"c{a}", "target_slug": f"c{b}"}
                          for a, b in draw(st.sets(st.tuples(concept, concept), max_size=2))],
    }
    removals = draw(st.lists(st.one_of(
        st.builds(lambda i: ("sparks", f"s{i}"), st.integers(0, 8)),
        st.builds(lambda i: ("concepts", f"c{i}"), st.integers(0, 4)),
        st.builds(lambda i: ("domains", f"d{i}"), st.integers(0, 1)),
        st.builds(lambda i: ("trails", f"t{i}"), st.integers(0, 2)),
        st.builds(lambda i: ("beacons", f"b{i}"), st.integers(0, 1)),
        st.builds(lambda a, b: ("spark_links", f"s{a} -> s{b}"), st.integers(0, 7), st.integers(0, 7)),
        st.builds(lambda c, s: ("concept_sparks", f"c{c} / s{s}"), st.integers(0, 3), st.integers(0, 7)),
    ), max_size=2, unique=True))
    return ImportBundle.model_validate({**_HEADER, "version_label": "patch", **data}), removals


def _subjects(issues) -> set[tuple[str, str]]:
    """(code, the slug a warning is about: its first `quoted` name)."""
    return {(i.code, re.search(r"`([^`]+)`", i.message).group(1)) for i in issues}


@pytest.fixture(scope="module")
def url(make_database) -> str:
    return make_database()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(base=bases(), patch=patches())
def test_delta_checks_agree_with_full_checks_on_the_merged_content(url, base, patch):
    patch, removals = patch
    assert not [i for i in check_bundle(base) if i.severity.value == "error"]
    SnapshotStore(url, delta=EVERY_MERGE_A_DELTA).import_bundle(base, promote=True)
    with session(url) as conn:
        current = current_row(conn)
        try:
            merged = merge_bundles(base, patch, removals)
        except RemovalError as expected:
            with pytest.raises(RemovalError) as caught:
                plan_delta(conn, current, patch, removals, EVERY_MERGE_A_DELTA)
            assert caught.value.code == expected.code
            return
        plan = plan_delta(conn, current, patch, removals, EVERY_MERGE_A_DELTA)
    assert plan is not None
    full = check_bundle(merged)
    full_errors = {i.code for i in full if i.severity.value == "error"}
    delta_errors = {i.code for i in plan.issues if i.severity.value == "error"}
    assert delta_errors == full_errors, (full, plan.issues)
    event("refused" if full_errors else "accepted")
    if full_errors:
        return
    assert plan.counts == merged.counts()
    assert plan.digest == content_hash(merged)  # the hash a full import of the merged content gives
    delta_warnings = _subjects(i for i in plan.issues if i.severity.value == "warning")
    full_warnings = _subjects(i for i in full if i.severity.value == "warning")
    before = _subjects(i for i in check_bundle(base) if i.severity.value == "warning")
    assert full_warnings - before <= delta_warnings <= full_warnings
    event("a warning the merge brings" if full_warnings - before else "no new warning")


def test_a_new_link_closing_a_long_cycle_is_refused_naming_it(url):
    """A chain s0 -> s1 -> ... -> s7 stored; the patch adds s7 -> s0."""
    chain = [{"source_slug": f"s{i}", "target_slug": f"s{i + 1}"} for i in range(7)]
    data = {**_HEADER, "version_label": "chain", "domains": [_domain(0)], "trails": [_trail(0, 0)],
            "concepts": [_concept(0, 0)], "sparks": [_spark(i) for i in range(8)],
            "concept_sparks": [{"concept_slug": "c0", "spark_slug": f"s{i}"} for i in range(8)],
            "spark_links": chain}
    store = SnapshotStore(url, delta=EVERY_MERGE_A_DELTA)
    store.import_bundle(ImportBundle.model_validate(data), promote=True)
    patch = ImportBundle.model_validate({**_HEADER, "version_label": "loop",
                                         "spark_links": [{"source_slug": "s7", "target_slug": "s0"}]})
    with session(url) as conn:
        plan = plan_delta(conn, current_row(conn), patch, [], EVERY_MERGE_A_DELTA)
    [cycle] = plan.issues
    assert cycle.code == "BUNDLE_CYCLE" and cycle.path == "spark_links[0]"
    assert "`s7` -> `s0` -> `s1` -> `s2` -> `s3` -> `s4` -> `s5` -> `s6` -> `s7`" in cycle.message
    assert {i.code for i in check_bundle(merge_bundles(ImportBundle.model_validate(data), patch))} == {"BUNDLE_CYCLE"}
