"""One error model for the whole pipeline: :class:`MusinglyError` and the pipeline's codes.

Every refusal in every area (a bundle import, a snapshot operation, a seed unit, an import batch, a
signal, the API, the database) is a :class:`MusinglyError` (or a subclass an area names for itself)
with a stable ``code`` from :data:`PIPELINE_CODES`, a ``message`` that says the fix and, where there
is one, a ``path`` (a file, or a place such as ``sparks[3].slug``). The codes are registered beside the
bundle's (``musingly_core.report.CODES``), so the same code reaches ``musingly ... --json``, the REST
API and Dagster metadata. Codes are part of the interface: never rename one, add a new one instead.
"""

from __future__ import annotations

from enum import Enum

from musingly_core.report import CODES, Category, Issue, Severity, register_codes


class PipelineCategory(str, Enum):
    """Families of the pipeline's codes beyond the bundle's :class:`~musingly_core.report.Category`."""

    package = "package"
    storage = "storage"
    batches = "batches"
    api = "api"
    signals = "signals"
    command = "command"


class MusinglyError(Exception):
    """A refused operation: a stable registered ``code`` (the pipeline's, or a bundle file code such as
    ``FILE_NOT_FOUND``), a ``message`` that says the fix, an optional ``path``.

    ``str(error)`` is ``"CODE: message"``; :attr:`issue` is the same as a
    :class:`~musingly_core.report.Issue`, and :meth:`to_dict` is what every ``--json`` prints.
    """

    def __init__(self, code: str, message: str, path: str = ""):
        if code not in CODES:  # the bundle's codes (a file refused, ...) and the pipeline's
            raise ValueError(f"unknown error code {code!r}; add it to musingly_pipeline.errors.PIPELINE_CODES")
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    @property
    def issue(self) -> Issue:
        return Issue(self.code, Severity.error, self.path, self.message)

    def to_dict(self) -> dict[str, str]:
        return self.issue.to_dict()

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# code -> category, one section per area. Add an area's codes in its own section.
PIPELINE_CODES: dict[str, Enum] = {
    # --- Bundles and the snapshot store (musingly_pipeline.bundles) ---
    "IMPORT_BUNDLE_INVALID": PipelineCategory.storage,
    "IMPORT_SHA256_MISMATCH": PipelineCategory.storage,
    "IMPORT_SHRINK_REFUSED": PipelineCategory.storage,
    "IMPORT_NOTHING_TO_MERGE": PipelineCategory.storage,
    "IMPORT_REMOVE_WITHOUT_MERGE": PipelineCategory.storage,
    "IMPORT_REMOVAL_INVALID": PipelineCategory.storage,
    "IMPORT_REMOVAL_NOT_FOUND": PipelineCategory.storage,
    "IMPORT_BASE_DELETED": PipelineCategory.storage,
    "IMPORT_ID_INVALID": PipelineCategory.storage,
    "IMPORT_NOT_FOUND": PipelineCategory.storage,
    "PROMOTE_TARGET_MISSING": PipelineCategory.storage,
    "PROMOTE_TARGET_AMBIGUOUS": PipelineCategory.storage,
    "PROMOTE_NOTHING_READY": PipelineCategory.storage,
    "SNAPSHOT_ID_INVALID": PipelineCategory.storage,
    "SNAPSHOT_NOT_FOUND": PipelineCategory.storage,
    "SNAPSHOT_NOT_READY": PipelineCategory.storage,
    "SNAPSHOT_NOT_DRAFT": PipelineCategory.storage,
    "ROLLBACK_REFUSED": PipelineCategory.storage,
    "CLEANUP_KEEP_INVALID": PipelineCategory.storage,
    "DIFF_NOTHING_TO_COMPARE": PipelineCategory.storage,
    "SNAPSHOT_REFUSED": PipelineCategory.storage,
    "LIFECYCLE_SIGNAL_NOT_WRITTEN": PipelineCategory.signals,
    "STAGED_BUNDLE_MISSING": PipelineCategory.storage,
    "STAGED_BUNDLE_DAMAGED": PipelineCategory.storage,
    "PUSH_NAME_INVALID": PipelineCategory.storage,
    "PUSH_TOO_LARGE": PipelineCategory.storage,


    # --- Seed units (musingly_pipeline.seed_units): unit files, users.json, seed folders ---
    "FILE_OUTSIDE_FOLDER": Category.file,
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
    "SEED_FOLDER_NOT_FOUND": Category.file,
    "SEED_EXPORT_FAILED": Category.file,
    "SEED_UNIT_NOT_FOUND": PipelineCategory.storage,
    "SEED_FILE_REFUSED": Category.file,
    "SEED_ITEM_INVALID": Category.schema,


    # --- Import batches (musingly_pipeline.batches): refused operations, then item outcomes ---
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


    # --- Signals (musingly_pipeline.signals) ---
    "SIGNAL_INVALID": PipelineCategory.signals,
    "SIGNAL_MISSING_ID": PipelineCategory.signals,
    "SIGNAL_BAD_TIMESTAMP": PipelineCategory.signals,
    "SIGNAL_NAIVE_TIMESTAMP": PipelineCategory.signals,
    "SIGNAL_BAD_PAYLOAD": PipelineCategory.signals,
    "SIGNAL_UNREADABLE_LINE": PipelineCategory.signals,
    "SIGNAL_DUPLICATE_ID": PipelineCategory.signals,
    "SIGNAL_OUTSIDE_PARTITION": PipelineCategory.signals,
    "SIGNAL_FOREIGN_WRITER": PipelineCategory.signals,
    "SIGNAL_DUPLICATE_POLICY_INVALID": PipelineCategory.signals,
    "SIGNAL_NAME_INVALID": PipelineCategory.signals,
    "SIGNAL_WINDOW_INVALID": PipelineCategory.signals,
    "SIGNAL_CHECKPOINT_ORDER": PipelineCategory.signals,
    "SIGNAL_LIFECYCLE_EVENT_UNKNOWN": PipelineCategory.signals,
    "SIGNAL_STORE_NOT_DIRECTORY": PipelineCategory.signals,


    # --- The REST API (musingly_pipeline.api): requests it cannot take, besides the batch codes ---
    "REQUEST_INVALID": PipelineCategory.api,
    "REQUEST_NOT_UTF8": PipelineCategory.api,
    "REQUEST_TOO_DEEP": PipelineCategory.api,
    "REQUEST_TOO_LARGE": PipelineCategory.api,
    "UNAUTHORIZED": PipelineCategory.api,
    "NOT_FOUND": PipelineCategory.api,
    "METHOD_NOT_ALLOWED": PipelineCategory.api,
    "PROCESSING_UNAVAILABLE": PipelineCategory.api,
    "INTERNAL_ERROR": PipelineCategory.api,
    "INBOX_PUSH_REFUSED": PipelineCategory.api,
    "API_CONFIG_INVALID": PipelineCategory.api,


    # --- Shared: the database (the API answers it too), the command line ---
    "DATABASE_UNAVAILABLE": PipelineCategory.api,
    "MIGRATION_EDITED": PipelineCategory.storage,
    "MIGRATION_FAILED": PipelineCategory.storage,
    "USAGE_INVALID": PipelineCategory.command,
    "COMMAND_REFUSED": PipelineCategory.command,
}

register_codes(PIPELINE_CODES)
