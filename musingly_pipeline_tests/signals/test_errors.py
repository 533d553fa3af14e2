"""The store's refusals are MusinglyErrors with SIGNAL_* codes, and still the built-in errors callers catch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from musingly_pipeline.errors import PIPELINE_CODES, MusinglyError
from musingly_pipeline.signals import DuplicateEventError, InvalidEnvelope, ReplayCheckpoint, open_store
from musingly_pipeline.signals.checkpoints import build_checkpoint
from musingly_pipeline.signals.lifecycle import record_snapshot_event
from musingly_pipeline_tests.signals.conftest import DAY, signal


def refusal(call, code: str, base: type[Exception] = ValueError) -> MusinglyError:
    with pytest.raises(MusinglyError) as info:
        call()
    assert info.value.code == code and code in PIPELINE_CODES
    assert isinstance(info.value, base)
    assert str(info.value).startswith(f"{code}: ")
    return info.value


def test_each_refusal_has_its_code(store):
    store.write_signal(signal(1))
    refusal(lambda: store.write_signals([signal(1)], on_duplicate="raise"), "SIGNAL_DUPLICATE_ID")
    refusal(lambda: store.write_signal(signal(2), on_duplicate="overwrite"), "SIGNAL_DUPLICATE_POLICY_INVALID")
    refusal(lambda: store.write_checkpoint("../escape", ReplayCheckpoint(DAY)), "SIGNAL_NAME_INVALID")
    refusal(lambda: list(store.iter_signals(DAY, DAY - timedelta(days=1))), "SIGNAL_WINDOW_INVALID")
    refusal(lambda: build_checkpoint([signal(3, DAY + timedelta(hours=1)), signal(4, DAY)]), "SIGNAL_CHECKPOINT_ORDER")
    refusal(lambda: record_snapshot_event(store, "deleted", 1, None, None, DAY), "SIGNAL_LIFECYCLE_EVENT_UNKNOWN")


def test_an_invalid_batch_carries_its_first_issue_and_names_every_one(store):
    bad = {"signal_id": "", "timestamp": "2026-02-05T00:00:00", "source": "s", "payload_type": "T", "payload": {}}
    exc = refusal(lambda: store.write_signals([signal(1), bad]), "SIGNAL_MISSING_ID")
    assert isinstance(exc, InvalidEnvelope) and exc.path == "[1].signal_id"
    assert [i.code for i in exc.issues] == ["SIGNAL_MISSING_ID", "SIGNAL_NAIVE_TIMESTAMP"]
    assert "SIGNAL_NAIVE_TIMESTAMP [1].timestamp" in str(exc)
    assert exc.to_dict()["code"] == "SIGNAL_MISSING_ID"


def test_a_duplicate_is_still_a_value_error(store):
    store.write_signal(signal(1))
    with pytest.raises(ValueError):
        store.write_signal(signal(1), on_duplicate="raise")
    assert issubclass(DuplicateEventError, MusinglyError)


def test_a_file_is_not_a_store(tmp_path):
    (tmp_path / "file").write_text("x")
    refusal(lambda: open_store(tmp_path / "file"), "SIGNAL_STORE_NOT_DIRECTORY", MusinglyError)
