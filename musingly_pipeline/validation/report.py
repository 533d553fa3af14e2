"""One error model for everything the pipeline checks.

An :class:`Issue` has a stable code, a severity, a location (``sparks[3].slug``) and a message that
says the fix. The same list feeds the CLI's text and JSON output and Dagster's metadata and checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    error = "error"
    warning = "warning"


class Category(str, Enum):
    """The rule family a code belongs to; Dagster has one blocking check per family."""

    file = "file"
    schema = "schema"
    references = "references"
    uniqueness = "uniqueness"
    graph = "graph"
    content = "content"
    package = "package"
    storage = "storage"
    batches = "batches"
    signals = "signals"


# code -> category. Codes are part of the interface: never rename one, add a new one instead.
CODES: dict[str, Category] = {
    "FILE_NOT_FOUND": Category.file,
    "FILE_UNREADABLE": Category.file,
    "FILE_EMPTY": Category.file,
    "FILE_NOT_UTF8": Category.file,
    "FILE_TOO_LARGE": Category.file,
    "FILE_OUTSIDE_FOLDER": Category.file,
    "JSON_INVALID": Category.schema,
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
    # Seed units (shared/seeds/001): unit files and users.json.
    "JSON_DUPLICATE_KEY": Category.schema,
    "SEED_NOT_OBJECT": Category.schema,
    "SEED_BAD_DATETIME": Category.schema,
    "SEED_QUIZ_UNKNOWN_EXERCISE": Category.package,
    "SEED_QUIZ_TOTAL_MISMATCH": Category.package,
    "SEED_UNKNOWN_LEARNING_OBJECTIVE": Category.package,
    "SEED_UNKNOWN_OPTION": Category.package,
    "SEED_DUPLICATE_EXERCISE_ID": Category.package,
    "SEED_FLOW_RUN_MISMATCH": Category.references,
    "SEED_UNKNOWN_OWNER": Category.references,
    "SEED_UNKNOWN_USER": Category.references,
    "SEED_UNKNOWN_REFERENCE": Category.references,
    "SEED_DUPLICATE_ID": Category.uniqueness,
    "SEED_DUPLICATE_USER": Category.uniqueness,
    "SEED_ID_CONFLICT": Category.storage,
    "SEED_DATABASE_REJECTED": Category.storage,
    # Bundle imports refused by a race (storage.snapshots.ImportRefused.code).
    "IMPORT_BASE_DELETED": Category.storage,
    # Import batches (musingly_pipeline.batches): refused operations, then item outcomes.
    "BATCH_ID_INVALID": Category.batches,
    "BATCH_NOT_FOUND": Category.batches,
    "BATCH_STATUS_INVALID": Category.batches,
    "BATCH_UNKNOWN_TYPE": Category.batches,
    "BATCH_EMPTY": Category.batches,
    "BATCH_ITEM_NOT_OBJECT": Category.batches,
    "BATCH_ITEM_NOT_JSON": Category.batches,
    "BATCH_BUSY": Category.batches,
    "BATCH_HOOK_FAILED": Category.batches,
    "BATCH_NOTHING_TO_REPROCESS": Category.batches,
    "BATCH_DUPLICATE_TYPE": Category.batches,
    "BATCH_PROCESSOR_INVALID": Category.batches,
    "ITEM_INVALID": Category.batches,
    "ITEM_FAILED": Category.batches,
    "ITEM_INTERRUPTED": Category.batches,
    "SIGNAL_INVALID": Category.signals,
    "SIGNAL_MISSING_ID": Category.signals,
    "SIGNAL_BAD_TIMESTAMP": Category.signals,
    "SIGNAL_NAIVE_TIMESTAMP": Category.signals,
    "SIGNAL_BAD_PAYLOAD": Category.signals,
    "SIGNAL_UNREADABLE_LINE": Category.signals,
    "SIGNAL_DUPLICATE_ID": Category.signals,
    "SIGNAL_OUTSIDE_PARTITION": Category.signals,
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: ``code`` is stable, ``path`` points into the bundle, ``message`` says the fix."""

    code: str
    severity: Severity
    path: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown issue code {self.code!r}; add it to CODES")

    @property
    def category(self) -> Category:
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

    def errors_in(self, category: Category) -> list[Issue]:
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


def markdown_table(issues: list[Issue], limit: int = 50) -> str:
    """Issues as a Markdown table (for Dagster metadata), at most ``limit`` rows."""
    if not issues:
        return "No issues."
    rows = ["| severity | code | path | message |", "|---|---|---|---|"]
    for issue in issues[:limit]:
        message = issue.message.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {issue.severity.value} | {issue.code} | `{issue.path}` | {message} |")
    if len(issues) > limit:
        rows.append(f"| | | | … and {len(issues) - limit} more |")
    return "\n".join(rows)
