"""The signal store: append-only signals and emissions by UTC day, replay, checkpoints, snapshots.

No Dagster here. :func:`open_store` picks the backend from a location: a directory (metaspn-store's
JSONL workspace) or a ``postgresql://`` URL.
"""

from __future__ import annotations

from pathlib import Path

from musingly_pipeline.signals.checkpoints import ReplayCheckpoint
from musingly_pipeline.signals.envelopes import (
    EmissionEnvelope,
    EntityRef,
    InvalidEnvelope,
    SignalEnvelope,
    TraceContext,
    parse_envelope,
)
from musingly_pipeline.signals.file_store import FileSystemStore, ForeignWriterError, UnreadableLineWarning
from musingly_pipeline.signals.query import EventQuery
from musingly_pipeline.signals.store import DuplicateEventError, EventStore, WriteResult

__all__ = [
    "DuplicateEventError",
    "EmissionEnvelope",
    "EntityRef",
    "EventQuery",
    "EventStore",
    "FileSystemStore",
    "ForeignWriterError",
    "InvalidEnvelope",
    "ReplayCheckpoint",
    "SignalEnvelope",
    "TraceContext",
    "UnreadableLineWarning",
    "WriteResult",
    "open_store",
    "parse_envelope",
]


def open_store(location: str | Path, *, durable: bool = True) -> EventStore:
    """A ``postgresql://`` URL opens the PostgreSQL backend; anything else is a workspace directory."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from musingly_pipeline.signals.postgres_store import PostgresStore

        return PostgresStore(text)
    return FileSystemStore(location, durable=durable)
