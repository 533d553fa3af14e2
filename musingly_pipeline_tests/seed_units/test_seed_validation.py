"""Seed unit contracts and package validation: every rule has a failing example."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from musingly_pipeline.seed_units.files import encode, safe_name, unit_file_names
from musingly_pipeline.seed_units.synthetic import synthetic_unit, synthetic_users
from musingly_pipeline.seed_units.records import timestamp_in, timestamp_out
from musingly_pipeline.seed_units.validation import KnownUsers, validate_unit, validate_users

USERS = KnownUsers.of([(1, "brian"), (2, "ada")])


def unit() -> dict:
    return synthetic_unit(3, lessons=2, exercises=4, steps=2)


def codes(document, users=USERS) -> list[tuple[str, str]]:
    result = validate_unit(encode(document), users)
    return [(i.code, i.path) for i in result.issues]


def test_synthetic_unit_is_valid():
    result = validate_unit(encode(unit()), USERS)
    assert result.issues == [] and result.valid


def _set(path, value):
    def change(document):
        target = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return change


def _delete(path):
    def change(document):
        target = document
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    return change


PKG = ("lessons", 1, "package")
RULES = [
    ("quiz id not in bank", _set(PKG + ("quiz", 1), "ex_99"),
     "SEED_QUIZ_UNKNOWN_EXERCISE", "lessons[1].package.quiz[1]"),
    ("total_items wrong", _set(PKG + ("quiz_metadata", "total_items"), 7),
     "SEED_QUIZ_TOTAL_MISMATCH", "lessons[1].package.quiz_metadata.total_items"),
    ("aligned objective unknown", _set(PKG + ("exercise_bank", 2, "aligned_learning_objective"), "lo_9"),
     "SEED_UNKNOWN_LEARNING_OBJECTIVE", "lessons[1].package.exercise_bank[2].aligned_learning_objective"),
    ("unit objective id unknown", _set(PKG + ("unit_learning_objective_ids", 0), "lo_404"),
     "SEED_UNKNOWN_LEARNING_OBJECTIVE", "lessons[1].package.unit_learning_objective_ids[0]"),
    ("answer key option unknown", _set(PKG + ("exercise_bank", 0, "answer_key", "option_id"), "opt_zz"),
     "SEED_UNKNOWN_OPTION", "lessons[1].package.exercise_bank[0].answer_key.option_id"),
    ("exercise ids repeat", _set(PKG + ("exercise_bank", 3, "id"), "ex_1"),
     "SEED_DUPLICATE_EXERCISE_ID", "lessons[1].package.exercise_bank[3].id"),
    ("flow_run_id differs", _set(("lessons", 0, "flow_run_id"), "another-flow"),
     "SEED_FLOW_RUN_MISMATCH", "lessons[0].flow_run_id"),
    ("flow_run_id null with a flow run", _set(("lessons", 0, "flow_run_id"), None),
     "SEED_FLOW_RUN_MISMATCH", "lessons[0].flow_run_id"),
    ("owner unknown", _set(("owner_key",), "carol"), "SEED_UNKNOWN_OWNER", "owner_key"),
    ("user id unknown", _set(("lessons", 0, "flow_run", "user_id"), 42),
     "SEED_UNKNOWN_USER", "lessons[0].flow_run.user_id"),
    ("step's llm request not in unit", _set(("lessons", 0, "step_runs", 1, "llm_request_id"), "nope"),
     "SEED_UNKNOWN_REFERENCE", "lessons[0].step_runs[1].llm_request_id"),
    ("message in the wrong conversation", _set(("learning_conversations", "coach", 0, "messages", 2, "conversation_id"), "x"),
     "SEED_UNKNOWN_REFERENCE", "learning_conversations.coach[0].messages[2].conversation_id"),
    ("lesson ids repeat", lambda d: d["lessons"][1].update(id=d["lessons"][0]["id"]),
     "SEED_DUPLICATE_ID", "lessons[1].id"),
    ("bad datetime", _set(("lessons", 0, "step_runs", 0, "created_at"), "15/01/2024 10:30"),
     "SEED_BAD_DATETIME", "lessons[0].step_runs[0].created_at"),
    ("package missing", _delete(("lessons", 0, "package")), "SCHEMA_MISSING_FIELD", "lessons[0].package"),
    ("unknown field", _set(("lessons", 0, "titel"), "x"), "SCHEMA_UNKNOWN_FIELD", "lessons[0].titel"),
    ("wrong type", _set(("target_lesson_count",), "5"), "SCHEMA_WRONG_TYPE", "target_lesson_count"),
    ("number as string", _set(("lessons", 0, "flow_run", "total_cost"), "cheap"),
     "SCHEMA_WRONG_TYPE", "lessons[0].flow_run.total_cost"),
]


@pytest.mark.parametrize("change, code, path", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_every_rule_has_a_failing_example(change, code, path):
    document = unit()
    change(document)
    found = codes(document)
    assert (code, path) in found, found


def test_unknown_owner_lists_the_known_keys():
    document = unit()
    document["owner_key"] = "carol"
    [issue] = validate_unit(encode(document), USERS).issues
    assert "Unknown owner_key 'carol'" in issue.message and "ada, brian" in issue.message


def test_bad_datetime_names_field_and_value():
    document = unit()
    document["lessons"][0]["podcast_generated_at"] = "yesterday"
    [issue] = validate_unit(encode(document), USERS).issues
    assert issue.code == "SEED_BAD_DATETIME"
    assert "`podcast_generated_at`" in issue.message and "'yesterday'" in issue.message


def test_free_form_objects_take_any_fields():
    document = unit()
    document["lessons"][0]["flow_run"]["inputs"] = {"anything": [1, {"nested": None}], "k": "v"}
    document["art_image"] = {}
    assert codes(document) == []


@pytest.mark.parametrize("data, code", [
    (b"", "FILE_EMPTY"),
    (b"{\"title\": ", "JSON_INVALID"),
    (b"[1, 2]", "SEED_NOT_OBJECT"),
    (b"{\"title\": \"a\", \"title\": \"b\", \"lessons\": []}", "JSON_DUPLICATE_KEY"),
    (b"{\"title\": \"a\", \"lessons\": [], \"target_lesson_count\": NaN}", "JSON_INVALID"),
    (b"\xff\xfe{}", "FILE_NOT_UTF8"),
])
def test_file_level_problems(data, code):
    assert [i.code for i in validate_unit(data, USERS).issues] == [code]


def test_users_file_rules():
    assert validate_users(encode(synthetic_users())).valid
    users = synthetic_users()
    users["users"][1]["key"] = "brian"
    result = validate_users(encode(users))
    assert [(i.code, i.path) for i in result.issues] == [("SEED_DUPLICATE_USER", "users[1].key")]
    assert [i.code for i in validate_users(b'{"users": [{"id": 1}]}').issues] == ["SCHEMA_MISSING_FIELD"] * 2


@pytest.mark.parametrize("text", [
    "2024-01-15T10:30:00Z", "2024-01-15T10:30:00+00:00", "2024-01-15T10:30:00", "2024-01-15T10:30:00.5Z",
    "2024-01-15 10:30:00.123456-05:30", "2024-01-15", "2024-01-15T10:30", "20240115T103000Z",
    "2024-01-15T10:30:00.1234567+00:00",
])
def test_every_timestamp_spelling_comes_back(text):
    value, style = timestamp_in(text)
    assert value.astimezone(timezone.utc) == datetime.fromisoformat(text).replace(
        tzinfo=datetime.fromisoformat(text).tzinfo or timezone.utc).astimezone(timezone.utc)
    assert timestamp_out(value, style) == text


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
       st.sampled_from(["", "Z", "+00:00", "+05:45", "-11:00"]), st.integers(0, 6))
def test_styled_timestamps_round_trip(moment, suffix, digits):
    text = moment.isoformat(timespec="seconds")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    text += suffix
    value, style = timestamp_in(text)
    assert not style.startswith("=")
    assert timestamp_out(value, style) == text


def test_file_names_are_safe_and_distinct():
    assert safe_name("../../etc/passwd") == "etc-passwd"
    assert safe_name("..") == "unit" and safe_name("") == "unit" and safe_name("学习") == "unit"
    assert safe_name("Café: a/b\\c") == "cafe-a-b-c"
    names = unit_file_names([("id-1", "Same Title"), ("id-2", "Same Title"), ("id-3", "same title!")])
    assert names == {"id-1": "same-title.json", "id-2": "same-title-id-2.json", "id-3": "same-title-id-3.json"}
    assert all("/" not in n and ".." not in n for n in names.values())


def test_canonical_encoding_is_stable():
    document = unit()
    data = encode(document)
    assert data.endswith(b"}\n") and b"\n  \"id\"" in data and "café".encode() in data
    assert encode(json.loads(data)) == data
    assert copy.deepcopy(document) == json.loads(data)
