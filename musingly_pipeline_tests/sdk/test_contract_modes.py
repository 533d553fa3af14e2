"""The contracts give the same answer for the same content, from a dict (Python) or from JSON text.

A generator builds models in Python and pre-flights files with ``model_validate(json.load(f))``; the
pipeline parses files with ``model_validate_json``. Times are ISO 8601 strings (or ``datetime``s) in
both ways; everything else stays strict in both ways.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import musingly_core
from musingly_core.bundle_file import parse_bundle, parse_bundle_object
from musingly_core.models import ImportBundle, ImportMetadata, SparkImport
from musingly_core.report import ValidationReport
from musingly_pipeline_tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "ml-curriculum.json"
FILES = [*sorted(EXAMPLES.glob("*.json")), *sorted((EXAMPLES / "incremental").glob("*.json"))]


def both_ways(text: str):
    """(model or None, errors) from the JSON text and from ``json.loads`` of it.

    An error is (type, place, input): pydantic words one message differently by mode ("a valid
    array" from JSON, "a valid list" from Python); the issues made from the errors are compared whole.
    """
    results = []
    for parse in (ImportBundle.model_validate_json, lambda t: ImportBundle.model_validate(json.loads(t))):
        try:
            results.append((parse(text), None))
        except ValidationError as exc:
            results.append((None, [(e["type"], e["loc"], repr(e["input"]))
                                   for e in exc.errors(include_url=False)]))
    return results


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_example_parses_the_same_from_a_dict(path):
    text = path.read_text(encoding="utf-8")
    (from_json, _), (from_dict, errors) = both_ways(text)
    assert errors is None and from_dict == from_json
    assert from_dict.metadata.generated_at.tzinfo is not None


def test_the_guides_metadata_call_takes_an_iso_string():
    now = datetime.now(timezone.utc)
    metadata = ImportMetadata(generated_at=now.isoformat(), source_system="content-generator",
                              source_version="1.0.0", description="AI-generated ML curriculum expansion")
    assert metadata.generated_at == now
    assert ImportMetadata(generated_at=now, source_system="x").generated_at == now


def test_model_dump_is_json_ready_and_reads_back_equal():
    bundle = ImportBundle.model_validate_json(EXAMPLE.read_bytes())
    dumped = bundle.model_dump()
    assert dumped["metadata"]["generated_at"] == "2026-01-15T09:30:00Z"
    assert json.loads(json.dumps(dumped)) == dumped == json.loads(bundle.model_dump_json())
    assert ImportBundle.model_validate(dumped) == bundle == ImportBundle.model_validate_json(json.dumps(dumped))


def _mutate(path: tuple, value):
    data = json.loads(EXAMPLE.read_text())
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return json.dumps(data)


# Generator mistakes that must stay errors, each in both ways with the same errors.
MISTAKES = [
    (("domains", 0, "is_published"), "yes"),
    (("concepts", 0, "order_index"), "3"),
    (("concepts", 0, "order_index"), 3.0),
    (("domains", 0, "colour"), "#6366F1"),
    (("spark_links", 0, "weight"), "0.9"),
    (("sparks", 0, "estimated_minutes"), True),
    (("trails", 0, "difficulty_level"), "Intermediate"),
    (("metadata", "generated_at"), 1768469400),
    (("metadata", "generated_at"), "2026-01-15"),
    (("metadata", "generated_at"), "yesterday"),
    (("metadata", "generated_at"), None),
    (("sparks",), {}),
    (("metadata",), "ml-content-generator"),
    (("schema_version",), "2.0.0"),
]


@pytest.mark.parametrize(("path", "value"), MISTAKES, ids=lambda v: repr(v)[:30])
def test_mistakes_are_the_same_errors_both_ways(path, value, tmp_path):
    text = _mutate(path, value)
    (json_model, json_errors), (dict_model, dict_errors) = both_ways(text)
    assert json_model is None and dict_model is None
    assert json_errors == dict_errors
    # musingly_core.validate gives the same issues for the dict as for the file.
    file = tmp_path / "bundle.json"
    file.write_text(text)
    assert musingly_core.validate(json.loads(text)).issues == musingly_core.validate(file).issues != []


def test_a_lone_surrogate_is_refused_both_ways():
    """The one difference found: JSON text with an escaped lone surrogate is not valid JSON to the
    pipeline's parser (JSON_INVALID), while ``json.loads`` makes a string that the contract then
    refuses at its field. Both refuse the bundle."""
    text = _mutate(("sparks", 0, "title"), "bad \ud800 title")
    (_, json_errors), (_, dict_errors) = both_ways(text)
    assert [e[0] for e in json_errors] == ["json_invalid"]
    assert [(e[0], e[1]) for e in dict_errors] == [("string_unicode", ("sparks", 0, "title"))]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


_BASE = json.loads(EXAMPLE.read_text())
_ALL_PATHS = [p for p in _paths(_BASE) if p]
_SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
            | st.text(max_size=12)
            | st.sampled_from(["2026-01-15T09:30:00Z", "2026-01-15", "1700000000", "12:00", "true",
                               "beginner", "prerequisite", "#6366F1", "machine-learning", "1.0.0", "3"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(["slug", "title", "name", "x"]), inner, max_size=3),
                       max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_ALL_PATHS), _VALUES), min_size=1, max_size=3))
def test_any_replaced_value_gives_the_same_result_both_ways(changes):
    data = copy.deepcopy(_BASE)
    for path, value in changes:
        target = data
        try:
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced this path's parent
    text = json.dumps(data)
    (json_model, json_errors), (dict_model, dict_errors) = both_ways(text)
    assert json_errors == dict_errors
    assert json_model == dict_model
    from_file, from_dict = ValidationReport(file="x"), ValidationReport(file="x")
    parse_bundle(text.encode(), from_file)
    parse_bundle_object(json.loads(text), from_dict)
    assert from_file.issues == from_dict.issues


def test_a_model_built_in_python_validates_like_its_file(tmp_path):
    bundle = ImportBundle(
        schema_version="1.0.0", version_label="v1",
        metadata=ImportMetadata(generated_at="2026-01-15T09:30:00+00:00", source_system="gen"),
        sparks=[SparkImport(title="A", slug="a", content_md="# A")],
    )
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle.model_dump(), indent=2))
    in_memory, on_disk = musingly_core.validate(bundle), musingly_core.validate(path)
    assert in_memory.issues == on_disk.issues
    assert [(i.code, i.path) for i in on_disk.issues] == [("BUNDLE_ORPHAN_SPARK", "sparks[0]")]
    assert in_memory.counts == on_disk.counts and on_disk.valid
