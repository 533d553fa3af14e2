"""One error model for everything a bundle is checked for.

An :class:`Issue` has a stable code, a severity, a location (``sparks[3].slug``) and a message that
says the fix. The same list is what ``musingly_core.validate`` returns, what ``musingly validate``
prints and what the pipeline's Dagster checks report.

``CODES`` holds the bundle's codes. Code that reports other findings as issues (the pipeline's seed
units, import batches, signals) adds its own codes with :func:`register_codes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    error = "error"
    warning = "warning"


class Category(str, Enum):
    """The rule family a bundle code belongs to; the pipeline has one blocking Dagster check per family."""

    file = "file"
    schema = "schema"
    references = "references"
    uniqueness = "uniqueness"
    graph = "graph"
    content = "content"


# code -> category. Codes are part of the interface: never rename one, add a new one instead.
CODES: dict[str, Enum] = {
    "FILE_NOT_FOUND": Category.file,
    "FILE_UNREADABLE": Category.file,
    "FILE_EMPTY": Category.file,
    "FILE_NOT_UTF8": Category.file,
    "FILE_TOO_LARGE": Category.file,
    "JSON_INVALID": Category.schema,
    "JSON_DUPLICATE_KEY": Category.schema,
    "BUNDLE_NOT_OBJECT": Category.schema,
    "SCHEMA_VERSION_UNSUPPORTED": Category.schema,
    "SCHEMA_UNKNOWN_FIELD": Category.schema,
    "SCHEMA_MISSING_FIELD": Category.schema,
    "SCHEMA_WRONG_TYPE": Category.schema,
    "SCHEMA_INVALID_VALUE": Category.schema,
    "BUNDLE_UNKNOWN_REFERENCE": Category.references,
    "BUNDLE_DUPLICATE_SLUG": Category.uniqueness,
    "BUNDLE_DUPLICATE_JUNCTION": Category.uniqueness,
    "BUNDLE_DUPLICATE_LINK": Category.uniqueness,
    "BUNDLE_SELF_LINK": Category.graph,
    "BUNDLE_CYCLE": Category.graph,
    "BUNDLE_ORPHAN_SPARK": Category.content,
    "BUNDLE_EMPTY_CONCEPT": Category.content,
    "BUNDLE_PUBLISHED_IN_UNPUBLISHED": Category.content,
}


def register_codes(codes: Mapping[str, Enum]) -> None:
    """Add another area's codes (code -> category, any ``Enum`` member) beside the bundle's.

    Registering a code again with the same category is harmless; with another category it is a
    ``ValueError``, so two areas cannot give one code two meanings.
    """
    clashes = [code for code, category in codes.items() if CODES.get(code, category) != category]
    if clashes:
        raise ValueError(f"issue codes already registered with another category: {', '.join(sorted(clashes))}")
    CODES.update(codes)


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: ``code`` is stable, ``path`` points into the bundle, ``message`` says the fix."""

    code: str
    severity: Severity
    path: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown issue code {self.code!r}; add it to CODES or register_codes() it")

    @property
    def category(self) -> Enum:
        """A :class:`Category` for the bundle's codes; registered codes bring their own."""
        return CODES[self.code]

    def to_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "path": self.path,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.severity.value} {self.code} {where}{self.message}"


def error(code: str, path: str, message: str) -> Issue:
    return Issue(code, Severity.error, path, message)


def warning(code: str, path: str, message: str) -> Issue:
    return Issue(code, Severity.warning, path, message)


@dataclass
class ValidationReport:
    """What validating one file found, with the entity counts when the contracts parsed."""

    file: str
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.error]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.warning]

    @property
    def valid(self) -> bool:
        return not self.errors

    def errors_in(self, category: Enum) -> list[Issue]:
        return [i for i in self.errors if i.category is category]

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "valid": self.valid,
            "counts": dict(self.counts),
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
        }


def format_path(loc: tuple) -> str:
    """``('sparks', 3, 'slug')`` -> ``sparks[3].slug``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
