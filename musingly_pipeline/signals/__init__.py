"""The signal store: append-only signals and emissions by UTC day, replay, checkpoints, snapshots.

No Dagster here. The area is used through one object, :class:`EventStore` (writes, replay, checkpoints,
snapshots, a day's ingestion, digest and health); :func:`open_store` opens one from a location: a
directory (metaspn-store's JSONL workspace, :class:`FileSystemStore`) or a ``postgresql://`` URL
(``postgres_store.PostgresStore``). Every refusal is a :class:`SignalError` with a ``SIGNAL_*`` code.

The modules: ``store`` (EventStore, on two backend primitives), ``metaspn_reads`` (metaspn-store's
read helpers), ``envelopes``, ``query``, ``checkpoints``, ``ingest``, ``lifecycle``, ``errors``; the
file backend ``file_store`` with its id index (``id_index``, ``sorted_entries``) and its fast paths,
each beside a plain version (``envelope_json``, ``stored_lines``, ``id_hashes``, ``write_results``,
``day_writes``); ``postgres_store``.
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
from musingly_pipeline.signals.ingest import IngestReport, PartitionHealth
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
    "IngestReport",
    "InvalidEnvelope",
    "PartitionHealth",
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
