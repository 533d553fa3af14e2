"""Daily ingestion of raw signal files, the day's digest, and the day's health.

Used through :class:`~musingly_pipeline.signals.store.EventStore` (``store.ingest(incoming, day)``,
``store.digest(day)``, ``store.health(day)``, ``store.stats()``), which both faces call.

Incoming files: ``<incoming>/YYYY-MM-DD*.jsonl`` (for example ``2026-02-05.jsonl`` or
``2026-02-05-crawler.jsonl``), one signal envelope per line, every timestamp inside that UTC day. A
day's files are ingested in name order; ingesting again writes nothing new (ids are idempotent).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from musingly_core.report import Issue, error

from musingly_pipeline.signals.envelopes import SignalEnvelope, parse_line
from musingly_pipeline.signals.errors import InvalidEnvelope

if TYPE_CHECKING:
    from musingly_pipeline.signals.store import EventStore

TOP_ENTITIES = 10


def incoming_files(incoming: Path, day: date) -> list[Path]:
    """The raw files of ``day``: ``YYYY-MM-DD*.jsonl`` in ``incoming``, in name order."""
    return sorted(p for p in Path(incoming).glob(f"{day.isoformat()}*.jsonl") if p.is_file())


def incoming_days(incoming: Path) -> list[date]:
    days = set()
    for p in Path(incoming).glob("*.jsonl"):
        try:
            days.add(date.fromisoformat(p.name[:10]))
        except ValueError:
            continue
    return sorted(days)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1) - timedelta(microseconds=1)


@dataclass
class IngestReport:
    """What ingesting one day did: lines read, signals stored now, duplicates skipped, lines rejected."""

    day: date
    files: list[str] = field(default_factory=list)
    lines: int = 0
    written: int = 0
    duplicates: int = 0
    rejected: list[Issue] = field(default_factory=list)


def ingest_day(store: EventStore, incoming: Path, day: date) -> IngestReport:
    """Store the valid signals of ``day``'s incoming files; report the rest (never half a line)."""
    report = IngestReport(day)
    batch: list[SignalEnvelope] = []
    for path in incoming_files(incoming, day):
        report.files.append(path.name)
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            report.lines += 1
            where = f"{path.name}:{number}"
            try:
                envelope = parse_line("signal", line, where)
            except InvalidEnvelope as exc:
                report.rejected.extend(exc.issues)
                continue
            if envelope.timestamp.date() != day:
                report.rejected.append(error(
                    "SIGNAL_OUTSIDE_PARTITION", where,
                    f"timestamp {envelope.timestamp.isoformat()} is not on {day}; move the line to a file named "
                    f"{envelope.timestamp.date()}*.jsonl"))
                continue
            batch.append(envelope)
    results = store.write_signals(batch)
    report.written = sum(r.written for r in results)
    report.duplicates = len(results) - report.written
    return report


def ingest_and_digest(store: EventStore, incoming: Path, day: date) -> tuple[IngestReport, dict]:
    """Ingest ``day`` (:func:`ingest_day`), then write and return its digest snapshot: what one
    day's ingestion is, for the CLI and the ``signal_partitions`` asset alike."""
    report = ingest_day(store, incoming, day)
    digest = day_digest(store, day)
    store.write_daily_digest_snapshot(day=day, digest=digest)
    return report, digest


def day_digest(store: EventStore, day: date) -> dict:
    """The day's digest: counts by source and payload type, and the most mentioned entities."""
    start, end = day_bounds(day)
    signals = list(store.iter_signals(start, end))
    frame = pd.DataFrame(
        {"source": [s.source for s in signals], "payload_type": [s.payload_type for s in signals]},
        columns=["source", "payload_type"],
    )
    entities = pd.Series([r.key for s in signals for r in s.entity_refs], dtype="object")
    top = entities.value_counts().head(TOP_ENTITIES) if len(entities) else pd.Series(dtype="int64")
    return {
        "signals": len(signals),
        "by_source": {k: int(v) for k, v in frame["source"].value_counts().sort_index().items()},
        "by_payload_type": {k: int(v) for k, v in frame["payload_type"].value_counts().sort_index().items()},
        "top_entities": [{"entity": k, "signals": int(v)} for k, v in top.items()],
    }


@dataclass
class PartitionHealth:
    """What the per-day checks look at: stored lines, repeated ids, timestamps off the day, unreadable lines."""

    day: date
    events: int
    duplicate_ids: list[str]
    outside_day: list[str]
    unreadable: list[Issue]


def partition_health(store: EventStore, day: date) -> PartitionHealth:
    read = store.read_partition("signal", day, warn=False)
    counts = Counter(e.event_id for e in read.envelopes)
    return PartitionHealth(
        day=day,
        events=len(read.envelopes),
        duplicate_ids=sorted(i for i, n in counts.items() if n > 1),
        outside_day=[e.event_id for e in read.envelopes if e.timestamp.date() != day],
        unreadable=read.issues,
    )
