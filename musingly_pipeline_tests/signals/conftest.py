"""Fixtures for the signal store: a store per backend, and envelope factories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from musingly_pipeline.signals import EmissionEnvelope, EntityRef, FileSystemStore, SignalEnvelope

DAY = datetime(2026, 2, 5, tzinfo=UTC)
ALICE = EntityRef(ref_type="person", value="alice", platform="x")
BOB = EntityRef(ref_type="person", value="bob", platform="x")


def signal(i: int | str, at: datetime | None = None, *, source: str = "ingest.worker", payload_type: str = "SocialPostSeen",
           payload=None, refs=(ALICE,)) -> SignalEnvelope:
    at = at if at is not None else DAY + timedelta(minutes=int(i) if str(i).isdigit() else 0)
    return SignalEnvelope(signal_id=f"s-{i}", timestamp=at, source=source, payload_type=payload_type,
                          payload=payload if payload is not None else {"n": str(i)}, entity_refs=refs)


def emission(i: int | str, at: datetime, *, emission_type: str = "OutcomeSuccess", caused_by: str = "", payload=None) -> EmissionEnvelope:
    return EmissionEnvelope(emission_id=f"e-{i}", timestamp=at, emission_type=emission_type, caused_by=caused_by,
                            payload=payload if payload is not None else {})


@pytest.fixture(params=["file", "postgres"])
def store(request, tmp_path):
    """A fresh, empty store of each backend (the same tests run against both)."""
    if request.param == "file":
        s = FileSystemStore(tmp_path / "workspace")
    else:
        from musingly_pipeline.signals.postgres_store import PostgresStore
        from musingly_pipeline.storage.migrations import migrate

        url = request.getfixturevalue("make_database")()
        migrate(url)
        s = PostgresStore(url)
    yield s
    s.close()
