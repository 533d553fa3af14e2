"""Request and response bodies of the batch API: strict at the edge (frozen, ``extra="forbid"``,
no coercion in requests: ``"process": 1`` or ``"failed_items_only": 0`` is refused, not read as a boolean)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from musingly_pipeline.api.errors import ERROR_CODES

# The most items one request may carry; larger imports go in several batches.
MAX_ITEMS = 10_000
BATCH_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,99}$"
BatchStatus = Literal["pending", "processing", "completed", "failed"]
Runner = Literal["worker_pool", "dagster"]

# A JSON value PostgreSQL can store (no NUL character in a key or a string), as the OpenAPI
# document describes it (openapi.JSON_VALUE_SCHEMA defines JsonValue).
JsonObject = Annotated[dict[str, Any], WithJsonSchema({
    "type": "object",
    "propertyNames": {"pattern": "^[^\\u0000]*$"},
    "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
})]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StrictRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class CreateBatchRequest(StrictRequest):
    """A new batch: its type, its items (JSON objects) and whether to process it in the background now."""

    batch_type: str = Field(pattern=BATCH_TYPE_PATTERN,
                            description="A batch type with a processor on this server (the enum lists them).")
    items: list[JsonObject] = Field(min_length=1, max_length=MAX_ITEMS,
                                    description="The items, each a JSON object; the processor validates each one.")
    process: bool = Field(False, description="true: answer 202 at once and process the batch in the background.")
    metadata: JsonObject = Field(default_factory=dict, description="Kept with the batch as given.")


class ReprocessRequest(StrictRequest):
    """Reprocess only the failed items (default) or every item of a batch."""

    failed_items_only: bool = True


class BatchSummaryOut(Strict):
    """One batch with its item counts, success rate (percent) and throughput."""

    batch_id: uuid.UUID
    batch_type: str
    status: BatchStatus
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
    created_by: str | None = Field(description="The user id of the API caller who created the batch.")


class ProgressOut(Strict):
    """How far processing is: items with an outcome (completed, failed or skipped) of all items."""

    done_items: int
    total_items: int
    percent: float
    running: bool = Field(description="Whether a processing run (in any process) works on the batch now. "
                                      "Status processing while not running: the run died; process it again.")


class FailedItemOut(Strict):
    """A failed item: where it is, why it failed, and its source data."""

    id: int
    item_index: int
    attempts: int
    error_code: str | None
    error_message: str | None
    source_data: dict[str, Any]
    source_item_id: int | None


class BatchDetailOut(Strict):
    summary: BatchSummaryOut
    progress: ProgressOut
    failed_items: list[FailedItemOut]
    failed_items_shown: int


class AcceptedOut(Strict):
    """A batch accepted for processing in the background: poll ``url`` for its progress."""

    batch_id: uuid.UUID
    url: str = Field(description="The batch's URL (also the Location header): GET it for progress.")
    runner: Runner = Field(description="worker_pool: a thread of this API process; dagster: a process_batch run.")
    dagster_run_id: str | None
    summary: BatchSummaryOut


class PushOut(Strict):
    """A bundle handed to the inbox: the running Dagster deployment's inbox sensor imports it."""

    push_id: int
    name: str = Field(description="Its inbox name (the bundle partition): NAME.json or incremental/NAME.json.")
    sha256: str = Field(description="The sha256 of the bytes received, which the import run refuses to differ from.")
    size: int
    duplicate: bool = Field(description="The previous push of this name had the same bytes: nothing new to import.")


class ErrorOut(Strict):
    """Every error: a stable code, a message that says the fix, and optional details."""

    code: str = Field(json_schema_extra={"enum": ERROR_CODES})
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class HealthOut(Strict):
    status: Literal["ok", "unavailable"]
    database: bool
