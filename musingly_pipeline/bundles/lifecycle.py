"""Lifecycle signals of the snapshot store: written after the change they describe was committed.

Import, promote and rollback each write theirs (``import_started``, ``snapshot_ready``,
``promoted``, ``rolled_back``; see :mod:`musingly_pipeline.signals.lifecycle`), so
``current_snapshot_at`` is right whichever face made the change. If writing fails, the error
says that the change itself was made.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from musingly_pipeline.bundles.errors import SnapshotError
from musingly_pipeline.signals.lifecycle import configured_store, record_snapshot_event
from musingly_pipeline.signals.store import EventStore


def record(signals: EventStore | None, events: list[tuple[str, datetime]], snapshot_id: uuid.UUID,
           import_id: uuid.UUID | None, version_label: str, *, done: str) -> None:
    """Write ``events`` (name, time) to ``signals`` (``None``: the configured store, opened and closed
    here); a failure is :class:`SnapshotError` ``LIFECYCLE_SIGNAL_NOT_WRITTEN`` that starts with ``done``."""
    store = signals
    try:
        if store is None:
            store = configured_store()
        for event, at in events:
            record_snapshot_event(store, event, snapshot_id, import_id, version_label, at)
    except Exception as exc:
        raise SnapshotError(
            "LIFECYCLE_SIGNAL_NOT_WRITTEN",
            f"{done}, but its lifecycle signal could not be written ({type(exc).__name__}: {exc}); "
            "`current_snapshot_at` will miss this step until it is recorded") from exc
    finally:
        if signals is None and store is not None:
            store.close()
