"""Incremental bundles: the current snapshot's content plus a partial bundle, replacing by key.

Every row of the partial bundle replaces the row with the same key (an entity's slug, a junction's
or link's pair of slugs) or is added. Removals name rows as ``KIND:KEY``: ``sparks:old-lesson``,
``spark_links:a->b``, ``concept_sparks:concept/spark``. Removing an entity also removes the junction
and link rows that mention it; an entity that still refers to it (a trail of a removed domain)
makes the merged bundle invalid, and the report says which.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from musingly_core.models import ENTITY_KINDS, ImportBundle
from musingly_core.report import Issue

from musingly_pipeline.bundles.errors import RemovalError
from musingly_pipeline.bundles.projections import row_key

_ENTITY_KINDS = ("domains", "trails", "concepts", "sparks", "beacons")
# For each entity kind, the (relationship kind, slug fields) rows that disappear with it.
DEPENDENT_ROWS = {
    "concepts": (("concept_sparks", ("concept_slug",)), ("concept_links", ("source_slug", "target_slug"))),
    "sparks": (("concept_sparks", ("spark_slug",)), ("spark_beacons", ("spark_slug",)),
               ("spark_links", ("source_slug", "target_slug"))),
    "beacons": (("spark_beacons", ("beacon_slug",)),),
}
_PAIR_SEPARATOR = re.compile(r"\s*(?:->|/|,)\s*")
_JUNCTION_SEPARATOR = {"concept_sparks": " / ", "spark_beacons": " / ", "spark_links": " -> ",
                       "concept_links": " -> "}


def parse_removal(text: str) -> tuple[str, str]:
    """``"sparks:old-lesson"`` -> ``("sparks", "old-lesson")``; pairs -> ``("spark_links", "a -> b")``."""
    kind, sep, key = text.partition(":")
    kind, key = kind.strip(), key.strip()
    if not sep or kind not in ENTITY_KINDS or not key:
        raise RemovalError(
            "IMPORT_REMOVAL_INVALID", f"cannot read removal {text!r}; write KIND:SLUG (sparks:old-lesson) or KIND:A->B "
            f"for links and junctions (spark_links:a->b); KIND is one of {', '.join(ENTITY_KINDS)}")
    if kind in _JUNCTION_SEPARATOR:
        parts = _PAIR_SEPARATOR.split(key)
        if len(parts) != 2 or not all(parts):
            raise RemovalError("IMPORT_REMOVAL_INVALID",
                               f"cannot read removal {text!r}; a {kind} row is named by two slugs: {kind}:a->b")
        key = _JUNCTION_SEPARATOR[kind].join(parts)
    return kind, key


def merge_bundles(base: ImportBundle, patch: ImportBundle, remove: Iterable[tuple[str, str]] = ()) -> ImportBundle:
    """``base`` with ``patch``'s rows replacing or adding by key and ``remove``'s rows taken out.

    The result carries ``patch``'s version label, name and metadata. Raises :class:`RemovalError`
    for a removal that names no row of ``base``.
    """
    rows = {kind: {row_key(kind, r): r for r in getattr(base, kind)} for kind in ENTITY_KINDS}
    removed_slugs: dict[str, set[str]] = {kind: set() for kind in _ENTITY_KINDS}
    for kind, key in remove:
        if rows[kind].pop(key, None) is None:
            raise RemovalError("IMPORT_REMOVAL_NOT_FOUND",
                               f"cannot remove {kind} `{key}`: the current snapshot has no such row")
        if kind in removed_slugs:
            removed_slugs[kind].add(key)
    for kind, dependents in DEPENDENT_ROWS.items():
        gone = removed_slugs[kind]
        if not gone:
            continue
        for dependent, fields in dependents:
            rows[dependent] = {k: r for k, r in rows[dependent].items()
                               if not any(getattr(r, f) in gone for f in fields)}
    for kind in ENTITY_KINDS:
        for row in getattr(patch, kind):
            rows[kind][row_key(kind, row)] = row
    return patch.model_copy(update={kind: list(rows[kind].values()) for kind in ENTITY_KINDS})


_PLACE = re.compile(r"(\w+)\[(\d+)\](.*)", re.DOTALL)


def patch_paths(issues: Iterable[Issue], merged: ImportBundle, patch: ImportBundle) -> list[Issue]:
    """``issues`` found on ``merged`` (``patch`` merged onto the current content), each placed where
    its author can find it: ``sparks[3]`` of the patch file for a row the patch wrote, ``sparks:slug``
    for a row kept from the current snapshot (its place in the merged lists means nothing to anyone).
    The same places a merge stored as a delta reports (``delta.check_delta``)."""
    where = {kind: {row_key(kind, r): i for i, r in enumerate(getattr(patch, kind))} for kind in ENTITY_KINDS}
    placed = []
    for issue in issues:
        found = _PLACE.fullmatch(issue.path)
        if found and found.group(1) in where and int(found.group(2)) < len(getattr(merged, found.group(1))):
            kind, rest = found.group(1), found.group(3)
            key = row_key(kind, getattr(merged, kind)[int(found.group(2))])
            issue = replace(issue, path=(f"{kind}[{where[kind][key]}]" if key in where[kind] else f"{kind}:{key}") + rest)
        placed.append(issue)
    return placed
