"""Request and response bodies of the batch API: strict at the edge (frozen, ``extra="forbid"``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The most items one request may carry; larger imports go in several batches.
MAX_ITEMS = 10_000
BATCH_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,99}$"
BatchStatus = Literal["pending", "processing", "completed", "failed"]
ItemStatus = Literal["pending", "processing", "completed", "failed", "skipped"]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateBatchRequest(Strict):
    """A new batch: its type, its items (JSON objects) and whether to process it now."""

    batch_type: str = Field(pattern=BATCH_TYPE_PATTERN, examples=["customer_data"])
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS,
                                        examples=[[{"email": "ann@example.com", "name": "Ann"}]])
    process: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)


class ReprocessRequest(Strict):
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
    failed_items: list[FailedItemOut]
    failed_items_shown: int


class ErrorOut(Strict):
    """Every error: a stable code, a message that says the fix, and optional details."""

    code: str
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class HealthOut(Strict):
    status: Literal["ok", "unavailable"]
    database: bool
