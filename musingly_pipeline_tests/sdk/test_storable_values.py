"""What validation accepts fits the columns it is stored in: integer bounds, finite numbers, text.

Every value refused here used to pass validation and then fail (or, worse, change) on import.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from musingly_core.bundle_file import validate_bundle_file
from musingly_pipeline.seed_units.files import encode
from musingly_pipeline.seed_units.synthetic import synthetic_unit
from musingly_pipeline.seed_units.validation import KnownUsers, validate_unit

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "examples" / "ml-curriculum.json"
INT4_MAX = 2**31 - 1
USERS = KnownUsers.of([(1, "brian"), (2, "ada")])


def bundle_errors(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "bundle.json"
    path.write_text(text, encoding="utf-8")
    return [(i.code, i.path) for i in validate_bundle_file(path).report.errors]


def example() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", ["concepts", "concept_sparks"])
@pytest.mark.parametrize("value", [2**31, 2**32 + 7, 2**40, 2**63, 2**64, -(2**31) - 1])
def test_order_index_past_the_integer_column_is_refused_where_it_is(tmp_path, kind, value):
    data = example()
    data[kind][0]["order_index"] = value
    assert ("SCHEMA_INVALID_VALUE", f"{kind}[0].order_index") in bundle_errors(tmp_path, json.dumps(data))


@pytest.mark.parametrize("kind", ["concepts", "concept_sparks"])
def test_order_index_at_the_integer_column_limit_is_valid(tmp_path, kind):
    data = example()
    data[kind][0]["order_index"] = INT4_MAX
    assert bundle_errors(tmp_path, json.dumps(data)) == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_link_weight_must_be_a_finite_number(tmp_path, literal):
    data = example()
    data["spark_links"][0]["weight"] = 0.123456789
    text = json.dumps(data).replace("0.123456789", literal)
    assert literal in text
    errors = bundle_errors(tmp_path, text)
    assert errors == [("SCHEMA_INVALID_VALUE", "spark_links[0].weight")]


# Seed units: bigint columns, double precision columns, json columns.
FLOW_RUN = ("lessons", 0, "flow_run")


def unit_issues(text: str) -> list[tuple[str, str, str]]:
    result = validate_unit(text.encode("utf-8"), USERS)
    assert result.valid == (not any(i.severity.value == "error" for i in result.issues))
    return [(i.code, i.path, i.message) for i in result.issues]


def unit_with(path: tuple, value) -> str:
    document = synthetic_unit(3, lessons=2, exercises=4, steps=2)
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return encode(document).decode("utf-8")


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 2**60 + 1, 2**1100])
def test_an_integer_a_double_cannot_hold_exactly_is_refused_in_a_number_field(value):
    # total_cost is double precision: 2**60 + 1 used to come back as 2**60, 2**1100 to fail on import
    [(code, path, message)] = unit_issues(unit_with(FLOW_RUN + ("total_cost",), value))
    assert (code, path) == ("SCHEMA_INVALID_VALUE", "lessons[0].flow_run.total_cost")


@pytest.mark.parametrize("value", [2**53, -(2**53), 0, 7])
def test_an_integer_a_double_holds_exactly_is_valid_in_a_number_field(value):
    assert unit_issues(unit_with(FLOW_RUN + ("total_cost",), value)) == []


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_bigint_fields_are_bounded_to_the_column(value):
    [(code, path, _)] = unit_issues(unit_with(FLOW_RUN + ("total_tokens",), value))
    assert (code, path) == ("SCHEMA_INVALID_VALUE", "lessons[0].flow_run.total_tokens")


@pytest.mark.parametrize(
    ("field", "path"),
    [
        (FLOW_RUN + ("total_cost",), "lessons[0].flow_run.total_cost"),
        (FLOW_RUN + ("inputs",), "lessons[0].flow_run.inputs.big"),
        (("lessons", 1, "package", "quiz_metadata", "difficulty_distribution_target"),
         "lessons[1].package.quiz_metadata.difficulty_distribution_target.big"),
    ],
)
def test_a_number_past_the_double_range_is_refused_with_its_location(field, path):
    """1e400 parses as infinity, which neither a double precision column nor JSON text can keep."""
    marker = 123456.789
    value = marker if field[-1] == "total_cost" else {"big": marker}
    text = unit_with(field, value).replace(repr(marker), "1e400")
    assert "1e400" in text
    [(code, where, message)] = unit_issues(text)
    assert (code, where) == ("SCHEMA_INVALID_VALUE", path)
    assert "1e400" in message


def test_a_lone_surrogate_escape_is_refused_with_its_location():
    text = unit_with(("description",), "MARK").replace("MARK", "broken \\ud800 text")
    [(code, where, message)] = unit_issues(text)
    assert (code, where) == ("SCHEMA_INVALID_VALUE", "description")
    assert "surrogate" in message


def test_an_escaped_surrogate_pair_is_one_character_and_valid():
    text = unit_with(("description",), "MARK").replace("MARK", "emoji \\ud83d\\ude00")
    assert unit_issues(text) == []
    assert validate_unit(text.encode("utf-8"), USERS).unit.model.description == "emoji \U0001F600"


def test_finite_floats_still_round_trip_through_the_contract():
    assert unit_issues(unit_with(FLOW_RUN + ("total_cost",), 1.7976931348623157e308)) == []
    assert unit_issues(unit_with(FLOW_RUN + ("total_cost",), -0.0)) == []
    assert not math.isinf(1.7976931348623157e308)


# Text: PostgreSQL text cannot hold NUL (\u0000); the bundle must refuse it as the seed units do.
NUL_FIELDS = [
    ("version_label",), ("name",), ("metadata", "source_system"), ("metadata", "source_version"),
    ("metadata", "description"), ("domains", 0, "name"), ("domains", 0, "description"), ("domains", 0, "icon"),
    ("trails", 0, "title"), ("trails", 0, "description"), ("concepts", 0, "title"),
    ("concepts", 0, "description"), ("sparks", 0, "title"), ("sparks", 0, "summary"),
    ("sparks", 0, "content_md"), ("beacons", 0, "name"), ("beacons", 0, "description"),
    ("beacons", 0, "category"), ("spark_links", 0, "description"), ("concept_links", 0, "description"),
    ("sparks", 0, "slug"), ("domains", 0, "color"),
]


@pytest.mark.parametrize("field", NUL_FIELDS, ids=lambda f: ".".join(map(str, f)))
def test_a_nul_character_in_any_bundle_text_is_refused_with_its_location(tmp_path, field):
    data = example()
    target = data
    for part in field[:-1]:
        target = target[part]
    target[field[-1]] = "before\u0000after"
    errors = bundle_errors(tmp_path, json.dumps(data))
    path = ".".join(str(p) for p in field).replace(".0.", "[0].")
    assert ("SCHEMA_INVALID_VALUE", path) in errors, errors


def test_the_nul_message_is_the_seed_units_rule(tmp_path):
    data = example()
    data["sparks"][0]["content_md"] = "a\u0000b"
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    [issue] = validate_bundle_file(path).report.errors
    unit = unit_with(("description",), "a\u0000b")
    [seed_issue] = validate_unit(unit.encode("utf-8"), USERS).issues
    assert issue.code == seed_issue.code == "SCHEMA_INVALID_VALUE"
    assert issue.message.split(";")[0] == seed_issue.message.split(";")[0]
    assert "NUL" in issue.message


def test_an_escaped_backslash_before_u0000_is_text_not_nul(tmp_path):
    data = example()
    data["sparks"][0]["content_md"] = "write \\u0000 for NUL"
    assert bundle_errors(tmp_path, json.dumps(data)) == []
