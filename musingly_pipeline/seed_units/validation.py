"""Validate seed data: one unit file, or ``users.json``, at a time.

:func:`validate_unit` is the per-item check of a seed import: bytes (or an already parsed JSON
tree) in, a :class:`UnitValidation` out, with every finding as an
:class:`~musingly_core.report.Issue` located like ``lessons[2].package.quiz[1]``.
Nothing here touches a database or raises for a user's mistake.

The file must parse (:mod:`~musingly_pipeline.seed_units.parse`: ``FILE_*``, ``JSON_INVALID``,
``JSON_DUPLICATE_KEY``, ``SEED_NOT_OBJECT``), then pass the contracts
(:mod:`~musingly_pipeline.seed_units.contracts`: the bundle validator's ``SCHEMA_*`` codes, and
``SEED_BAD_DATETIME`` for a timestamp that is not ISO 8601, the message naming the field and the
value), then the rules across records (:mod:`~musingly_pipeline.seed_units.rules`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from musingly_core.contract_errors import schema_issue
from musingly_core.report import Issue, error, format_path

from musingly_pipeline.seed_units.contracts import Unit, UsersFile
from musingly_pipeline.seed_units.parse import json_kind, parse_json, unit_document
from musingly_pipeline.seed_units.rules import KnownUsers, check_unit

# Union members pydantic appends to an error's location (`total_cost.int`); not part of the path.
_UNION_TAGS = {"int", "float", "str", "bool", "function-after[no_nul(), str]"}


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
            f'users.json holds a JSON {json_kind(document)}; write {{"users": [{{"id": 1, "key": ..., "email": ...}}]}}',
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



def contract_issues(exc: ValidationError, root: type[BaseModel]) -> list[Issue]:
    """Pydantic's errors as issues, one per location (musingly_core's translation, as for bundles),
    a timestamp that is not ISO 8601 as ``SEED_BAD_DATETIME``."""
    issues: list[Issue] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        path = format_path(loc)
        kind = err["type"]
        if path in seen and kind not in ("extra_forbidden", "missing"):
            continue
        seen.add(path)
        if kind == "iso_datetime":
            issues.append(error(
                "SEED_BAD_DATETIME", path,
                f"`{loc[-1]}` is not an ISO 8601 datetime: {err.get('input')!r}; write it like "
                '"2024-01-15T10:30:00Z", "2024-01-15T10:30:00+00:00" or "2024-01-15T10:30:00"',
            ))
        else:
            issues.append(schema_issue(err, root, loc))
    return issues
