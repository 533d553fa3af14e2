"""The rules across the records of one unit file, once its contracts passed (each with its code):

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
  conversations, learning objectives, an exercise's options) are unique within the unit.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from musingly_core.report import Issue, error

from musingly_pipeline.seed_units.contracts import CONVERSATION_GROUPS, Unit


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
