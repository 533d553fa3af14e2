"""The store's contract, run against both backends: idempotent writes, replay, checkpoints, snapshots, helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from musingly_pipeline.signals import DuplicateEventError, InvalidEnvelope, ReplayCheckpoint
from musingly_pipeline_tests.signals.conftest import ALICE, BOB, DAY, emission, signal

END = DAY + timedelta(days=30)


def ids(events) -> list[str]:
    return [e.event_id for e in events]


def test_write_is_idempotent_by_id_and_reports_the_existing_day(store):
    first = store.write_signal(signal(1))
    again = store.write_signal(signal(1, DAY + timedelta(days=3), payload={"changed": True}))
    assert first.written and not again.written
    assert again.day == DAY.date()
    assert store.write_signal(signal(1), on_duplicate="ignore").written is False
    replay = list(store.iter_signals(DAY, END))
    assert ids(replay) == ["s-1"] and replay[0].payload == {"n": "1"}


def test_raise_policy_writes_nothing_of_the_batch(store):
    store.write_signal(signal(1))
    with pytest.raises(DuplicateEventError, match="s-1"):
        store.write_signals([signal(2), signal(1), signal(3)], on_duplicate="raise")
    assert ids(store.iter_signals(DAY, END)) == ["s-1"]
    with pytest.raises(ValueError, match="duplicate policy"):
        store.write_signal(signal(4), on_duplicate="overwrite")


def test_batch_write_dedupes_within_the_batch_and_against_the_store(store):
    store.write_signals([signal(i) for i in range(5)])
    results = store.write_signals([signal(i) for i in range(3, 10)] + [signal(9)])
    assert [r.written for r in results] == [False, False] + [True] * 5 + [False]
    assert ids(store.iter_signals(DAY, END)) == [f"s-{i}" for i in range(10)]


@pytest.mark.parametrize("record, code", [
    ({"timestamp": "2026-02-05T00:00:00Z", "source": "s", "payload_type": "T", "payload": {}}, "SIGNAL_MISSING_ID"),
    ({"signal_id": "", "timestamp": "2026-02-05T00:00:00Z", "source": "s", "payload_type": "T", "payload": {}}, "SIGNAL_MISSING_ID"),
    ({"signal_id": "x", "timestamp": "2026-02-05T00:00:00", "source": "s", "payload_type": "T", "payload": {}}, "SIGNAL_NAIVE_TIMESTAMP"),
    ({"signal_id": "x", "timestamp": "yesterday", "source": "s", "payload_type": "T", "payload": {}}, "SIGNAL_BAD_TIMESTAMP"),
    ({"signal_id": "x", "timestamp": "2026-02-05T00:00:00Z", "source": "s", "payload_type": "T", "payload": {"v": float("nan")}}, "SIGNAL_BAD_PAYLOAD"),
    ({"signal_id": "x", "timestamp": "2026-02-05T00:00:00Z", "source": "s", "payload_type": "T", "payload": {"v": {1, 2}}}, "SIGNAL_BAD_PAYLOAD"),
])
def test_malformed_envelopes_are_rejected_before_anything_is_written(store, record, code):
    with pytest.raises(InvalidEnvelope) as info:
        store.write_signals([signal(1), record])
    assert code in [i.code for i in info.value.issues]
    assert info.value.issues[0].path.startswith("[1]")
    assert list(store.iter_signals(DAY, END)) == []


def test_replay_filters_by_window_entity_and_source_in_time_order(store):
    store.write_signals([
        signal("late", DAY + timedelta(hours=5)),
        signal("early", DAY + timedelta(hours=1), refs=(BOB,)),
        signal("other-source", DAY + timedelta(hours=2), source="route.worker"),
        signal("next-day", DAY + timedelta(days=1, hours=1), refs=(ALICE, BOB)),
        signal("outside", DAY + timedelta(days=5)),
    ])
    assert ids(store.iter_signals(DAY, DAY + timedelta(days=2))) == ["s-early", "s-other-source", "s-late", "s-next-day"]
    assert ids(store.iter_signals(DAY, END, entity_ref=BOB)) == ["s-early", "s-next-day"]
    assert ids(store.iter_signals(DAY, END, sources=["route.worker"])) == ["s-other-source"]
    # the window is inclusive at both ends
    assert ids(store.iter_signals(DAY + timedelta(hours=2), DAY + timedelta(hours=5))) == ["s-other-source", "s-late"]
    with pytest.raises(ValueError):
        list(store.iter_signals(END, DAY))


def test_checkpoints_resume_without_missing_or_repeating_many_events_at_one_timestamp(store):
    same = DAY + timedelta(hours=3)
    store.write_signals([signal(f"a{i:03}", same) for i in range(250)] + [signal(f"b{i}", same + timedelta(seconds=i)) for i in range(1, 20)])
    processed: list[str] = []
    checkpoint = None
    while True:
        batch = []
        for e in store.iter_signals_from_checkpoint(start=DAY, end=END, checkpoint=checkpoint):
            batch.append(e)
            if len(batch) == 7:  # the worker stops mid-way through the events sharing a timestamp
                break
        if not batch:
            break
        processed.extend(ids(batch))
        new_checkpoint = store.build_signal_checkpoint(batch)
        if checkpoint is not None and new_checkpoint.last_timestamp == checkpoint.last_timestamp:
            new_checkpoint = ReplayCheckpoint(new_checkpoint.last_timestamp,
                                              checkpoint.seen_ids_at_timestamp + new_checkpoint.seen_ids_at_timestamp)
        store.write_checkpoint("worker", new_checkpoint)
        checkpoint = store.read_checkpoint("worker")
    assert len(processed) == len(set(processed)) == 269
    assert store.read_checkpoint("missing") is None


def test_snapshots_round_trip(store):
    store.write_daily_digest_snapshot(day=DAY, digest={"top": ["s-1"]})
    assert store.read_daily_digest_snapshot("2026-02-05") == {"day": "2026-02-05", "digest": {"top": ["s-1"]}, "schema_version": "0.1"}
    store.write_calibration_snapshot(day=DAY.date(), report={"n": 1})
    assert store.read_calibration_snapshot(DAY)["report"] == {"n": 1}
    store.write_credibility_snapshot(day=DAY, report={"health": 0.9})
    assert store.read_credibility_snapshot(DAY)["report"] == {"health": 0.9}
    store.write_daily_digest_snapshot(day=DAY, digest={"top": []})  # a rerun rewrites the same day
    assert store.read_daily_digest_snapshot(DAY)["digest"] == {"top": []}
    store.write_snapshot("system_state", {"v": 1}, DAY)
    store.write_snapshot("system_state", {"v": 2}, DAY + timedelta(hours=1))
    assert store.read_snapshot("system_state") == {"v": 2}
    assert store.read_snapshot("system_state", DAY) == {"v": 1}
    assert store.read_daily_digest_snapshot("2026-01-01") is None
    with pytest.raises(ValueError, match="name"):
        store.write_snapshot("../escape", {})


def test_recent_helpers_are_newest_first_and_limited(store):
    store.write_signals([signal(i, DAY + timedelta(days=i % 4, minutes=i), refs=(ALICE,) if i % 2 else (BOB,),
                               source="score.worker" if i % 3 else "route.worker") for i in range(24)])
    recent = store.get_recent_signals_by_entity(entity_ref=ALICE, limit=3, end=END)
    assert ids(recent) == ["s-23", "s-19", "s-15"]
    by_source = store.get_recent_signals_by_source(source="route.worker", limit=2, end=END)
    assert ids(by_source) == ["s-15", "s-3"] and all(e.source == "route.worker" for e in by_source)
    assert store.get_recent_signals_by_entity(entity_ref=ALICE, limit=0) == []
    posts = store.get_last_posts_by_entity(entity_ref=BOB, limit=2, end=END)
    assert ids(posts) == ["s-22", "s-18"]


def test_stage_window_and_candidates(store):
    store.write_signals([
        signal("r1", DAY + timedelta(hours=1), source="route", payload_type="RouteInput"),
        signal("r2", DAY + timedelta(hours=2), source="route.worker", payload_type="RouteInput"),
        signal("r3", DAY + timedelta(hours=3), source="router", payload_type="RouteInput"),
        signal("u1", DAY + timedelta(hours=4), source="route.worker", payload_type="Other", refs=()),
        signal("u2", DAY + timedelta(hours=5), source="route.worker", payload_type="EntityResolved", refs=()),
    ])
    assert ids(store.iter_stage_window_signals(stage="route", start=DAY, end=END, payload_types=["RouteInput"])) == ["s-r1", "s-r2"]
    assert ids(store.iter_entity_candidate_signals(start=DAY, end=END, resolved=False)) == ["s-u1"]
    assert ids(store.iter_entity_candidate_signals(start=DAY, end=END, resolved=True)) == ["s-r1", "s-r2", "s-r3", "s-u2"]
    checkpoint = store.build_signal_checkpoint(store.iter_stage_window_signals(stage="route", start=DAY, end=DAY + timedelta(hours=1)))
    assert ids(store.iter_stage_window_signals(stage="route", start=DAY, end=END, checkpoint=checkpoint)) == ["s-r2", "s-u1", "s-u2"]


def test_recommendation_token_and_promise_reads(store):
    store.write_signals([
        signal("c1", DAY + timedelta(hours=1), payload_type="RecommendationCandidate", payload={"score": 0.5, "status": "READY"}),
        signal("c2", DAY + timedelta(hours=2), payload_type="RecommendationCandidate", payload={"score": 0.9}),
        signal("c3", DAY + timedelta(hours=3), payload_type="RecommendationCandidate", payload={"score": 0.7, "status": "READY"}, refs=(BOB,)),
        signal("t1", DAY + timedelta(hours=4), payload_type="TokenSignalSeen", payload={"token_id": "tok-1", "project_entity_id": "p"}),
        signal("t2", DAY + timedelta(hours=5), payload_type="TokenSignalSeen", payload={"token_id": "tok-2"}),
        signal("p1", DAY + timedelta(hours=6), payload_type="PromiseRegistered", payload={"promise_id": "pr-1", "status": "READY"}),
    ])
    top = store.get_top_recommendation_candidates(start=DAY, end=END, limit=5, payload_types=["RecommendationCandidate"])
    assert ids(top) == ["s-c2", "s-c3"]  # c1 shares alice with the higher-scored c2
    assert ids(store.get_top_recommendation_candidates(start=DAY, end=END, limit=5, payload_types=["RecommendationCandidate"],
                                                       unique_by_entity=False)) == ["s-c2", "s-c3", "s-c1"]
    assert ids(store.get_ready_candidates(start=DAY, end=END, payload_types=["RecommendationCandidate"])) == ["s-c3", "s-c1"]
    assert ids(store.get_token_signals(start=DAY, end=END, token_id="tok-1", project_entity_id="p")) == ["s-t1"]
    assert ids(store.get_promise_signals(start=DAY, end=END, promise_id="pr-1", status="READY")) == ["s-p1"]
    assert ids(store.get_latest_draft_signals(limit=2, start=DAY, end=END)) == ["s-p1", "s-t2"]


def test_emissions_outcome_buckets_and_approvals(store):
    store.write_signals([
        signal("pend", DAY + timedelta(hours=1), payload_type="OutcomePending", payload={"expires_at": "2026-03-01T00:00:00Z"}),
        signal("gone", DAY + timedelta(hours=2), payload_type="OutcomePending", payload={"expires_at": "2026-02-05T06:00:00Z"}),
        signal("done", DAY + timedelta(hours=3), payload_type="OutcomePending"),
        signal("fail", DAY + timedelta(hours=4), payload_type="OutcomePending"),
    ])
    store.write_emissions([
        emission("ok", DAY + timedelta(hours=5), caused_by="s-done"),
        emission("ko", DAY + timedelta(hours=6), emission_type="OutcomeFailure", caused_by="s-fail", payload={"promise_id": "pr-1"}),
        emission("ok", DAY + timedelta(hours=7), caused_by="s-other"),  # a duplicate id: ignored
    ])
    buckets = store.get_outcome_window_buckets(now=DAY + timedelta(hours=12), start=DAY, end=END)
    assert {k: ids(v) for k, v in buckets.items()} == {"pending": ["s-pend"], "expired": ["s-gone"], "success": ["e-ok"], "failure": ["e-ko"]}
    assert ids(store.get_latest_approval_outcomes(limit=5, start=DAY, end=END)) == ["e-ko", "e-ok"]
    assert ids(store.get_outcomes_for_window(start=DAY, end=END, emission_types=["OutcomeFailure"])) == ["e-ko"]
    assert ids(store.get_promise_outcomes_for_window(start=DAY, end=END, promise_id="pr-1")) == ["e-ko"]
    assert ids(store.iter_learning_emissions(start=DAY, end=END)) == ["e-ok", "e-ko"]


def test_days_lists_the_partitions(store):
    store.write_signals([signal(1, DAY), signal(2, DAY + timedelta(days=2)), signal(3, datetime(2026, 2, 7, 23, 59, tzinfo=UTC))])
    assert [d.isoformat() for d in store.days("signal")] == ["2026-02-05", "2026-02-07"]
