"""The cycle search is iterative and linear: long chains validate, back edges are named."""

from __future__ import annotations

import json
import sys

from musingly_core.bundle_file import validate_bundle_file
from musingly_core.graph import find_cycles


def test_diamond_is_acyclic():
    assert find_cycles(4, [(0, 1), (0, 2), (1, 3), (2, 3)]) == []


def test_cycle_nodes_and_back_edge():
    (cycle,) = find_cycles(4, [(0, 1), (1, 2), (2, 3), (3, 1)])
    assert cycle.nodes == (1, 2, 3)
    assert cycle.back_edge == 3


def test_two_separate_cycles_are_both_found():
    cycles = find_cycles(6, [(0, 1), (1, 0), (2, 3), (3, 4), (4, 2), (5, 5)])
    assert sorted(c.nodes for c in cycles) == [(0, 1), (2, 3, 4)]


def test_limit_caps_the_report():
    edges = [(i, i + 1) for i in range(0, 20, 2)] + [(i + 1, i) for i in range(0, 20, 2)]
    assert len(find_cycles(20, edges, limit=3)) == 3


def test_long_chain_far_beyond_the_recursion_limit():
    n = 100_000
    assert n > sys.getrecursionlimit() * 10
    chain = [(i, i + 1) for i in range(n - 1)]
    assert find_cycles(n, chain) == []
    (cycle,) = find_cycles(n, [*chain, (n - 1, 0)])
    assert len(cycle.nodes) == n and cycle.back_edge == n - 1


def _chain_bundle(n: int, back_edge: bool) -> dict:
    sparks = [{"title": f"S{i}", "slug": f"s-{i}", "content_md": "x"} for i in range(n)]
    links = [{"source_slug": f"s-{i}", "target_slug": f"s-{i + 1}"} for i in range(n - 1)]
    if back_edge:
        links.append({"source_slug": f"s-{n - 1}", "target_slug": "s-0"})
    return {
        "schema_version": "1.0.0", "version_label": "chain",
        "metadata": {"generated_at": "2026-01-01T00:00:00Z", "source_system": "test"},
        "domains": [{"name": "D", "slug": "d"}],
        "trails": [{"domain_slug": "d", "title": "T", "slug": "t"}],
        "concepts": [{"trail_slug": "t", "title": "C", "slug": "c"}],
        "sparks": sparks,
        "concept_sparks": [{"concept_slug": "c", "spark_slug": s["slug"], "order_index": i}
                           for i, s in enumerate(sparks)],
        "spark_links": links,
    }


def test_hundred_thousand_spark_chain_validates(tmp_path):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(_chain_bundle(100_000, back_edge=False)))
    report = validate_bundle_file(path).report
    assert report.valid and report.counts["spark_links"] == 99_999


def test_hundred_thousand_spark_chain_with_back_edge_is_rejected(tmp_path):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(_chain_bundle(100_000, back_edge=True)))
    (issue,) = validate_bundle_file(path).report.errors
    assert issue.code == "BUNDLE_CYCLE"
    assert issue.path == "spark_links[99999]"
    assert issue.message.startswith("spark_links form a cycle: `s-0` -> `s-1` -> ")
