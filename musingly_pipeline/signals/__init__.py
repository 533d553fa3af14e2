"""The signal store: append-only signals and emissions by UTC day, replay, checkpoints, snapshots.

No Dagster here. :func:`open_store` picks the backend from a location: a directory (metaspn-store's
JSONL workspace) or a ``postgresql://`` URL.
"""

from __future__ import annotations

from pathlib import Path

from musingly_pipeline import settings
from musingly_pipeline.signals.checkpoints import ReplayCheckpoint
from musingly_pipeline.signals.envelopes import EmissionEnvelope, EntityRef, SignalEnvelope, TraceContext, parse_envelope
from musingly_pipeline.signals.errors import (
    DuplicateEventError,
    ForeignWriterError,
    InvalidEnvelope,
    SignalError,
    SignalRequestError,
    UnreadableLineWarning,
)
from musingly_pipeline.signals.file_store import FileSystemStore
from musingly_pipeline.signals.query import EventQuery
from musingly_pipeline.signals.store import EventStore, WriteResult

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
    "SignalError",
    "SignalRequestError",
    "TraceContext",
    "UnreadableLineWarning",
    "WriteResult",
    "open_store",
    "parse_envelope",
]


def open_store(location: str | Path | None = None, *, durable: bool = True) -> EventStore:
    """A ``postgresql://`` URL opens the PostgreSQL backend; anything else is a workspace directory
    (created if missing). ``None``: the configured store (``MUSINGLY_SIGNAL_STORE``, else ``<data>/signals``)."""
    text = str(location) if location is not None else settings.signal_store_location()
    if text.startswith(("postgresql://", "postgres://")):
        from musingly_pipeline.signals.postgres_store import PostgresStore

        return PostgresStore(text)
    if Path(text).exists() and not Path(text).is_dir():
        raise SignalError("SIGNAL_STORE_NOT_DIRECTORY", f"{text} is not a directory; a signal store is a workspace "
                          "directory or a postgresql:// URL")
    return FileSystemStore(text, durable=durable)
