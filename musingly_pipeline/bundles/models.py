"""What the snapshot store returns: a snapshot, an import attempt, import statistics, an import's result."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from musingly_core.models import ENTITY_KINDS
from musingly_core.report import Issue

from musingly_pipeline.bundles.errors import SourceFile

__all__ = ["ImportLog", "ImportResult", "ImportStats", "SnapshotInfo", "SourceFile", "in_kind_order"]


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot row."""

    id: uuid.UUID
    name: str
    version_label: str
    description: str | None
    status: str
    parent_id: uuid.UUID | None
    previous_id: uuid.UUID | None
    content_hash: str | None
    entity_counts: dict[str, int]
    created_at: datetime
    ready_at: datetime | None
    promoted_at: datetime | None
    archived_at: datetime | None
    # a delta snapshot (a merge, issue 19): the full snapshot whose unmasked rows it also holds
    base_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "entity_counts", in_kind_order(self.entity_counts))

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in self.__dict__.items()}


def in_kind_order(counts: dict[str, int] | None) -> dict[str, int] | None:
    """jsonb keeps no key order; show counts in import order."""
    if counts is None:
        return None
    return {k: counts[k] for k in (*ENTITY_KINDS, *sorted(set(counts) - set(ENTITY_KINDS))) if k in counts}


@dataclass(frozen=True)
class ImportLog:
    """One import_logs row: one import attempt."""

    id: uuid.UUID
    version_label: str
    status: str
    snapshot_id: uuid.UUID | None
    source_system: str | None
    source_version: str | None
    source_file: str | None
    started_at: datetime
    completed_at: datetime | None
    entity_counts: dict[str, int] | None
    error_message: str | None
    error_details: dict | None
    reused: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "entity_counts", in_kind_order(self.entity_counts))

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ImportStats:
    """``get_import_stats(days)``: imports per status and mean duration."""

    days: int
    total_imports: int
    ready: int
    promoted: int
    failed: int
    rolled_back: int
    in_progress: int
    avg_duration_seconds: float | None
    last_import_at: datetime | None
    last_success_at: datetime | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the log row, the snapshot that holds the content, and its counts."""

    import_id: uuid.UUID
    snapshot_id: uuid.UUID
    version_label: str
    status: str  # 'ready' | 'promoted'
    entity_counts: dict[str, int]
    reused: bool  # same content as an existing ready/current snapshot: that one, no copy
    content_hash: str
    merged: bool = False
    source_file: str | None = None
    seconds: float = 0.0
    warnings: tuple[Issue, ...] = field(default_factory=tuple)
    parent_id: uuid.UUID | None = None  # the snapshot that was current when the import started
    source: SourceFile | None = None  # the file's sha256 and size, when imported from a file
    # Set when the import was committed but its lifecycle signals could not be written: the faces
    # report the import as done and this as the error.
    lifecycle_error: str | None = None

    def to_dict(self) -> dict:
        return {
            "import_id": str(self.import_id), "snapshot_id": str(self.snapshot_id),
            "version_label": self.version_label, "status": self.status,
            "entity_counts": dict(self.entity_counts), "reused": self.reused, "merged": self.merged,
            "content_hash": self.content_hash, "source_file": self.source_file,
            "source_sha256": self.source.sha256 if self.source else None,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "lifecycle_error": self.lifecycle_error,
            "seconds": round(self.seconds, 3), "warnings": [w.to_dict() for w in self.warnings],
        }
