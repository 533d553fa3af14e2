"""Integrity rules over a parsed bundle: slugs, references, junctions, links, graph, warnings.

Every rule runs in one pass over its list with dicts and sets, so a 100k-spark bundle with 300k
links validates in well under a second on top of parsing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from musingly_core.gcpause import gc_paused
from musingly_core.graph import find_cycles
from musingly_core.models import ImportBundle
from musingly_core.report import Issue, error, warning

# Singular names for messages.
_SINGULAR = {
    "domains": "domain",
    "trails": "trail",
    "concepts": "concept",
    "sparks": "spark",
    "beacons": "beacon",
}
# Closest-slug suggestions cost a fuzzy match against every slug of a kind; past this many unknown
# references in one bundle the rest are reported without a suggestion.
_SUGGESTION_LIMIT = 25
_CYCLE_LIMIT = 10
_CYCLE_SHOWN = 12  # slugs of a cycle shown in its message


@gc_paused()  # the rules build dicts and tuples over every row; see gcpause
def check_bundle(bundle: ImportBundle) -> list[Issue]:
    """All integrity errors and warnings of ``bundle``, in a stable order."""
    issues: list[Issue] = []
    index = {kind: _slug_index(bundle, kind, issues) for kind in _SINGULAR}
    suggester = _Suggester(index)

    for i, trail in enumerate(bundle.trails):
        suggester.check(issues, "domains", trail.domain_slug, f"trails[{i}].domain_slug")
    for i, concept in enumerate(bundle.concepts):
        if concept.trail_slug is not None:
            suggester.check(issues, "trails", concept.trail_slug, f"concepts[{i}].trail_slug")

    _junctions(bundle.concept_sparks, "concept_sparks", ("concept_slug", "concepts"),
               ("spark_slug", "sparks"), suggester, issues)
    _junctions(bundle.spark_beacons, "spark_beacons", ("spark_slug", "sparks"),
               ("beacon_slug", "beacons"), suggester, issues)
    _links(bundle.spark_links, "spark_links", "sparks", index["sparks"], suggester, issues)
    _links(bundle.concept_links, "concept_links", "concepts", index["concepts"], suggester, issues)

    issues.extend(_warnings(bundle, index))
    return issues


def _slug_index(bundle: ImportBundle, kind: str, issues: list[Issue]) -> dict[str, int]:
    """slug -> index of its first definition; later definitions are duplicate-slug errors."""
    first: dict[str, int] = {}
    for i, entity in enumerate(getattr(bundle, kind)):
        slug = entity.slug
        seen = first.setdefault(slug, i)
        if seen != i:
            issues.append(error(
                "BUNDLE_DUPLICATE_SLUG", f"{kind}[{i}].slug",
                f"{_SINGULAR[kind]} slug `{slug}` is already used by {kind}[{seen}]; "
                f"give each {_SINGULAR[kind]} its own slug or remove the duplicate",
            ))
    return first


class _Suggester:
    """Reports unknown references, with a 'did you mean' for the first few."""

    def __init__(self, index: dict[str, dict[str, int]]):
        self.index = index
        self.suggested = 0

    def check(self, issues: list[Issue], kind: str, slug: str, path: str) -> bool:
        if slug in self.index[kind]:
            return True
        hint = ""
        if self.suggested < _SUGGESTION_LIMIT:
            self.suggested += 1
            close = difflib.get_close_matches(slug, self.index[kind].keys(), n=1, cutoff=0.75)
            if close:
                hint = f"did you mean `{close[0]}`? "
        issues.append(error(
            "BUNDLE_UNKNOWN_REFERENCE", path,
            f"unknown {_SINGULAR[kind]} `{slug}`; {hint}"
            f"define it in `{kind}` or fix the slug",
        ))
        return False


def _junctions(rows: Sequence, name: str, left: tuple[str, str], right: tuple[str, str],
               suggester: _Suggester, issues: list[Issue]) -> None:
    (left_field, left_kind), (right_field, right_kind) = left, right
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        a, b = getattr(row, left_field), getattr(row, right_field)
        suggester.check(issues, left_kind, a, f"{name}[{i}].{left_field}")
        suggester.check(issues, right_kind, b, f"{name}[{i}].{right_field}")
        first = seen.setdefault((a, b), i)
        if first != i:
            issues.append(error(
                "BUNDLE_DUPLICATE_JUNCTION", f"{name}[{i}]",
                f"`{a}` and `{b}` are already joined by {name}[{first}]; remove this row",
            ))


def _links(rows: Sequence, name: str, kind: str, slugs: dict[str, int],
           suggester: _Suggester, issues: list[Issue]) -> None:
    node = {slug: n for n, slug in enumerate(slugs)}  # dense node numbers, in definition order
    seen: dict[tuple[str, str], int] = {}
    edges: list[tuple[int, int]] = []
    edge_rows: list[int] = []
    for i, link in enumerate(rows):
        source, target = link.source_slug, link.target_slug
        ok = suggester.check(issues, kind, source, f"{name}[{i}].source_slug")
        ok = suggester.check(issues, kind, target, f"{name}[{i}].target_slug") and ok
        if source == target:
            issues.append(self_link(f"{name}[{i}]", source, kind))
            continue
        first = seen.setdefault((source, target), i)
        if first != i:
            issues.append(error(
                "BUNDLE_DUPLICATE_LINK", f"{name}[{i}]",
                f"`{source}` -> `{target}` is already linked by {name}[{first}]; remove this row",
            ))
            continue
        if ok:
            edges.append((node[source], node[target]))
            edge_rows.append(i)

    if not edges:
        return
    slug_of = list(node)
    for cycle in find_cycles(len(slug_of), edges, limit=_CYCLE_LIMIT):
        issues.append(cycle_found(f"{name}[{edge_rows[cycle.back_edge]}]", name, [slug_of[n] for n in cycle.nodes]))


def _warnings(bundle: ImportBundle, index: dict[str, dict[str, int]]) -> Iterable[Issue]:
    in_concept = {row.spark_slug for row in bundle.concept_sparks}
    with_sparks = {row.concept_slug for row in bundle.concept_sparks}
    for i, spark in enumerate(bundle.sparks):
        if spark.slug not in in_concept and index["sparks"].get(spark.slug) == i:
            yield orphan_spark(f"sparks[{i}]", spark.slug)
    for i, concept in enumerate(bundle.concepts):
        if concept.slug not in with_sparks and index["concepts"].get(concept.slug) == i:
            yield empty_concept(f"concepts[{i}]", concept.slug)
    published_domain = {d.slug: d.is_published for d in bundle.domains}
    for i, trail in enumerate(bundle.trails):
        if trail.is_published and published_domain.get(trail.domain_slug) is False:
            yield published_in_unpublished(f"trails[{i}].is_published", trail.slug, trail.domain_slug)


# One builder per rule's issue, shared with whatever checks the rules another way (the pipeline
# checks a merge over the rows it changes): the same code, the same words, wherever it is found.

def self_link(path: str, slug: str, kind: str) -> Issue:
    return error("BUNDLE_SELF_LINK", path, f"`{slug}` links to itself; a {_SINGULAR[kind]} cannot be its own "
                 "prerequisite, remove this link")


def cycle_found(path: str, name: str, slugs: Sequence[str]) -> Issue:
    """``slugs``: the cycle's nodes in order, the first not repeated at the end."""
    names = [f"`{slug}`" for slug in slugs]
    names.append(names[0])
    if len(names) > _CYCLE_SHOWN:  # a 100k-step cycle: show both ends, count the middle
        hidden = len(names) - _CYCLE_SHOWN
        names = [*names[:6], f"... {hidden} more ...", *names[-(_CYCLE_SHOWN - 6):]]
    return error("BUNDLE_CYCLE", path, f"{name} form a cycle: {' -> '.join(names)}; a prerequisite graph must be "
                 "acyclic, remove or reverse one of these links (this one closes the loop)")


def orphan_spark(path: str, slug: str) -> Issue:
    return warning("BUNDLE_ORPHAN_SPARK", path, f"spark `{slug}` is in no concept, so no trail leads to it; "
                   "add a concept_sparks row if that is not intended")


def empty_concept(path: str, slug: str) -> Issue:
    return warning("BUNDLE_EMPTY_CONCEPT", path, f"concept `{slug}` has no sparks; add concept_sparks rows or "
                   "drop the concept")


def published_in_unpublished(path: str, trail: str, domain: str) -> Issue:
    return warning("BUNDLE_PUBLISHED_IN_UNPUBLISHED", path, f"trail `{trail}` is published but its domain "
                   f"`{domain}` is not, so readers cannot reach it; publish the domain or unpublish the trail")
