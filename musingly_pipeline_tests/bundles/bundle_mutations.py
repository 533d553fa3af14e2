"""Hostile changes to the example bundles (what the audit tried), and the property they must keep.

:func:`mutated_bundle` is a hypothesis strategy for the text of an example bundle with one to three
changes to its JSON tree (integer and number edges, odd text, slugs, missing, extra, repeated or
mistyped fields and items, self links and cycles) and maybe one to its text (a repeated key, a NaN
or 1e400 literal, a byte-order mark, a truncation). :func:`check_agreement` is the property:
``musingly validate`` and ``musingly import`` agree on the file, and what imports reads back as
what was validated. The test module runs it a bounded number of times; the audit's rerun
(``tools/fault_audit.py``) runs it at scale.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from musingly_core.models import ENTITY_KINDS
from musingly_pipeline.bundles import BundleInvalid, SnapshotStore
from musingly_core.bundle_file import validate_bundle_file

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "data" / "examples").glob("*.json"))

TEXT_FIELDS = {
    "domains": ("name", "description", "icon"), "trails": ("title", "description"),
    "concepts": ("title", "description"), "sparks": ("title", "summary", "content_md"),
    "beacons": ("name", "description", "category"), "spark_links": ("description",),
    "concept_links": ("description",),
}
INT_FIELDS = {"concepts": ("order_index",), "concept_sparks": ("order_index",), "sparks": ("estimated_minutes",)}
SLUG_FIELDS = {
    "domains": ("slug",), "trails": ("slug", "domain_slug"), "concepts": ("slug", "trail_slug"),
    "sparks": ("slug",), "beacons": ("slug",), "concept_sparks": ("concept_slug", "spark_slug"),
    "spark_beacons": ("spark_slug", "beacon_slug"), "spark_links": ("source_slug", "target_slug"),
    "concept_links": ("source_slug", "target_slug"),
}
INTS = [0, 1, -1, 5, 600, 601, 2**31 - 1, 2**31, -(2**31) - 1, 2**32 + 7, 2**40, 2**63, 2**64, 1.0, 1.5, "3",
        True, None]
NUMBERS = [0.0, -0.0, 1.0, 0.5, 5e-324, 1.0000000000000002, 1, 0, 2, -1e-300, 1e308, True, "0.5", None]
ODD_TEXT = ["", " ", "a\x00b", "\x00", "x" * 500, "x" * 501, "\u202etxet", "e\u0301", "\U0001F600\U0010FFFF",
            "\\u0000", "'); DROP TABLE sparks; --", "\u2028\u2029\ufeff", "\t\r\n\b\f", "\\.\nCOPY", "%s {0}"]
ODD_SLUGS = ["", "Bad Slug", "a--b", "-a", "a-", "a" * 200, "a" * 201, "ünï", "a_b", "nope", "a\x00b"]
LITERALS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+2", "0.1e1"]
TEXTS = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(ODD_TEXT))

Draw = Callable[[st.SearchStrategy], Any]


def _item(doc: dict, draw: Draw, kinds) -> tuple[str, dict] | None:
    kinds = [k for k in kinds if isinstance(doc.get(k), list) and doc[k] and isinstance(doc[k][0], dict)]
    if not kinds:
        return None
    kind = draw(st.sampled_from(kinds))
    item = draw(st.sampled_from(doc[kind]))
    return (kind, item) if isinstance(item, dict) else None


def set_int(doc, draw):
    if found := _item(doc, draw, INT_FIELDS):
        kind, item = found
        field = draw(st.sampled_from(INT_FIELDS[kind]))
        valid = st.integers(1, 600) if field == "estimated_minutes" else st.integers(0, 2**31 - 1)
        item[field] = draw(st.one_of(valid, st.sampled_from(INTS)))


def set_weight(doc, draw):
    if found := _item(doc, draw, ("spark_links", "concept_links")):
        found[1]["weight"] = draw(st.one_of(st.floats(0, 1), st.sampled_from(NUMBERS), st.floats()))


def set_text(doc, draw):
    if found := _item(doc, draw, TEXT_FIELDS):
        kind, item = found
        item[draw(st.sampled_from(TEXT_FIELDS[kind]))] = draw(TEXTS)


def set_header_text(doc, draw):
    field = draw(st.sampled_from(["version_label", "name", "source_system", "source_version", "description"]))
    target = doc if field in ("version_label", "name") else doc.setdefault("metadata", {})
    if isinstance(target, dict):
        target[field] = draw(TEXTS)


def set_slug(doc, draw):
    if found := _item(doc, draw, SLUG_FIELDS):
        kind, item = found
        others = [i.get("slug") for k in ("domains", "trails", "concepts", "sparks", "beacons")
                  for i in doc.get(k) or () if isinstance(i, dict)]
        item[draw(st.sampled_from(SLUG_FIELDS[kind]))] = draw(st.sampled_from(ODD_SLUGS + others))


def drop_item(doc, draw):
    if found := _item(doc, draw, ENTITY_KINDS):
        kind, item = found
        doc[kind].remove(item)


def repeat_item(doc, draw):
    if found := _item(doc, draw, ENTITY_KINDS):
        kind, item = found
        doc[kind].append(json.loads(json.dumps(item)))


def drop_field(doc, draw):
    if found := _item(doc, draw, ENTITY_KINDS):
        item = found[1]
        if item:
            del item[draw(st.sampled_from(sorted(item)))]


def add_field(doc, draw):
    target = draw(st.sampled_from(["top", "metadata", "item"]))
    if target == "item":
        found = _item(doc, draw, ENTITY_KINDS)
        target = found[1] if found else doc
    else:
        target = doc if target == "top" else doc.get("metadata")
    if isinstance(target, dict):
        target[draw(st.sampled_from(["titel", "extra", "slug_", "id", "weight"]))] = 1


def wrong_type(doc, draw):
    value = draw(st.sampled_from([[], {}, None, 3, "3", True, [{}]]))
    where = draw(st.sampled_from(["list", "field", "metadata"]))
    if where == "list":
        doc[draw(st.sampled_from(ENTITY_KINDS))] = value
    elif where == "metadata":
        doc["metadata"] = value if draw(st.booleans()) else {**(doc.get("metadata") or {}), "generated_at": value}
    elif found := _item(doc, draw, ENTITY_KINDS):
        item = found[1]
        if item:
            item[draw(st.sampled_from(sorted(item)))] = value


def link_loop(doc, draw):
    """A self link, or the reverse of an existing link (a cycle)."""
    if found := _item(doc, draw, ("spark_links", "concept_links")):
        kind, link = found
        if draw(st.booleans()):
            link["target_slug"] = link.get("source_slug")
        else:
            doc[kind].append({**link, "source_slug": link.get("target_slug"), "target_slug": link.get("source_slug")})


# Values at the edges: often still valid, so they reach the database. Breaks: the bundle is invalid.
EDGE_MUTATIONS = [set_int, set_weight, set_text, set_header_text]
BREAKING_MUTATIONS = [set_slug, drop_item, repeat_item, drop_field, add_field, wrong_type, link_loop]


def repeat_key(text: str, draw: Draw) -> str:
    """A key repeated in one object, with another value (first or last)."""
    starts = [m.start() for m in re.finditer(r'\{\s*"([a-z_]+)":', text)]
    if not starts:
        return text
    at = draw(st.sampled_from(starts))
    key = re.match(r'\{\s*"([a-z_]+)":', text[at:]).group(1)
    value = json.dumps(draw(st.sampled_from([1, "x", None, True, "linear-algebra-basics", 0.5])))
    return f'{text[:at + 1]}"{key}": {value}, {text[at + 1:]}'


def number_literal(text: str, draw: Draw) -> str:
    weights = [m.start(1) for m in re.finditer(r'"weight": ([-0-9.eE+]+)', text)]
    if not weights:
        return text
    at = draw(st.sampled_from(weights))
    end = re.match(r"[-0-9.eE+]+", text[at:]).end()
    return text[:at] + draw(st.sampled_from(LITERALS)) + text[at + end:]


def byte_order_mark(text: str, draw: Draw) -> str:
    return "\ufeff" + text


def truncate(text: str, draw: Draw) -> str:
    return text[:draw(st.integers(0, len(text) - 1))]


TEXT_MUTATIONS = [repeat_key, number_literal, byte_order_mark, truncate]


@st.composite
def mutated_bundle(draw) -> tuple[str, str]:
    """(what was done, the bundle's text): one to three edge values, in a third of the bundles a
    break of the tree, in a quarter a change of the text."""
    example = draw(st.sampled_from(EXAMPLES))
    doc = json.loads(example.read_text(encoding="utf-8"))
    mutations = draw(st.lists(st.sampled_from(EDGE_MUTATIONS), min_size=1, max_size=3))
    if draw(st.integers(0, 2)) == 0:
        mutations.append(draw(st.sampled_from(BREAKING_MUTATIONS)))
    done = [example.name]
    for mutation in mutations:
        mutation(doc, draw)
        done.append(mutation.__name__)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2])))
    if draw(st.integers(0, 3)) == 0:
        mutation = draw(st.sampled_from(TEXT_MUTATIONS))
        text = mutation(text, draw)
        done.append(mutation.__name__)
    return " + ".join(done), text


def example_with(change: Callable[[dict], None], example: Path = EXAMPLES[0]) -> tuple[str, str]:
    """An example bundle with ``change`` applied to its JSON tree, as :func:`mutated_bundle` gives it."""
    doc = json.loads(example.read_text(encoding="utf-8"))
    change(doc)
    return example.name, json.dumps(doc)


def check_agreement(url: str, path: Path) -> str:
    """``validate`` and ``import`` agree on the bundle at ``path``; an import reads back as validated.

    Returns ``"valid"`` or ``"invalid"``. A refused import must leave no snapshot and no import log;
    an accepted one is deleted again (``delete-draft``), so the database stays small.
    """
    checked = validate_bundle_file(path)
    errors = sorted((i.code, i.path) for i in checked.report.errors)
    before = (len(SnapshotStore(url).list_snapshots()), len(SnapshotStore(url).list_imports()))
    try:
        result = SnapshotStore(url).import_file(path, allow_shrink=True)
    except BundleInvalid as refused:
        assert not checked.valid, f"import refused what validate accepted: {refused}"
        assert sorted((i.code, i.path) for i in refused.report.errors) == errors
        assert (len(SnapshotStore(url).list_snapshots()), len(SnapshotStore(url).list_imports())) == before
        return "invalid"
    assert checked.valid, f"import accepted what validate refused: {errors}"
    back = SnapshotStore(url).export_bundle(result.snapshot_id)
    for kind in ENTITY_KINDS:
        stored = sorted(json.dumps(r.model_dump(mode="json"), sort_keys=True) for r in getattr(back, kind))
        validated = sorted(json.dumps(r.model_dump(mode="json"), sort_keys=True) for r in getattr(checked.bundle, kind))
        assert stored == validated, kind
    SnapshotStore(url).delete_draft(result.snapshot_id)
    return "valid"
