"""Repeated JSON keys are reported with their location, in bundles and seed units alike.

A JSON parser keeps the last of repeated keys, so a generator that wrote a field twice silently
lost the first value: the audit found 65 of 152 such bundles accepted.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from musingly_core.bundle_file import read_bundle, validate_bundle_file
from musingly_core.duplicate_keys import count_keys, find_duplicate_keys
from musingly_pipeline.seed_units.files import encode
from musingly_pipeline.seed_units.synthetic import synthetic_unit
from musingly_pipeline.seed_units.validation import KnownUsers, validate_unit

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
EXAMPLE = EXAMPLES / "ml-curriculum.json"


def errors(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "bundle.json"
    path.write_text(text, encoding="utf-8")
    return [(i.code, i.path) for i in validate_bundle_file(path).report.errors]


def pretty() -> str:
    return json.dumps(json.loads(EXAMPLE.read_text(encoding="utf-8")), indent=2)


def repeat_in(text: str, anchor: str, extra: str) -> str:
    """``text`` with ``extra`` (`"key": value,`) inserted before the first ``anchor``."""
    assert anchor in text
    return text.replace(anchor, extra + anchor, 1)


@pytest.mark.parametrize(
    ("anchor", "extra", "path"),
    [
        ('"version_label"', '"version_label": "other",', "version_label"),
        ('"source_system"', '"source_system": "other",', "metadata.source_system"),
        ('"slug": "linear-algebra-basics"', '"slug": "renamed",', "sparks[0].slug"),
        ('"content_md"', '"content_md": "lost",', "sparks[0].content_md"),
        ('"order_index"', '"order_index": 7,', "concepts[0].order_index"),
        # the same key spelled with an escape, and with whitespace before its colon
        ('"slug": "linear-algebra-basics"', '"sl\\u0075g": "renamed",', "sparks[0].slug"),
        ('"slug": "linear-algebra-basics"', '"slug"  \n\t : "renamed",', "sparks[0].slug"),
        ('"sparks"', '"sparks": [],', "sparks"),
    ],
)
def test_a_repeated_key_is_reported_where_it_is(tmp_path, anchor, extra, path):
    text = repeat_in(pretty(), anchor, extra)
    assert errors(tmp_path, text) == [("JSON_DUPLICATE_KEY", path)]


def test_every_repeated_key_is_reported_and_the_message_says_the_fix(tmp_path):
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    text = json.dumps(data)
    for spark in data["sparks"][:3]:
        slug = json.dumps(spark["slug"])
        text = text.replace(f'"slug": {slug}', f'"title": "x", "slug": {slug}', 1)
    path = tmp_path / "bundle.json"
    path.write_text(text, encoding="utf-8")
    report = validate_bundle_file(path).report
    assert [(i.code, i.path) for i in report.errors] == [
        ("JSON_DUPLICATE_KEY", f"sparks[{n}].title") for n in range(3)]
    assert "`title`" in report.errors[0].message and "keep one" in report.errors[0].message


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_valid_bundles_in_any_layout_have_no_duplicates(tmp_path, example):
    data = json.loads(example.read_text(encoding="utf-8"))
    for layout in (dict(indent=2), dict(separators=(",", ":")), dict(separators=(" , ", " : ")), dict(indent="\t")):
        assert errors(tmp_path, json.dumps(data, **layout)) == [], layout


def test_text_that_looks_like_keys_is_not_counted(tmp_path):
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["sparks"][0]["content_md"] = 'JSON: {"slug": "a", "slug" : "b"} and \\": and "\\\\": here'
    data["sparks"][1]["summary"] = '"title":'
    data["sparks"][2]["content_md"] = "a colon after whitespace : and a quote \" : there"
    text = json.dumps(data, ensure_ascii=False)
    assert errors(tmp_path, text) == []
    bundle = read_bundle(tmp_path / "bundle.json").bundle
    assert bundle.sparks[0].content_md == data["sparks"][0]["content_md"]


def test_count_keys_matches_a_parse_on_generated_documents():
    rng = random.Random(7)
    for _ in range(200):
        keys = 0

        def value(depth):
            nonlocal keys
            kind = rng.random()
            if depth > 3 or kind < 0.3:
                return rng.choice(['a"b:c', 'x\\": y', " : ", ":x", "\\", 3, None, 1.5, '"k":', 'k" :'])
            if kind < 0.6:
                return [value(depth + 1) for _ in range(rng.randint(0, 3))]
            obj = {f'k{i}{rng.choice(["", ":", chr(34)])}': value(depth + 1) for i in range(rng.randint(0, 3))}
            keys += sum(key[-1].isalnum() for key in obj)  # keys a contract field could have
            return obj

        document = {"root": value(0)}
        keys += 1
        separators = rng.choice([(",", ":"), (", ", ": "), (",", " :"), (",\n", "\n:\t")])
        text = json.dumps(document, separators=separators)
        assert count_keys(text.encode()) == keys, text


def test_find_duplicate_keys_locates_nested_repeats():
    text = '{"a": [{"b": 1}, {"c": {"d": 1, "d": 2}, "c": 3}], "a": 1}'
    assert find_duplicate_keys(text) == [("a", "a"), ("a[1].c", "c"), ("a[1].c.d", "d")]


def test_seed_units_report_the_location_of_a_repeated_key():
    document = synthetic_unit(3, lessons=2, exercises=4, steps=2)
    text = encode(document).decode("utf-8")
    title = json.dumps(document["lessons"][1]["title"])
    text = text.replace(f'"title": {title}', f'"title": "first", "title": {title}', 1)
    result = validate_unit(text.encode("utf-8"), KnownUsers.of([(1, "brian"), (2, "ada")]))
    assert [(i.code, i.path) for i in result.issues] == [("JSON_DUPLICATE_KEY", "lessons[1].title")]
