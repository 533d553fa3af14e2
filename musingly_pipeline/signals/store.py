"""EventStore: the signal area's one object, written once on top of two backend primitives.

A backend (:class:`~musingly_pipeline.signals.file_store.FileSystemStore`,
:class:`~musingly_pipeline.signals.postgres_store.PostgresStore`) implements ``_append`` (write a
batch idempotently), ``_scan`` (stream the events an :class:`EventQuery` may match, in its order),
and ``_put_document`` / ``_get_document`` (checkpoints and snapshots). Everything else is here and goes
through :meth:`EventStore.query`; the read helpers metaspn-store names (``get_recent_signals_by_entity``,
``iter_stage_window_signals``, ...) come from the :class:`~musingly_pipeline.signals.metaspn_reads.MetaspnReads`
mixin, so every store has them. A day's ingestion, digest and health (``ingest``, ``digest``,
``health``, ``stats``) are methods too: the CLI and the Dagster assets call only this object.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from musingly_core.report import Issue

from musingly_pipeline.signals import ingest as daily
from musingly_pipeline.signals.checkpoints import ReplayCheckpoint, build_checkpoint, ensure_utc
from musingly_pipeline.signals.envelopes import (
    ENVELOPE_TYPES,
    ID_GETTERS,
    EmissionEnvelope,
    EntityRef,
    Envelope,
    EventKind,
    SignalEnvelope,
    parse_envelope,
)
from musingly_pipeline.signals.errors import InvalidEnvelope, SignalRequestError
from musingly_pipeline.signals.metaspn_reads import MetaspnReads
from musingly_pipeline.signals.query import RESOLVED_ENTITY_PAYLOAD_TYPES, EventQuery

DuplicatePolicy = Literal["return_existing", "ignore", "raise"]
DUPLICATE_POLICIES = ("return_existing", "ignore", "raise")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

__all__ = ["DuplicatePolicy", "EventStore", "PartitionRead", "WriteResult", "RESOLVED_ENTITY_PAYLOAD_TYPES"]


@dataclass
class PartitionRead:
    """Every readable envelope of one day partition, in stored order, and an issue per skipped line."""

    location: str
    envelopes: list[Envelope] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    lines: int = 0


class WriteResult(NamedTuple):
    """What happened to one envelope: stored now (``written``) or already there, and in which day."""

    event_id: str
    day: date
    written: bool
    location: str


def _utc_or(value: datetime | None, default: datetime) -> datetime:
    return ensure_utc(value) if value is not None else default


def _set(values: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values else None


def _day_token(day: date | datetime | str) -> str:
    if isinstance(day, str):
        return date.fromisoformat(day).isoformat()
    if isinstance(day, datetime):
        return ensure_utc(day).date().isoformat()
    return day.isoformat()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise SignalRequestError("SIGNAL_NAME_INVALID", f"name {name!r} must be letters, digits, '_', '.' or '-' (it becomes a file name)")
    return name


class EventStore(MetaspnReads, ABC):
    """An append-only store of signals and emissions partitioned by UTC day."""

    # -- backend primitives ------------------------------------------------------------------------
    @abstractmethod
    def _append(self, kind: EventKind, envelopes: Sequence[Envelope], on_duplicate: DuplicatePolicy) -> list[WriteResult]:
        """Store every envelope whose id is new, atomically per batch with respect to ``raise``."""

    @abstractmethod
    def _scan(self, query: EventQuery, limit: int | None = None) -> Iterator[Envelope]:
        """Events that may match ``query`` (a superset is fine) in the query's order.

        ``limit`` is a hint: the caller needs at most that many matches, so a backend whose filter is
        exact may stop there.
        """

    @abstractmethod
    def _put_document(self, folder: str, name: str, document: dict[str, Any]) -> str:
        """Write (replace) one JSON document; return where it went."""

    @abstractmethod
    def _get_document(self, folder: str, name: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _list_documents(self, folder: str, prefix: str) -> list[str]: ...

    @abstractmethod
    def days(self, kind: EventKind = "signal") -> list[date]:
        """The days that hold events of ``kind``, ascending."""

    @abstractmethod
    def read_partition(self, kind: EventKind, day: date, query: EventQuery | None = None, *, warn: bool = True) -> PartitionRead:
        """Everything stored for one day, as stored (no duplicate suppression, no sorting)."""

    def close(self) -> None:
        """Release files or connections (the store reopens them on next use)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------------
    def write_events(self, kind: EventKind, envelopes: Iterable[Any], *, on_duplicate: DuplicatePolicy = "return_existing") -> list[WriteResult]:
        """Validate every envelope first (raising :class:`InvalidEnvelope` before writing), then append."""
        if on_duplicate not in DUPLICATE_POLICIES:
            raise SignalRequestError("SIGNAL_DUPLICATE_POLICY_INVALID",
                                     f"unsupported duplicate policy {on_duplicate!r}; use one of {', '.join(DUPLICATE_POLICIES)}")
        items = list(envelopes)
        model = ENVELOPE_TYPES[kind]
        if set(map(type, items)) <= {model}:  # already validated envelopes: nothing to parse
            return self._append(kind, items, on_duplicate) if items else []
        parsed: list[Envelope] = []
        issues = []
        for i, item in enumerate(items):
            try:
                parsed.append(parse_envelope(kind, item, f"[{i}]"))
            except InvalidEnvelope as exc:
                issues.extend(exc.issues)
        if issues:
            raise InvalidEnvelope(issues)
        if not parsed:
            return []
        return self._append(kind, parsed, on_duplicate)

    def write_signal(self, signal: SignalEnvelope | Any, *, on_duplicate: DuplicatePolicy = "return_existing") -> WriteResult:
        return self.write_events("signal", [signal], on_duplicate=on_duplicate)[0]

    def write_signals(self, signals: Iterable[SignalEnvelope | Any], *, on_duplicate: DuplicatePolicy = "return_existing") -> list[WriteResult]:
        """Write a batch with one lock, one append per day and one fsync per day touched."""
        return self.write_events("signal", signals, on_duplicate=on_duplicate)

    def write_emission(self, emission: EmissionEnvelope | Any, *, on_duplicate: DuplicatePolicy = "return_existing") -> WriteResult:
        return self.write_events("emission", [emission], on_duplicate=on_duplicate)[0]

    def write_emissions(self, emissions: Iterable[EmissionEnvelope | Any], *, on_duplicate: DuplicatePolicy = "return_existing") -> list[WriteResult]:
        return self.write_events("emission", emissions, on_duplicate=on_duplicate)

    # -- the general query path --------------------------------------------------------------------
    def query(self, query: EventQuery, *, checkpoint: ReplayCheckpoint | None = None, limit: int | None = None) -> Iterator[Envelope]:
        """Events matching ``query``, duplicates suppressed (first seen wins), resumed after ``checkpoint``."""
        if limit is not None and limit <= 0:
            return
        skip: frozenset[str] = frozenset()
        cp_ts = None
        if checkpoint is not None:
            cp_ts = checkpoint.last_timestamp
            skip = frozenset(checkpoint.seen_ids_at_timestamp)
            if cp_ts > query.start:
                if cp_ts > query.end:
                    return
                query = EventQuery(**{**query.__dict__, "start": cp_ts})
        seen: set[str] = set()
        count = 0
        get_id, matches = ID_GETTERS[query.kind], query.matches
        for e in self._scan(query, limit if checkpoint is None else None):
            event_id = get_id(e)
            if event_id in seen or not matches(e):
                continue
            seen.add(event_id)
            if cp_ts is not None and e.timestamp == cp_ts and event_id in skip:
                continue
            yield e
            count += 1
            if limit is not None and count >= limit:
                return

    def signal_query(self, start, end, *, newest_first=False, **filters) -> EventQuery:
        return EventQuery(
            "signal", _utc_or(start, EPOCH), _utc_or(end, datetime.now(UTC)), newest_first=newest_first, **filters
        )

    def emission_query(self, start, end, *, newest_first=False, **filters) -> EventQuery:
        return EventQuery(
            "emission", _utc_or(start, EPOCH), _utc_or(end, datetime.now(UTC)), newest_first=newest_first, **filters
        )

    # -- replay ------------------------------------------------------------------------------------
    def iter_signals(self, start: datetime, end: datetime, entity_ref: EntityRef | None = None, sources: list[str] | None = None) -> Iterator[SignalEnvelope]:
        """Signals in [start, end] in replay order (timestamp, then first written)."""
        return self.query(self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources)))

    def iter_emissions(self, start: datetime, end: datetime, entity_ref: EntityRef | None = None, emission_types: list[str] | None = None) -> Iterator[EmissionEnvelope]:
        return self.query(self.emission_query(start, end, entity_ref=entity_ref, types=_set(emission_types)))

    def iter_signals_from_checkpoint(self, *, end: datetime, checkpoint: ReplayCheckpoint | None = None, start: datetime | None = None,
                                     entity_ref: EntityRef | None = None, sources: list[str] | None = None) -> Iterator[SignalEnvelope]:
        return self.query(self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources)), checkpoint=checkpoint)

    # -- a day's ingestion, digest and health: what `musingly signals` and the signal_partitions asset do
    def ingest(self, incoming: str | Path, day: date) -> tuple[daily.IngestReport, dict]:
        """Store the valid signals of ``day``'s incoming files (``YYYY-MM-DD*.jsonl``), then write and
        return the day's digest snapshot; the report names every line rejected."""
        return daily.ingest_and_digest(self, Path(incoming), day)

    @staticmethod
    def incoming_days(incoming: str | Path) -> list[date]:
        """The days that have an incoming file."""
        return daily.incoming_days(Path(incoming))

    def digest(self, day: date) -> dict:
        """The day's digest: counts by source and payload type, and the most mentioned entities."""
        return daily.day_digest(self, day)

    def health(self, day: date) -> daily.PartitionHealth:
        """What the per-day checks look at: repeated ids, timestamps off the day, unreadable lines."""
        return daily.partition_health(self, day)

    def stats(self, day: date | None = None) -> dict[str, Any]:
        """``{"days": [{"day", "signals"}, ...]}``, or with ``day`` its digest snapshot (computed if none was written)."""
        if day is not None:
            return self.read_daily_digest_snapshot(day) or {"day": day.isoformat(), "digest": self.digest(day)}
        return {"days": [{"day": d.isoformat(), "signals": len(self.read_partition("signal", d, warn=False).envelopes)}
                         for d in self.days("signal")]}

    # -- checkpoints -------------------------------------------------------------------------------
    def build_signal_checkpoint(self, processed_signals: Iterable[SignalEnvelope]) -> ReplayCheckpoint | None:
        return build_checkpoint(processed_signals)

    def write_checkpoint(self, name: str, checkpoint: ReplayCheckpoint) -> str:
        return self._put_document("checkpoints", check_name(name), checkpoint.to_dict())

    def read_checkpoint(self, name: str) -> ReplayCheckpoint | None:
        doc = self._get_document("checkpoints", check_name(name))
        return ReplayCheckpoint.from_dict(doc) if doc is not None else None

    # -- snapshots ---------------------------------------------------------------------------------
    def write_snapshot(self, name: str, snapshot_state: dict[str, Any], snapshot_time: datetime | None = None) -> str:
        """A point-in-time document named ``name__YYYY-MM-DDTHHMMSSZ`` (metaspn-store's naming)."""
        token = ensure_utc(snapshot_time or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")
        return self._put_document("snapshots", f"{check_name(name)}__{token}", snapshot_state)

    def read_snapshot(self, name: str, snapshot_time: datetime | None = None) -> dict[str, Any] | None:
        """The snapshot at ``snapshot_time`` (to the second), or the latest one of ``name``."""
        check_name(name)
        if snapshot_time is not None:
            token = ensure_utc(snapshot_time).strftime("%Y-%m-%dT%H%M%SZ")
            return self._get_document("snapshots", f"{name}__{token}")
        names = [n for n in self._list_documents("snapshots", f"{name}__") if re.fullmatch(r"\d{4}-\d\d-\d\dT\d{6}Z", n[len(name) + 2:])]
        return self._get_document("snapshots", max(names)) if names else None

    def _write_day_document(self, prefix: str, field: str, day, body: dict[str, Any]) -> str:
        token = _day_token(day)
        return self._put_document("snapshots", f"{prefix}__{token}", {"day": token, field: body, "schema_version": "0.1"})

    def write_daily_digest_snapshot(self, *, day: date | datetime | str, digest: dict[str, Any]) -> str:
        return self._write_day_document("digest", "digest", day, digest)

    def read_daily_digest_snapshot(self, day: date | datetime | str) -> dict[str, Any] | None:
        return self._get_document("snapshots", f"digest__{_day_token(day)}")

    def write_calibration_snapshot(self, *, day: date | datetime | str, report: dict[str, Any]) -> str:
        return self._write_day_document("calibration", "report", day, report)

    def read_calibration_snapshot(self, day: date | datetime | str) -> dict[str, Any] | None:
        return self._get_document("snapshots", f"calibration__{_day_token(day)}")

    def write_credibility_snapshot(self, *, day: date | datetime | str, report: dict[str, Any]) -> str:
        return self._write_day_document("credibility", "report", day, report)

    def read_credibility_snapshot(self, day: date | datetime | str) -> dict[str, Any] | None:
        return self._get_document("snapshots", f"credibility__{_day_token(day)}")
