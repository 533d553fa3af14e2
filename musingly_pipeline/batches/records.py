"""The records of the import batch tables, as the batches area passes them around: an item as a
processor sees it, an item with its outcome, a log line, a batch's summary, and what a chunk writes
back (outcomes and log entries). Frozen dataclasses; :mod:`musingly_pipeline.batches.store` reads
and writes them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from musingly_pipeline.batches.item_json import dumps

BATCH_STATUSES = ("pending", "processing", "completed", "failed")
ITEM_STATUSES = ("pending", "processing", "completed", "failed", "skipped")


@dataclass(frozen=True)
class ImportBatchItem:
    """One item of a batch as a processor sees it: its source data and where it came from."""

    id: int
    batch_id: uuid.UUID
    item_index: int
    source_data: dict[str, Any]
    item_key: str
    attempts: int = 0
    source_item_id: int | None = None


@dataclass(frozen=True)
class ItemRecord:
    """One row of ``import_batch_items`` with its outcome, for people (`musingly batch show`)."""

    id: int
    item_index: int
    status: str
    attempts: int
    item_key: str
    source_data: dict[str, Any]
    error_code: str | None
    error_message: str | None
    error_traceback: str | None
    target_table: str | None
    target_id: str | None
    result: Any
    duplicate_of: int | None
    source_item_id: int | None
    duration_ms: float | None
    processed_at: datetime | None

    @property
    def source_echo(self) -> dict[str, Any]:
        """The source data as listings show it: see :func:`echo_source_data`."""
        return echo_source_data(self.source_data)

    def to_dict(self) -> dict[str, Any]:
        """The row for people and tools; the source data as :attr:`source_echo`."""
        values = {name: jsonable(getattr(self, name)) for name in self.__dataclass_fields__}
        values["source_data"] = self.source_echo
        return values


# What listings (`musingly batch show`, GET /api/batches/{id}) repeat of an item's source data: a
# key or value whose text is longer than this is summarised, and at most ECHO_KEYS keys are shown.
# The data itself stays whole in the database, for reprocessing.
ECHO_VALUE_CHARS = 256
ECHO_KEYS = 50


def echo_source_data(source_data: dict[str, Any]) -> dict[str, Any]:
    """``source_data`` with every top-level value whose JSON text is longer than ECHO_VALUE_CHARS
    replaced by ``"<N characters omitted>"``, long keys cut, and keys past ECHO_KEYS left out."""
    shown: dict[str, Any] = {}
    for index, (key, value) in enumerate(source_data.items()):
        if index == ECHO_KEYS:
            shown["…"] = f"<{len(source_data) - ECHO_KEYS} more keys omitted>"
            break
        if len(key) > ECHO_VALUE_CHARS:
            key = f"{key[:ECHO_VALUE_CHARS]}…<{len(key)} characters>"
        text = value if isinstance(value, str) else dumps(value)
        shown[key] = value if len(text) <= ECHO_VALUE_CHARS else f"<{len(text)} characters omitted>"
    return shown


@dataclass(frozen=True)
class LogRecord:
    """One row of ``import_batch_logs``."""

    id: int
    item_id: int | None
    level: str
    message: str
    details: dict[str, Any]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {name: jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class BatchSummary:
    """One row of the ``import_batch_summary`` view: a batch with its counts and throughput.

    ``success_rate`` is the percentage of items completed or skipped (already applied elsewhere);
    ``items_per_second`` counts items that reached an outcome over the batch's wall time;
    ``created_by`` is the user id of the API caller who created it (None outside the API).
    """

    batch_id: uuid.UUID
    batch_type: str
    status: str
    parent_batch_id: uuid.UUID | None
    total_items: int
    pending_items: int
    processing_items: int
    completed_items: int
    failed_items: int
    skipped_items: int
    success_rate: float
    duration_seconds: float | None
    items_per_second: float | None
    error_message: str | None
    metadata: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    created_by: str | None = None

    @property
    def done_items(self) -> int:
        """Items with an outcome: completed, failed or skipped."""
        return self.completed_items + self.failed_items + self.skipped_items

    def to_dict(self) -> dict[str, Any]:
        return {name: jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ItemOutcome:
    """What processing one item produced; written back in bulk at the end of a chunk."""

    item_id: int
    status: str
    error_code: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    target_table: str | None = None
    target_id: str | None = None
    result: Any = None
    duplicate_of: int | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class LogEntry:
    """A log line waiting to be written to ``import_batch_logs``."""

    batch_id: uuid.UUID
    item_id: int | None
    level: str
    message: str
    details: dict[str, Any]


def jsonable(value: Any) -> Any:
    """``value`` as JSON holds it: a UUID as its text, a datetime in ISO format."""
    if isinstance(value, (uuid.UUID, datetime)):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    return value
