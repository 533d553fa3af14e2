"""metaspn-store's read helpers, by the names its users look for, written once on :meth:`EventStore.query`.

:class:`MetaspnReads` is a mixin of :class:`~musingly_pipeline.signals.store.EventStore`, so every
backend has them: ``store.get_recent_signals_by_entity(...)``, ``store.iter_stage_window_signals(...)``
and the others of metaspn-store 0.1.8 take the same arguments and give the same answers. The
pipeline itself uses only ``iter_recommendation_signals`` (the lifecycle's replay); the rest is the
compatibility surface, tested in ``musingly_pipeline_tests/signals/test_store.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from musingly_pipeline.signals.checkpoints import ReplayCheckpoint, ensure_utc, parse_timestamp
from musingly_pipeline.signals.envelopes import EmissionEnvelope, EntityRef, Envelope, SignalEnvelope
from musingly_pipeline.signals.query import EventQuery

DEFAULT_PENDING_OUTCOME_PAYLOAD_TYPES = frozenset({"OutcomePending", "EvaluationRequested", "RecommendationAttempted"})
DEFAULT_SUCCESS_EMISSION_TYPES = frozenset({"OutcomeSuccess", "DraftApproved"})
DEFAULT_FAILURE_EMISSION_TYPES = frozenset({"OutcomeFailure", "DraftRejected"})


def _set(values: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values else None


class MetaspnReads:
    """The read helpers metaspn-store names, on top of :class:`EventStore`'s ``query``, ``signal_query``,
    ``emission_query`` and ``iter_emissions``."""

    def iter_entity_candidate_signals(self, *, start: datetime, end: datetime, resolved: bool | None = None, sources: list[str] | None = None) -> Iterator[SignalEnvelope]:
        """Resolver candidates: resolved=True with entity refs or resolver payload types, False without."""
        return self.query(self.signal_query(start, end, sources=_set(sources), resolved=resolved))

    def iter_stage_window_signals(self, *, stage: str, start: datetime, end: datetime, checkpoint: ReplayCheckpoint | None = None,
                                  entity_ref: EntityRef | None = None, sources: list[str] | None = None,
                                  payload_types: list[str] | None = None) -> Iterator[SignalEnvelope]:
        """A stage's window: the given sources, or else sources ``stage`` / ``stage.*``."""
        q = self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources), types=_set(payload_types),
                          source_prefix=None if sources else stage)
        return self.query(q, checkpoint=checkpoint)

    def iter_recommendation_signals(self, *, start: datetime, end: datetime, checkpoint: ReplayCheckpoint | None = None,
                                    entity_ref: EntityRef | None = None, sources: list[str] | None = None,
                                    payload_types: list[str] | None = None) -> Iterator[SignalEnvelope]:
        q = self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources), types=_set(payload_types))
        return self.query(q, checkpoint=checkpoint)

    iter_learning_signals = iter_recommendation_signals

    def iter_learning_emissions(self, *, start: datetime, end: datetime, entity_ref: EntityRef | None = None,
                                emission_types: list[str] | None = None) -> Iterator[EmissionEnvelope]:
        return self.iter_emissions(start, end, entity_ref=entity_ref, emission_types=emission_types)

    # -- read models -------------------------------------------------------------------------------
    def _latest(self, query: EventQuery, limit: int | None) -> list[Envelope]:
        if limit is not None and limit <= 0:
            return []
        rows = list(self.query(query, limit=limit))
        rows.sort(key=lambda e: (e.timestamp, e.event_id), reverse=True)
        return rows

    def _ordered(self, query: EventQuery, limit: int | None = None) -> list[Envelope]:
        rows = sorted(self.query(query), key=lambda e: (e.timestamp, e.event_id))
        return rows[:limit] if limit is not None and limit >= 0 else rows

    def get_recent_signals_by_entity(self, *, entity_ref: EntityRef, limit: int, start: datetime | None = None,
                                     end: datetime | None = None, sources: list[str] | None = None) -> list[SignalEnvelope]:
        """The last ``limit`` signals about an entity, newest first; reads days newest first and stops early."""
        return self._latest(self.signal_query(start, end, newest_first=True, entity_ref=entity_ref, sources=_set(sources)), limit)

    def get_last_posts_by_entity(self, *, entity_ref: EntityRef, limit: int, start: datetime | None = None,
                                 end: datetime | None = None, sources: list[str] | None = None,
                                 payload_types: list[str] | None = None) -> list[SignalEnvelope]:
        types = frozenset(payload_types) if payload_types else frozenset({"SocialPostSeen"})
        return self._latest(self.signal_query(start, end, newest_first=True, entity_ref=entity_ref, sources=_set(sources), types=types), limit)

    def get_recent_signals_by_source(self, *, source: str, limit: int, start: datetime | None = None,
                                     end: datetime | None = None, entity_ref: EntityRef | None = None) -> list[SignalEnvelope]:
        return self._latest(self.signal_query(start, end, newest_first=True, entity_ref=entity_ref, sources=frozenset({source})), limit)

    def get_latest_draft_signals(self, *, limit: int, start: datetime, end: datetime, entity_ref: EntityRef | None = None,
                                 sources: list[str] | None = None, payload_types: list[str] | None = None) -> list[SignalEnvelope]:
        q = self.signal_query(start, end, newest_first=True, entity_ref=entity_ref, sources=_set(sources), types=_set(payload_types))
        return self._latest(q, limit)

    def get_latest_approval_outcomes(self, *, limit: int, start: datetime, end: datetime, entity_ref: EntityRef | None = None,
                                     emission_types: list[str] | None = None) -> list[EmissionEnvelope]:
        q = self.emission_query(start, end, newest_first=True, entity_ref=entity_ref, types=_set(emission_types))
        return self._latest(q, limit)

    def get_top_recommendation_candidates(self, *, start: datetime, end: datetime, limit: int, entity_ref: EntityRef | None = None,
                                          sources: list[str] | None = None, payload_types: list[str] | None = None,
                                          score_field: str = "score", unique_by_entity: bool = True) -> list[SignalEnvelope]:
        """Highest ``payload[score_field]`` first (ties: newer, then larger id); one per entity by default."""
        if limit <= 0:
            return []
        scored = []
        for s in self.query(self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources), types=_set(payload_types))):
            score = s.payload.get(score_field, 0.0) if isinstance(s.payload, dict) else None
            if isinstance(score, (int, float)):
                scored.append((float(score), s.timestamp, s.signal_id, s))
        scored.sort(key=lambda item: item[:3], reverse=True)
        selected: list[SignalEnvelope] = []
        seen: set[str] = set()
        for *_, s in scored:
            if unique_by_entity:
                key = s.entity_refs[0].key if s.entity_refs else f"signal:{s.signal_id}"
                if key in seen:
                    continue
                seen.add(key)
            selected.append(s)
            if len(selected) >= limit:
                break
        return selected

    def get_ready_candidates(self, *, start: datetime, end: datetime, limit: int | None = None, entity_ref: EntityRef | None = None,
                             sources: list[str] | None = None, ready_field: str = "status", ready_value: str = "READY",
                             payload_types: list[str] | None = None) -> list[SignalEnvelope]:
        q = self.signal_query(start, end, newest_first=True, entity_ref=entity_ref, sources=_set(sources),
                          types=_set(payload_types), payload_equals=((ready_field, ready_value),))
        return self._latest(q, limit if limit is not None and limit >= 0 else None)

    def get_outcomes_for_window(self, *, start: datetime, end: datetime, entity_ref: EntityRef | None = None,
                                emission_types: list[str] | None = None) -> list[EmissionEnvelope]:
        return self._ordered(self.emission_query(start, end, entity_ref=entity_ref, types=_set(emission_types)))

    @staticmethod
    def _payload_filters(**pairs) -> tuple[tuple[str, Any], ...]:
        return tuple((k, v) for k, v in pairs.items() if v is not None)

    def get_token_signals(self, *, start: datetime, end: datetime, token_id: str | None = None, project_entity_id: str | None = None,
                          entity_ref: EntityRef | None = None, sources: list[str] | None = None,
                          payload_types: list[str] | None = None, limit: int | None = None) -> list[SignalEnvelope]:
        q = self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources), types=_set(payload_types),
                          payload_equals=self._payload_filters(token_id=token_id, project_entity_id=project_entity_id))
        return self._ordered(q, limit)

    def get_promise_signals(self, *, start: datetime, end: datetime, promise_id: str | None = None, status: str | None = None,
                            entity_ref: EntityRef | None = None, sources: list[str] | None = None,
                            payload_types: list[str] | None = None, limit: int | None = None) -> list[SignalEnvelope]:
        q = self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources), types=_set(payload_types),
                          payload_equals=self._payload_filters(promise_id=promise_id, status=status))
        return self._ordered(q, limit)

    def get_promise_outcomes_for_window(self, *, start: datetime, end: datetime, promise_id: str | None = None, status: str | None = None,
                                        entity_ref: EntityRef | None = None, emission_types: list[str] | None = None) -> list[EmissionEnvelope]:
        q = self.emission_query(start, end, entity_ref=entity_ref, types=_set(emission_types),
                            payload_equals=self._payload_filters(promise_id=promise_id, status=status))
        return self._ordered(q)

    def get_unresolved_outcome_signals(self, *, start: datetime, end: datetime, entity_ref: EntityRef | None = None,
                                       sources: list[str] | None = None, pending_payload_types: list[str] | None = None,
                                       success_emission_types: list[str] | None = None,
                                       failure_emission_types: list[str] | None = None) -> list[SignalEnvelope]:
        """Pending outcome signals that no success or failure emission names in ``caused_by`` yet."""
        pending = _set(pending_payload_types) or DEFAULT_PENDING_OUTCOME_PAYLOAD_TYPES
        closing = (_set(success_emission_types) or DEFAULT_SUCCESS_EMISSION_TYPES) | (_set(failure_emission_types) or DEFAULT_FAILURE_EMISSION_TYPES)
        resolved = {e.caused_by for e in self.query(self.emission_query(start, end, entity_ref=entity_ref, types=closing))}
        q = self.signal_query(start, end, entity_ref=entity_ref, sources=_set(sources), types=pending)
        return sorted((s for s in self.query(q) if s.signal_id not in resolved), key=lambda s: (s.timestamp, s.signal_id))

    def get_expired_outcome_signals(self, *, now: datetime, start: datetime, end: datetime, entity_ref: EntityRef | None = None,
                                    sources: list[str] | None = None, pending_payload_types: list[str] | None = None,
                                    success_emission_types: list[str] | None = None, failure_emission_types: list[str] | None = None,
                                    expires_at_field: str = "expires_at") -> list[SignalEnvelope]:
        unresolved = self.get_unresolved_outcome_signals(
            start=start, end=end, entity_ref=entity_ref, sources=sources, pending_payload_types=pending_payload_types,
            success_emission_types=success_emission_types, failure_emission_types=failure_emission_types)
        return [s for s in unresolved if _expired(s, expires_at_field, ensure_utc(now))]

    def get_outcome_window_buckets(self, *, now: datetime, start: datetime, end: datetime, entity_ref: EntityRef | None = None,
                                   sources: list[str] | None = None, pending_payload_types: list[str] | None = None,
                                   success_emission_types: list[str] | None = None, failure_emission_types: list[str] | None = None,
                                   expires_at_field: str = "expires_at") -> dict[str, list]:
        """``pending`` (unresolved, not expired), ``expired``, ``success`` and ``failure`` emissions."""
        success_types = _set(success_emission_types) or DEFAULT_SUCCESS_EMISSION_TYPES
        failure_types = _set(failure_emission_types) or DEFAULT_FAILURE_EMISSION_TYPES
        unresolved = self.get_unresolved_outcome_signals(
            start=start, end=end, entity_ref=entity_ref, sources=sources, pending_payload_types=pending_payload_types,
            success_emission_types=list(success_types), failure_emission_types=list(failure_types))
        now_utc = ensure_utc(now)
        expired = [s for s in unresolved if _expired(s, expires_at_field, now_utc)]
        expired_ids = {s.signal_id for s in expired}
        return {
            "pending": [s for s in unresolved if s.signal_id not in expired_ids],
            "expired": expired,
            "success": self._ordered(self.emission_query(start, end, entity_ref=entity_ref, types=success_types)),
            "failure": self._ordered(self.emission_query(start, end, entity_ref=entity_ref, types=failure_types)),
        }


def _expired(signal: SignalEnvelope, field: str, now: datetime) -> bool:
    if not isinstance(signal.payload, dict):
        return False
    raw = signal.payload.get(field)
    if isinstance(raw, datetime):
        return ensure_utc(raw) < now
    if isinstance(raw, str):
        try:
            return parse_timestamp(raw) < now
        except ValueError:
            return False
    return False
