"""Replay checkpoints: where a worker stopped, in metaspn-store's JSON format.

A checkpoint is the timestamp of the last processed event plus the ids already processed *at* that
timestamp. Replay yields events in (timestamp, first-seen) order, so resuming from a checkpoint
skips exactly what was processed, however many events share the last timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from musingly_pipeline.signals.errors import SignalRequestError


def ensure_utc(value: datetime) -> datetime:
    """A datetime in UTC; a naive one is taken as UTC, as metaspn-store does for query bounds."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    return ensure_utc(value).isoformat().replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    return ensure_utc(datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text))


@dataclass(frozen=True)
class ReplayCheckpoint:
    """The last processed timestamp and the ids processed at exactly that timestamp."""

    last_timestamp: datetime
    seen_ids_at_timestamp: tuple[str, ...] = ()
    schema_version: str = "0.1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "last_timestamp", ensure_utc(self.last_timestamp))
        object.__setattr__(self, "seen_ids_at_timestamp", tuple(dict.fromkeys(self.seen_ids_at_timestamp)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_timestamp": format_timestamp(self.last_timestamp),
            "seen_ids_at_timestamp": list(self.seen_ids_at_timestamp),
            "schema_version": self.schema_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayCheckpoint:
        return cls(
            last_timestamp=parse_timestamp(str(data["last_timestamp"])),
            seen_ids_at_timestamp=tuple(data.get("seen_ids_at_timestamp", [])),
            schema_version=str(data.get("schema_version", "0.1")),
        )


def build_checkpoint(processed: Iterable[Any]) -> ReplayCheckpoint | None:
    """The checkpoint after ``processed`` (envelopes in replay order); None when it is empty."""
    last_ts: datetime | None = None
    ids: list[str] = []
    for envelope in processed:
        ts = envelope.timestamp
        if last_ts is None or ts > last_ts:
            last_ts, ids = ts, [envelope.event_id]
        elif ts < last_ts:
            raise SignalRequestError("SIGNAL_CHECKPOINT_ORDER",
                                     "processed events must be in non-decreasing timestamp order (replay order)")
        else:
            ids.append(envelope.event_id)
    if last_ts is None:
        return None
    return ReplayCheckpoint(last_timestamp=last_ts, seen_ids_at_timestamp=tuple(ids))
