"""The bundle pipeline's snapshot lifecycle as signals, and "which snapshot was current at time T".

Each lifecycle step is one signal from source ``bundle.pipeline`` with payload type
``SnapshotLifecycle``; its id is derived from (event, snapshot, time), so recording a step twice
stores it once. ``rolled_back`` names the snapshot that is current *after* the rollback.

The snapshot store's own functions (import, promote, rollback) record these steps, so every face
(the CLI, Dagster, Python) leaves the same trail, in the store that ``MUSINGLY_SIGNAL_STORE`` names
(default ``<data>/signals``) unless the caller passes another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from musingly_pipeline.signals.checkpoints import ensure_utc, format_timestamp
from musingly_pipeline.signals.envelopes import EntityRef, SignalEnvelope
from musingly_pipeline.signals.errors import SignalRequestError
from musingly_pipeline.signals.store import EPOCH, EventStore, WriteResult

SOURCE = "bundle.pipeline"
PAYLOAD_TYPE = "SnapshotLifecycle"
EVENTS = ("import_started", "snapshot_ready", "promoted", "rolled_back")
MAKES_CURRENT = frozenset({"promoted", "rolled_back"})


@dataclass(frozen=True)
class CurrentSnapshot:
    """The snapshot current at a moment, and the lifecycle step that made it current."""

    snapshot_id: str
    version_label: str | None
    since: datetime
    event: str
    import_id: str | None


def snapshot_ref(snapshot_id: str | int) -> EntityRef:
    return EntityRef(ref_type="snapshot", value=str(snapshot_id), platform="musingly")


def configured_store() -> EventStore:
    """The signal store the deployment names (``MUSINGLY_SIGNAL_STORE``, default ``<data>/signals``)."""
    from musingly_pipeline.signals import open_store

    return open_store()


def record_snapshot_event(store: EventStore, event: str, snapshot_id: str | int, import_id: str | int | None,
                          version_label: str | None, at: datetime) -> WriteResult:
    """Write one lifecycle signal (idempotent: the same event, snapshot and time are stored once)."""
    if event not in EVENTS:
        raise SignalRequestError("SIGNAL_LIFECYCLE_EVENT_UNKNOWN", f"unknown lifecycle event {event!r}; use one of {', '.join(EVENTS)}")
    at = ensure_utc(at)
    signal = SignalEnvelope(
        signal_id=f"bundle.{event}:{snapshot_id}:{format_timestamp(at)}",
        timestamp=at,
        source=SOURCE,
        payload_type=PAYLOAD_TYPE,
        payload={"event": event, "snapshot_id": str(snapshot_id),
                 "import_id": None if import_id is None else str(import_id), "version_label": version_label},
        entity_refs=(snapshot_ref(snapshot_id),),
    )
    return store.write_signal(signal)


def current_snapshot_at(store: EventStore, t: datetime) -> CurrentSnapshot | None:
    """The snapshot that was current at ``t``, by replaying the lifecycle signals up to ``t``."""
    current = None
    for s in store.iter_recommendation_signals(start=EPOCH, end=ensure_utc(t), sources=[SOURCE], payload_types=[PAYLOAD_TYPE]):
        p = s.payload
        if isinstance(p, dict) and p.get("event") in MAKES_CURRENT:
            current = CurrentSnapshot(p["snapshot_id"], p.get("version_label"), s.timestamp, p["event"], p.get("import_id"))
    return current
