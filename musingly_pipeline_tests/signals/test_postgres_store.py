"""The PostgreSQL backend: one partition per day, created on demand; concurrent writers never duplicate an id."""

from __future__ import annotations

import threading
from datetime import timedelta

from musingly_pipeline.signals.postgres_store import PostgresStore
from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.migrations import migrate
from musingly_pipeline_tests.signals.conftest import DAY, signal


def test_partitions_per_day_and_racing_writers(make_database):
    url = make_database()
    migrate(url)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        store = PostgresStore(url)
        try:
            barrier.wait()
            for k in range(0, 60, 6):
                store.write_signals([signal(i, DAY + timedelta(days=i % 3, minutes=i)) for i in range(offset + k, offset + k + 6)])
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 20, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with connect(url) as conn:
        parts = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'signal_events'::regclass ORDER BY 1")]
        count, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM signal_events").fetchone()
    assert parts == ["signal_events_20260205", "signal_events_20260206", "signal_events_20260207"]
    assert count == distinct == 100
    store = PostgresStore(url)
    assert len(list(store.iter_signals(DAY + timedelta(days=1), DAY + timedelta(days=1, hours=23)))) == 33
    store.close()
