"""The pipeline's own issue codes, registered beside the bundle's, and issues as a Markdown table.

The :class:`~musingly_core.report.Issue` model and the bundle's codes live in ``musingly_core``
(the generator SDK). Seed units, import batches and signals report through the same model; their
codes are here and :func:`musingly_core.report.register_codes` adds them when ``musingly_pipeline``
is imported (``musingly_pipeline/__init__.py``), so every pipeline module may make issues with them.
"""

from __future__ import annotations

from enum import Enum

from musingly_core.report import Category, Issue, register_codes


class PipelineCategory(str, Enum):
    """Families of the pipeline's codes beyond the bundle's :class:`~musingly_core.report.Category`."""

    package = "package"
    storage = "storage"
    batches = "batches"
    api = "api"
    signals = "signals"


# code -> category. Codes are part of the interface: never rename one, add a new one instead.
PIPELINE_CODES: dict[str, Enum] = {
    # Seed folders: a file reached through a link that leads out of the folder.
    "FILE_OUTSIDE_FOLDER": Category.file,
    # Seed units (shared/seeds/001): unit files and users.json.
    "SEED_NOT_OBJECT": Category.schema,
    "SEED_BAD_DATETIME": Category.schema,
    "SEED_QUIZ_UNKNOWN_EXERCISE": PipelineCategory.package,
    "SEED_QUIZ_TOTAL_MISMATCH": PipelineCategory.package,
    "SEED_UNKNOWN_LEARNING_OBJECTIVE": PipelineCategory.package,
    "SEED_UNKNOWN_OPTION": PipelineCategory.package,
    "SEED_DUPLICATE_EXERCISE_ID": PipelineCategory.package,
    "SEED_FLOW_RUN_MISMATCH": Category.references,
    "SEED_UNKNOWN_OWNER": Category.references,
    "SEED_UNKNOWN_USER": Category.references,
    "SEED_UNKNOWN_REFERENCE": Category.references,
    "SEED_DUPLICATE_ID": Category.uniqueness,
    "SEED_DUPLICATE_USER": Category.uniqueness,
    "SEED_ID_CONFLICT": PipelineCategory.storage,
    "SEED_DATABASE_REJECTED": PipelineCategory.storage,
    # Bundle imports refused by a race (storage.snapshots.ImportRefused.code).
    "IMPORT_BASE_DELETED": PipelineCategory.storage,
    # Import batches (musingly_pipeline.batches): refused operations, then item outcomes.
    "BATCH_ID_INVALID": PipelineCategory.batches,
    "BATCH_NOT_FOUND": PipelineCategory.batches,
    "BATCH_STATUS_INVALID": PipelineCategory.batches,
    "BATCH_UNKNOWN_TYPE": PipelineCategory.batches,
    "BATCH_EMPTY": PipelineCategory.batches,
    "BATCH_ITEM_NOT_OBJECT": PipelineCategory.batches,
    "BATCH_ITEM_NOT_JSON": PipelineCategory.batches,
    "BATCH_BUSY": PipelineCategory.batches,
    "BATCH_HOOK_FAILED": PipelineCategory.batches,
    "BATCH_NOTHING_TO_REPROCESS": PipelineCategory.batches,
    "BATCH_DUPLICATE_TYPE": PipelineCategory.batches,
    "BATCH_PROCESSOR_INVALID": PipelineCategory.batches,
    "BATCH_REFUSED": PipelineCategory.batches,
    "BATCH_ENDPOINT_FAILED": PipelineCategory.batches,
    "ITEM_INVALID": PipelineCategory.batches,
    "ITEM_FAILED": PipelineCategory.batches,
    "ITEM_INTERRUPTED": PipelineCategory.batches,
    # The batch REST API (musingly_pipeline.api): requests it cannot take, besides the batch codes.
    "REQUEST_INVALID": PipelineCategory.api,
    "REQUEST_NOT_UTF8": PipelineCategory.api,
    "REQUEST_TOO_DEEP": PipelineCategory.api,
    "REQUEST_TOO_LARGE": PipelineCategory.api,
    "UNAUTHORIZED": PipelineCategory.api,
    "NOT_FOUND": PipelineCategory.api,
    "METHOD_NOT_ALLOWED": PipelineCategory.api,
    "DATABASE_UNAVAILABLE": PipelineCategory.api,
    "PROCESSING_UNAVAILABLE": PipelineCategory.api,
    "INTERNAL_ERROR": PipelineCategory.api,
    "INBOX_PUSH_REFUSED": PipelineCategory.api,
    "SIGNAL_INVALID": PipelineCategory.signals,
    "SIGNAL_MISSING_ID": PipelineCategory.signals,
    "SIGNAL_BAD_TIMESTAMP": PipelineCategory.signals,
    "SIGNAL_NAIVE_TIMESTAMP": PipelineCategory.signals,
    "SIGNAL_BAD_PAYLOAD": PipelineCategory.signals,
    "SIGNAL_UNREADABLE_LINE": PipelineCategory.signals,
    "SIGNAL_DUPLICATE_ID": PipelineCategory.signals,
    "SIGNAL_OUTSIDE_PARTITION": PipelineCategory.signals,
}

register_codes(PIPELINE_CODES)


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
