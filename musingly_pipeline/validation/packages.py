"""Validate seed data: one unit file, or ``users.json``, at a time.

:func:`validate_unit` is the per-item check of a seed import: bytes (or an already parsed JSON
tree) in, a :class:`UnitValidation` out, with every finding as an
:class:`~musingly_pipeline.validation.report.Issue` located like ``lessons[2].package.quiz[1]``.
Nothing here touches a database or raises for a user's mistake.

Rules (each with its code):

* ``SEED_QUIZ_UNKNOWN_EXERCISE``: every quiz id is in the package's exercise bank;
* ``SEED_QUIZ_TOTAL_MISMATCH``: ``quiz_metadata.total_items`` equals the quiz's length;
* ``SEED_UNKNOWN_LEARNING_OBJECTIVE``: every ``aligned_learning_objective`` and
  ``unit_learning_objective_ids`` entry is one of the unit's learning objectives;
* ``SEED_UNKNOWN_OPTION``: an answer key's ``option_id`` is one of the exercise's options;
* ``SEED_DUPLICATE_EXERCISE_ID``: exercise ids are unique within a package;
* ``SEED_FLOW_RUN_MISMATCH``: a lesson's ``flow_run_id`` equals its ``flow_run.id``;
* ``SEED_UNKNOWN_OWNER``: ``owner_key`` names a user of ``users.json`` (the message lists the keys);
* ``SEED_UNKNOWN_USER``: every ``user_id`` is a known user's id;
* ``SEED_UNKNOWN_REFERENCE``: a step run's ``flow_run_id``/``llm_request_id``, a lesson's
  ``flow_run_id`` without a ``flow_run``, a message's ``llm_request_id`` or ``conversation_id``
  point at a record of the same unit file;
* ``SEED_DUPLICATE_ID``: record ids (lessons, flow runs, step runs, LLM requests, resources,
  conversations, learning objectives, an exercise's options) are unique within the unit;
* ``SEED_BAD_DATETIME``: timestamps are ISO 8601 (the message names the field and the value);
* the contract codes of the bundle validator (``SCHEMA_*``, ``JSON_INVALID``, ``FILE_*``), plus
  ``JSON_DUPLICATE_KEY`` and ``SEED_NOT_OBJECT``.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from musingly_core.duplicate_keys import DuplicateKeys, duplicate_key_issue
from musingly_core.report import Issue, error, format_path

from musingly_pipeline.contracts.seed_units import CONVERSATION_GROUPS, Unit, UsersFile
from musingly_pipeline.validation.json_tree import locate

_BOM = b"\xef\xbb\xbf"
_TYPE_ERRORS = {
    "string_type": "a string", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "bool_type": "true or false", "list_type": "an array",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
}
# Union members pydantic appends to an error's location (`total_cost.int`); not part of the path.
_UNION_TAGS = {"int", "float", "str", "bool", "function-after[no_nul(), str]"}


@dataclass(frozen=True)
class KnownUsers:
    """The users a unit may refer to: ``owner_key`` -> ``key``, ``user_id`` -> ``id``."""

    keys: frozenset[str] = frozenset()
    ids: frozenset[int] = frozenset()

    @classmethod
    def of(cls, users: Iterable[tuple[int, str]]) -> KnownUsers:
        users = list(users)
        return cls(keys=frozenset(k for _, k in users), ids=frozenset(i for i, _ in users))

    def __or__(self, other: KnownUsers) -> KnownUsers:
        return KnownUsers(self.keys | other.keys, self.ids | other.ids)


@dataclass(frozen=True)
class ParsedUnit:
    """A unit file that passed validation: the JSON tree as written, and its validated model."""

    document: dict[str, Any]
    model: Unit
    source: str = ""

    @property
    def id(self) -> str | None:
        return self.document.get("id")

    @property
    def title(self) -> str:
        return self.model.title


@dataclass
class UnitValidation:
    """What validating one unit found; ``unit`` is set only when there are no errors."""

    source: str
    issues: list[Issue] = field(default_factory=list)
    unit: ParsedUnit | None = None

    @property
    def valid(self) -> bool:
        return self.unit is not None


@dataclass
class UsersValidation:
    source: str
    issues: list[Issue] = field(default_factory=list)
    document: dict[str, Any] | None = None
    model: UsersFile | None = None

    @property
    def valid(self) -> bool:
        return self.model is not None

    @property
    def known(self) -> KnownUsers:
        if self.model is None:
            return KnownUsers()
        return KnownUsers.of((u.id, u.key) for u in self.model.users)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_INFINITIES = (float("inf"), float("-inf"))
# A \uD800-\uDFFF escape: maybe half of a surrogate pair, maybe a lone one that UTF-8 cannot encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _unencodable(value: Any) -> bool:
    if not isinstance(value, str) or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_json(data: bytes | str) -> tuple[Any, list[Issue]]:
    """Parse JSON text strictly: UTF-8, no duplicate keys, no NaN/Infinity, numbers a double holds,
    no lone surrogate escapes (``\\ud800``: text PostgreSQL cannot store)."""
    if isinstance(data, bytes):
        if data.startswith(_BOM):
            data = data[len(_BOM):]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            return None, [error("FILE_NOT_UTF8", "", f"byte {exc.start} (line {line}) is not UTF-8; save the file as UTF-8")]
    else:
        text = data
    if not text.strip():
        return None, [error("FILE_EMPTY", "", "the file is empty; it must hold one JSON object")]
    duplicates = DuplicateKeys()
    overflowed: list[str] = []

    def parse_float(literal: str) -> float:
        value = float(literal)
        if value in _INFINITIES:
            overflowed.append(literal)
        return value

    try:
        document = json.loads(
            text, object_pairs_hook=duplicates.hook, parse_constant=_reject_constant, parse_float=parse_float,
        )
    except ValueError as exc:
        return None, [error("JSON_INVALID", "", f"not valid JSON: {exc}; fix the JSON syntax there")]
    issues = [duplicate_key_issue(path, key) for path, key in duplicates.located(document)]
    if overflowed:  # the walk finds them in document order, as the parser met them
        infinite = locate(document, lambda v: isinstance(v, float) and v in _INFINITIES)
        issues.extend(
            error("SCHEMA_INVALID_VALUE", path,
                  f"the number {literal} is out of range: a number must fit a double (at most about 1.8e308); "
                  "write a smaller number")
            for literal, (path, _) in zip(overflowed, infinite))
    if _SURROGATE_ESCAPE.search(text):
        issues.extend(
            error("SCHEMA_INVALID_VALUE", path,
                  f"{_show(value)} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), "
                  "which UTF-8 and PostgreSQL text cannot hold; write the whole character or remove it")
            for path, value in locate(document, _unencodable, keys=True))
    return (None, issues) if issues else (document, [])


def unit_document(data: bytes | str) -> tuple[dict[str, Any] | None, list[Issue]]:
    """The JSON object of a unit file, or the issues that say it is not one (it does not parse, or
    holds something else than an object): a file that no fix of a unit rule can make importable."""
    document, issues = parse_json(data)
    if issues:
        return None, issues
    if not isinstance(document, dict):
        return None, [error(
            "SEED_NOT_OBJECT", "",
            f"the file holds a JSON {_json_kind(document)}, but a unit file is one JSON object "
            '({"id": ..., "title": ..., "lessons": [...]})',
        )]
    return document, []


def validate_unit(data: bytes | str | dict[str, Any], users: KnownUsers, source: str = "") -> UnitValidation:
    """Every rule for one unit file (or its already parsed object); ``users`` are the users it may
    refer to."""
    result = UnitValidation(source=source)
    if isinstance(data, dict):
        document = data
    else:
        document, result.issues = unit_document(data)
        if result.issues:
            return result
    try:
        model = Unit.model_validate(document)
    except ValidationError as exc:
        result.issues.extend(contract_issues(exc, Unit))
        return result
    result.issues.extend(check_unit(model, users))
    if not any(i.severity.value == "error" for i in result.issues):
        result.unit = ParsedUnit(document=document, model=model, source=source)
    return result


def validate_users(data: bytes | str | dict[str, Any], source: str = "users.json") -> UsersValidation:
    """Contract and uniqueness of ``users.json``: ids, keys and emails are each unique."""
    result = UsersValidation(source=source)
    if isinstance(data, dict):
        document = data
    else:
        document, result.issues = parse_json(data)
        if result.issues:
            return result
    if not isinstance(document, dict):
        result.issues.append(error(
            "SEED_NOT_OBJECT", "",
            f'users.json holds a JSON {_json_kind(document)}; write {{"users": [{{"id": 1, "key": ..., "email": ...}}]}}',
        ))
        return result
    try:
        model = UsersFile.model_validate(document)
    except ValidationError as exc:
        result.issues.extend(contract_issues(exc, UsersFile))
        return result
    for attribute in ("id", "key", "email"):
        first: dict[Any, int] = {}
        for index, user in enumerate(model.users):
            value = getattr(user, attribute)
            if value in first:
                result.issues.append(error(
                    "SEED_DUPLICATE_USER", f"users[{index}].{attribute}",
                    f"{attribute} {value!r} is also users[{first[value]}]'s; each user needs its own",
                ))
            else:
                first[value] = index
    if not result.issues:
        result.document, result.model = document, model
    return result


def check_unit(unit: Unit, users: KnownUsers) -> list[Issue]:
    """The rules across records of one unit (the contracts already passed)."""
    issues: list[Issue] = []
    if unit.owner_key is not None and unit.owner_key not in users.keys:
        known = ", ".join(sorted(users.keys)) or "none (users.json has no users)"
        issues.append(error(
            "SEED_UNKNOWN_OWNER", "owner_key",
            f"Unknown owner_key {unit.owner_key!r}; known keys: {known}. "
            "Add the user to users.json or use one of the known keys",
        ))
    objectives = [lo.id for lo in unit.learning_objectives or ()]
    objective_ids = set(objectives)
    issues.extend(_duplicates(((f"learning_objectives[{i}].id", lo) for i, lo in enumerate(objectives)), "learning objective"))

    ids: dict[str, list[tuple[str, str]]] = {kind: [] for kind in ("lesson", "flow run", "step run", "LLM request", "resource", "conversation")}
    flow_runs: set[str] = set()
    llm_requests: set[str] = set()
    for i, lesson in enumerate(unit.lessons):
        at = f"lessons[{i}]"
        if lesson.id is not None:
            ids["lesson"].append((f"{at}.id", lesson.id))
        if lesson.flow_run is not None and lesson.flow_run.id is not None:
            ids["flow run"].append((f"{at}.flow_run.id", lesson.flow_run.id))
            flow_runs.add(lesson.flow_run.id)
        for j, step in enumerate(lesson.step_runs or ()):
            if step.id is not None:
                ids["step run"].append((f"{at}.step_runs[{j}].id", step.id))
        for j, request in enumerate(lesson.llm_requests or ()):
            if request.id is not None:
                ids["LLM request"].append((f"{at}.llm_requests[{j}].id", request.id))
                llm_requests.add(request.id)
        issues.extend(_check_package(lesson.package, f"{at}.package", objective_ids))
    for j, resource in enumerate(unit.resources or ()):
        if resource.id is not None:
            ids["resource"].append((f"resources[{j}].id", resource.id))
    conversations = _conversations(unit)
    for at, conversation in conversations:
        if conversation.id is not None:
            ids["conversation"].append((f"{at}.id", conversation.id))
    for kind, located in ids.items():
        issues.extend(_duplicates(located, kind))

    for i, lesson in enumerate(unit.lessons):
        at = f"lessons[{i}]"
        if lesson.flow_run is not None and "flow_run_id" in lesson.model_fields_set:
            if lesson.flow_run_id is None:
                issues.append(error(
                    "SEED_FLOW_RUN_MISMATCH", f"{at}.flow_run_id",
                    "flow_run_id is null but the lesson has a flow_run; set it to the flow run's id or leave it out",
                ))
            elif lesson.flow_run.id is not None and lesson.flow_run_id != lesson.flow_run.id:
                issues.append(error(
                    "SEED_FLOW_RUN_MISMATCH", f"{at}.flow_run_id",
                    f"flow_run_id {lesson.flow_run_id!r} does not match flow_run.id {lesson.flow_run.id!r}; "
                    "make them equal",
                ))
        elif lesson.flow_run is None and lesson.flow_run_id is not None and lesson.flow_run_id not in flow_runs:
            issues.append(_unknown(f"{at}.flow_run_id", "flow run", lesson.flow_run_id, flow_runs))
        for j, step in enumerate(lesson.step_runs or ()):
            if step.flow_run_id is not None and step.flow_run_id not in flow_runs:
                issues.append(_unknown(f"{at}.step_runs[{j}].flow_run_id", "flow run", step.flow_run_id, flow_runs))
            if step.llm_request_id is not None and step.llm_request_id not in llm_requests:
                issues.append(_unknown(f"{at}.step_runs[{j}].llm_request_id", "LLM request", step.llm_request_id, llm_requests))
    for at, conversation in conversations:
        for k, message in enumerate(conversation.messages or ()):
            where = f"{at}.messages[{k}]"
            if "conversation_id" in message.model_fields_set and message.conversation_id != conversation.id:
                issues.append(error(
                    "SEED_UNKNOWN_REFERENCE", f"{where}.conversation_id",
                    f"conversation_id {message.conversation_id!r} is not the id of the conversation holding the "
                    f"message ({conversation.id!r}); make them equal or leave conversation_id out",
                ))
            if message.llm_request_id is not None and message.llm_request_id not in llm_requests:
                issues.append(_unknown(f"{where}.llm_request_id", "LLM request", message.llm_request_id, llm_requests))

    for at, user_id in _user_ids(unit, conversations):
        if user_id not in users.ids:
            known = ", ".join(str(u) for u in sorted(users.ids)) or "none"
            issues.append(error(
                "SEED_UNKNOWN_USER", at,
                f"user_id {user_id} is not a user in users.json (known ids: {known}); add the user or fix the id",
            ))
    return issues


def _check_package(package, at: str, objectives: set[str]) -> list[Issue]:
    issues: list[Issue] = []
    bank: dict[str, int] = {}
    for k, exercise in enumerate(package.exercise_bank):
        where = f"{at}.exercise_bank[{k}]"
        if exercise.id in bank:
            issues.append(error(
                "SEED_DUPLICATE_EXERCISE_ID", f"{where}.id",
                f"exercise id {exercise.id!r} is also exercise_bank[{bank[exercise.id]}]'s; give each exercise its own id",
            ))
        else:
            bank[exercise.id] = k
        if exercise.aligned_learning_objective is not None and exercise.aligned_learning_objective not in objectives:
            issues.append(_unknown_objective(f"{where}.aligned_learning_objective", exercise.aligned_learning_objective, objectives))
        options = [o.id for o in exercise.options or ()]
        issues.extend(_duplicates(((f"{where}.options[{n}].id", o) for n, o in enumerate(options)), "option"))
        key = exercise.answer_key
        if key is not None and key.option_id is not None and key.option_id not in options:
            listed = ", ".join(options) or "none"
            issues.append(error(
                "SEED_UNKNOWN_OPTION", f"{where}.answer_key.option_id",
                f"option_id {key.option_id!r} is not one of the exercise's options ({listed}); use one of them",
            ))
    for n, objective in enumerate(package.unit_learning_objective_ids or ()):
        if objective not in objectives:
            issues.append(_unknown_objective(f"{at}.unit_learning_objective_ids[{n}]", objective, objectives))
    for n, exercise_id in enumerate(package.quiz):
        if exercise_id not in bank:
            close = difflib.get_close_matches(exercise_id, bank.keys(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            issues.append(error(
                "SEED_QUIZ_UNKNOWN_EXERCISE", f"{at}.quiz[{n}]",
                f"quiz id {exercise_id!r} is not in the exercise bank; {hint}add the exercise or remove the id",
            ))
    total = package.quiz_metadata.total_items
    if total != len(package.quiz):
        issues.append(error(
            "SEED_QUIZ_TOTAL_MISMATCH", f"{at}.quiz_metadata.total_items",
            f"total_items is {total} but the quiz has {len(package.quiz)} item(s); set it to {len(package.quiz)}",
        ))
    return issues


def _unknown_objective(at: str, objective: str, objectives: set[str]) -> Issue:
    known = ", ".join(sorted(objectives)) or "none"
    return error(
        "SEED_UNKNOWN_LEARNING_OBJECTIVE", at,
        f"learning objective {objective!r} is not one of the unit's learning_objectives ({known}); "
        "use one of them or add it to the unit",
    )


def _unknown(at: str, kind: str, value: str, known: set[str]) -> Issue:
    close = difflib.get_close_matches(value, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return error(
        "SEED_UNKNOWN_REFERENCE", at,
        f"{kind} {value!r} is not in this unit file; {hint}every {kind} referred to must be in the same unit file",
    )


def _duplicates(located: Iterable[tuple[str, str]], kind: str) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[str, str] = {}
    for at, value in located:
        if value in first:
            issues.append(error(
                "SEED_DUPLICATE_ID", at,
                f"{kind} id {value!r} is already used at {first[value]}; ids must be unique within a unit",
            ))
        else:
            first[value] = at
    return issues


def _conversations(unit: Unit) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if unit.learning_conversations is not None:
        for group in CONVERSATION_GROUPS:
            for k, conversation in enumerate(getattr(unit.learning_conversations, group) or ()):
                found.append((f"learning_conversations.{group}[{k}]", conversation))
    return found


def _user_ids(unit: Unit, conversations) -> Iterable[tuple[str, int]]:
    for i, lesson in enumerate(unit.lessons):
        if lesson.flow_run is not None and lesson.flow_run.user_id is not None:
            yield f"lessons[{i}].flow_run.user_id", lesson.flow_run.user_id
        for j, request in enumerate(lesson.llm_requests or ()):
            if request.user_id is not None:
                yield f"lessons[{i}].llm_requests[{j}].user_id", request.user_id
    for j, resource in enumerate(unit.resources or ()):
        if resource.user_id is not None:
            yield f"resources[{j}].user_id", resource.user_id
    for at, conversation in conversations:
        if conversation.user_id is not None:
            yield f"{at}.user_id", conversation.user_id


def contract_issues(exc: ValidationError, root: type[BaseModel]) -> list[Issue]:
    """Pydantic's errors as issues, one per location."""
    issues: list[Issue] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        path = format_path(loc)
        kind = err["type"]
        if path in seen and kind not in ("extra_forbidden", "missing"):
            continue
        seen.add(path)
        got = err.get("input")
        if kind == "iso_datetime":
            issues.append(error(
                "SEED_BAD_DATETIME", path,
                f"`{loc[-1]}` is not an ISO 8601 datetime: {got!r}; write it like "
                '"2024-01-15T10:30:00Z", "2024-01-15T10:30:00+00:00" or "2024-01-15T10:30:00"',
            ))
        elif kind == "extra_forbidden":
            name = str(loc[-1])
            model = _model_at(root, loc[:-1])
            hint = ""
            if model is not None:
                close = difflib.get_close_matches(name, model.model_fields.keys(), n=1, cutoff=0.6)
                if close:
                    hint = f"did you mean `{close[0]}`? "
            issues.append(error("SCHEMA_UNKNOWN_FIELD", path, f"unknown field `{name}`; {hint}remove it or fix its spelling"))
        elif kind == "missing":
            issues.append(error("SCHEMA_MISSING_FIELD", path, f"required field `{loc[-1]}` is missing; add it"))
        elif kind in _TYPE_ERRORS:
            issues.append(error(
                "SCHEMA_WRONG_TYPE", path,
                f"expected {_TYPE_ERRORS[kind]}, got {_show(got)}; change the value's type",
            ))
        else:
            issues.append(error("SCHEMA_INVALID_VALUE", path, f"{err['msg']}; got {_show(got)}"))
    return issues


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    model = root
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        found = _inner_model(info.annotation)
        if found is None:
            return None
        model = found
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Annotated, typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "number, boolean or null"


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
