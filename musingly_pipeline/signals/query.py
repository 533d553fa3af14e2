"""The one query every read goes through: a time window plus optional filters.

Backends turn an :class:`EventQuery` into the cheapest scan they can (the file store opens only the
days in the window and skips lines that cannot match before parsing them; PostgreSQL filters in
SQL); :meth:`EventQuery.matches` is the exact test both apply to what they return.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from musingly_pipeline.signals.envelopes import EntityRef, Envelope, EventKind
from musingly_pipeline.signals.errors import SignalRequestError

RESOLVED_ENTITY_PAYLOAD_TYPES = frozenset({"EntityResolved", "EntityMerged", "EntityAliasAdded"})


@dataclass(frozen=True)
class EventQuery:
    """Events of one kind with ``start <= timestamp <= end`` that pass every given filter.

    ``types`` are payload types (signals) or emission types (emissions). ``source_prefix`` keeps
    sources equal to it or starting with ``prefix.``. ``payload_equals`` keeps events whose payload
    is an object with those key/value pairs. ``newest_first`` orders by (timestamp, id) descending;
    otherwise replay order: timestamp ascending, ties in first-written order.
    """

    kind: EventKind
    start: datetime
    end: datetime
    entity_ref: EntityRef | None = None
    sources: frozenset[str] | None = None
    source_prefix: str | None = None
    types: frozenset[str] | None = None
    payload_equals: tuple[tuple[str, Any], ...] = ()
    resolved: bool | None = None
    newest_first: bool = False

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise SignalRequestError("SIGNAL_WINDOW_INVALID", f"the window ends ({self.end.isoformat()}) before it starts "
                                     f"({self.start.isoformat()}); give an end at or after the start")

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return self.end.date()

    def matches(self, e: Envelope) -> bool:
        if not (self.start <= e.timestamp <= self.end):
            return False
        if self.types is not None and e.event_type not in self.types:
            return False
        if self.sources is not None and e.source not in self.sources:
            return False
        if self.source_prefix is not None:
            source = e.source or ""
            if not (source == self.source_prefix or source.startswith(self.source_prefix + ".")):
                return False
        if self.entity_ref is not None and self.entity_ref not in e.entity_refs:
            return False
        if self.payload_equals:
            if not isinstance(e.payload, dict):
                return False
            for key, value in self.payload_equals:
                if e.payload.get(key) != value:
                    return False
        if self.resolved is not None:
            is_resolved = bool(e.entity_refs) or e.event_type in RESOLVED_ENTITY_PAYLOAD_TYPES
            if is_resolved is not self.resolved:
                return False
        return True

    def line_needles(self) -> list[tuple[str, ...]]:
        """Groups of substrings; a line that contains none of a group's cannot match (a pre-filter).

        Each value is looked for JSON-encoded both with and without ASCII escapes, since
        metaspn-store escapes non-ASCII characters and this store does not.
        """
        def encoded(values) -> tuple[str, ...]:
            out: set[str] = set()
            for v in values:
                out.add(json.dumps(v))
                out.add(json.dumps(v, ensure_ascii=False))
            return tuple(out)

        groups: list[tuple[str, ...]] = []
        if self.entity_ref is not None:
            groups.append(encoded([self.entity_ref.value]))
        if self.sources is not None:
            groups.append(encoded(self.sources))
        if self.types is not None:
            groups.append(encoded(self.types))
        return groups
