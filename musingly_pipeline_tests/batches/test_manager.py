"""Import batches against a real PostgreSQL: savepoints, hooks, reprocessing, applied keys, views."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from musingly_pipeline.batches import BatchError
from musingly_pipeline_tests.batches.processors import make_manager


@pytest.fixture
def manager(make_database):
    return make_manager(make_database(), chunk_size=3)


def rows(manager, query, params=None):
    with psycopg.connect(manager.database_url) as conn:
        return conn.execute(query, params).fetchall()


def test_tables_views_and_indexes_exist(manager):
    names = {r[0] for r in rows(manager, "SELECT relname FROM pg_class WHERE relname LIKE 'import_batch%'"
                                          " OR relname = 'failed_imports_report'")}
    assert {"import_batches", "import_batch_items", "import_batch_logs", "import_batch_item_keys",
            "import_batch_summary", "failed_imports_report", "import_batch_items_batch_id_item_index_key"} <= names
    # The bundle import log (snapshot store) and the batch audit log are different tables.
    batch_log_columns = {r[0] for r in rows(manager, "SELECT column_name FROM information_schema.columns "
                                                      "WHERE table_name = 'import_batch_logs'")}
    bundle_log_columns = {r[0] for r in rows(manager, "SELECT column_name FROM information_schema.columns "
                                                       "WHERE table_name = 'import_logs'")}
    assert "batch_id" in batch_log_columns and "batch_id" not in bundle_log_columns
    assert "version_label" in bundle_log_columns


def test_a_failing_item_rolls_back_alone_and_keeps_its_error(manager):
    items = [
        {"email": "ann@example.com", "name": "Ann"},
        {"email": "bob@example.com", "name": "Bob", "explode": True},   # raises after a first write
        {"email": "cy@example.com", "name": None},                     # NOT NULL violation in SQL
        {"email": "no-at-sign", "name": "Dee"},                        # invalid
        {"email": "eve@example.com", "name": "Eve"},
    ]
    batch_id = manager.create_batch("customer_data", items)
    summary = manager.process_batch(batch_id)

    assert (summary.status, summary.total_items, summary.completed_items, summary.failed_items) == ("failed", 5, 2, 3)
    assert summary.success_rate == 40.0
    assert summary.items_per_second is not None and summary.items_per_second > 0
    assert rows(manager, "SELECT email FROM customers ORDER BY email") == [("ann@example.com",), ("eve@example.com",)]
    # The event row bob's item wrote before raising was rolled back with it.
    assert rows(manager, "SELECT email FROM customer_events ORDER BY email") == [
        ("ann@example.com",), ("eve@example.com",)]

    failed = {i.item_index: i for i in manager.get_batch_items(batch_id, status="failed")}
    assert failed[1].error_code == "ITEM_FAILED" and "explode is set" in failed[1].error_message
    assert "Traceback" in failed[1].error_traceback and "process_item" in failed[1].error_traceback
    assert failed[2].error_code == "ITEM_FAILED" and "NotNullViolation" in failed[2].error_message
    assert failed[3].error_code == "ITEM_INVALID" and failed[3].error_message == "validate_item returned False"
    done = manager.get_batch_items(batch_id, status="completed")
    assert [(i.target_table, i.target_id) for i in done] == [("customers", "ann@example.com"),
                                                              ("customers", "eve@example.com")]

    errors = [log for log in manager.get_batch_logs(batch_id) if log.level == "error"]
    assert len(errors) == 3 and all("traceback" in log.details for log in errors)
    assert {log.item_id for log in errors} == {failed[i].id for i in (1, 2, 3)}


def test_validation_failure_never_reaches_process_item(manager):
    batch_id = manager.create_batch("customer_data", [{"email": "nobody", "name": "X"}])
    manager.process_batch(batch_id)
    assert rows(manager, "SELECT count(*) FROM customer_events") == [(0,)]


def test_unknown_type_empty_batch_and_bad_items_write_nothing(manager):
    with pytest.raises(BatchError) as unknown:
        manager.create_batch("customer_dta", [{"email": "a@b"}])
    assert unknown.value.code == "BATCH_UNKNOWN_TYPE" and "customer_data" in unknown.value.message
    with pytest.raises(BatchError) as empty:
        manager.create_batch("customer_data", [])
    assert empty.value.code == "BATCH_EMPTY"
    with pytest.raises(BatchError) as not_object:
        manager.create_batch("customer_data", [{"email": "a@b"}, ["not", "an", "object"]])
    assert (not_object.value.code, not_object.value.path) == ("BATCH_ITEM_NOT_OBJECT", "items[1]")
    with pytest.raises(BatchError) as nul:
        manager.create_batch("customer_data", [{"email": "a\x00@b"}])
    assert nul.value.code == "BATCH_ITEM_NOT_JSON"
    assert rows(manager, "SELECT count(*) FROM import_batches") == [(0,)]
    assert rows(manager, "SELECT count(*) FROM import_batch_items") == [(0,)]


def test_unknown_and_malformed_batch_ids(manager):
    with pytest.raises(BatchError) as missing:
        manager.process_batch(uuid.uuid4())
    assert missing.value.code == "BATCH_NOT_FOUND"
    with pytest.raises(BatchError) as malformed:
        manager.get_batch_summary("12")
    assert malformed.value.code == "BATCH_ID_INVALID"


def test_a_start_hook_that_raises_keeps_nothing_and_items_stay_pending(manager):
    batch_id = manager.create_batch("start_hook_fails", [{"n": 1}, {"n": 2}])
    with pytest.raises(BatchError) as raised:
        manager.process_batch(batch_id)
    assert raised.value.code == "BATCH_HOOK_FAILED" and "reference data is missing" in raised.value.message
    assert rows(manager, "SELECT count(*) FROM hook_marks") == [(0,)]
    summary = manager.get_batch_summary(batch_id)
    assert (summary.status, summary.pending_items) == ("failed", 2)
    assert "on_batch_start raised RuntimeError" in summary.error_message
    assert any(log.details.get("code") == "BATCH_HOOK_FAILED" for log in manager.get_batch_logs(batch_id))


def test_a_complete_hook_that_raises_keeps_the_items_but_not_its_writes(manager):
    batch_id = manager.create_batch("complete_hook_fails", [{"n": 1}, {"n": 2}])
    with pytest.raises(BatchError) as raised:
        manager.process_batch(batch_id)
    assert raised.value.code == "BATCH_HOOK_FAILED"
    assert rows(manager, "SELECT hook, count(*) FROM hook_marks GROUP BY hook") == [("item", 2)]
    summary = manager.get_batch_summary(batch_id)
    assert (summary.status, summary.completed_items) == ("failed", 2)


def test_fix_the_data_then_reprocess_only_the_failures(manager):
    with psycopg.connect(manager.database_url) as conn:
        conn.execute("INSERT INTO toggle_switch VALUES ('off')")
    first = manager.process_batch(manager.create_batch("toggle", [{"n": i} for i in range(4)]))
    assert (first.status, first.failed_items) == ("failed", 4)
    report = manager.failed_imports_report()
    assert [(r["batch_id"], r["failed_items"], r["unresolved_items"]) for r in report] == [
        (str(first.batch_id), 4, 4)]

    with psycopg.connect(manager.database_url) as conn:
        conn.execute("UPDATE toggle_switch SET value = 'on'")
    second = manager.reprocess_batch(first.batch_id, failed_items_only=True)
    assert second.batch_id != first.batch_id and second.parent_batch_id == first.batch_id
    assert (second.status, second.total_items, second.completed_items) == ("completed", 4, 4)
    assert second.metadata == {"reprocess_of": str(first.batch_id), "failed_items_only": True}
    copies = manager.get_batch_items(second.batch_id)
    originals = {i.id: i for i in manager.get_batch_items(first.batch_id)}
    assert all(originals[c.source_item_id].source_data == c.source_data for c in copies)
    assert rows(manager, "SELECT count(*) FROM counted") == [(4,)]
    report = manager.failed_imports_report()
    assert report[0]["unresolved_items"] == 0 and report[0]["reprocess_batch_ids"] == [str(second.batch_id)]

    # Reprocessing the original again finds every item already applied: skipped, not applied twice.
    third = manager.reprocess_batch(first.batch_id)
    assert (third.status, third.skipped_items, third.completed_items, third.success_rate) == ("completed", 4, 0, 100.0)
    assert rows(manager, "SELECT count(*) FROM counted") == [(4,)]
    skipped = manager.get_batch_items(third.batch_id)
    assert {i.duplicate_of for i in skipped} == {c.id for c in copies}


def test_reprocess_all_items_skips_those_already_applied(manager):
    batch_id = manager.create_batch("customer_data", [{"email": "a@x.org", "name": "A"},
                                                      {"email": "b@x.org", "name": "B", "explode": True}])
    manager.process_batch(batch_id)
    again = manager.reprocess_batch(batch_id, failed_items_only=False)
    assert (again.total_items, again.skipped_items, again.failed_items) == (2, 1, 1)
    assert rows(manager, "SELECT count(*) FROM customer_events") == [(1,)]


def test_nothing_to_reprocess_and_a_completed_batch_is_not_processed_twice(manager):
    batch_id = manager.create_batch("counter", [{"n": i} for i in range(7)])
    first = manager.process_batch(batch_id)
    assert (first.status, first.completed_items) == ("completed", 7)
    assert manager.process_batch(batch_id).completed_items == 7
    assert rows(manager, "SELECT count(*) FROM counted") == [(7,)]
    with pytest.raises(BatchError) as nothing:
        manager.reprocess_batch(batch_id)
    assert nothing.value.code == "BATCH_NOTHING_TO_REPROCESS"
    assert len(manager.list_batches()) == 1


def test_identical_items_in_one_batch_are_applied_once(manager):
    summary = manager.process_batch(manager.create_batch("counter", [{"n": 1}, {"n": 2}, {"n": 1}]))
    assert (summary.completed_items, summary.skipped_items) == (2, 1)
    assert rows(manager, "SELECT n FROM counted ORDER BY n") == [(1,), (2,)]


def test_a_second_run_of_a_batch_being_processed_is_refused(manager):
    batch_id = manager.create_batch("counter", [{"n": 1}])
    with psycopg.connect(manager.database_url, autocommit=True) as holder:
        from musingly_pipeline.batches.store import batch_lock_key
        holder.execute("SELECT pg_advisory_lock(%s)", (batch_lock_key(batch_id),))
        with pytest.raises(BatchError) as busy:
            manager.process_batch(batch_id)
        assert busy.value.code == "BATCH_BUSY"
    assert manager.process_batch(batch_id).completed_items == 1


def test_list_batches_filters(manager):
    ok = manager.process_batch(manager.create_batch("counter", [{"n": 1}]))
    bad = manager.process_batch(manager.create_batch("customer_data", [{"email": "x"}]))
    assert [s.batch_id for s in manager.list_batches(status="failed")] == [bad.batch_id]
    assert [s.batch_id for s in manager.list_batches(batch_type="counter")] == [ok.batch_id]
    with pytest.raises(BatchError) as invalid:
        manager.list_batches(status="broken")
    assert invalid.value.code == "BATCH_STATUS_INVALID"


def test_applied_keys_name_existing_items_and_go_with_them(manager):
    # Migration 0006 checks and cascades item_id in bulk (statement triggers) instead of a foreign key.
    first = manager.process_batch(manager.create_batch("counter", [{"n": n} for n in range(5)]))
    second = manager.process_batch(manager.create_batch("counter", [{"n": n} for n in range(5, 8)]))
    assert rows(manager, "SELECT count(*) FROM import_batch_item_keys") == [(8,)]
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="names item -1, which does not exist"):
        rows(manager, "INSERT INTO import_batch_item_keys (batch_type, item_key, item_id)"
                      " VALUES ('counter', 'x', 1), ('counter', 'y', -1)")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        rows(manager, "UPDATE import_batch_item_keys SET item_id = item_id + 1000000")
    # Deleting a batch deletes its items (cascade), and their keys and log lines with them.
    with psycopg.connect(manager.database_url) as conn:
        conn.execute("DELETE FROM import_batches WHERE id = %s", (first.batch_id,))
    kept = {i.id for i in manager.get_batch_items(second.batch_id)}
    assert {r[0] for r in rows(manager, "SELECT item_id FROM import_batch_item_keys")} == kept
    assert {r[0] for r in rows(manager, "SELECT id FROM import_batch_items")} == kept
    assert rows(manager, "SELECT count(*) FROM import_batch_logs WHERE batch_id = %s", (first.batch_id,)) == [(0,)]
    # Items name existing batches (the baseline checks per statement instead of a foreign key).
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="names batch .* which does not exist"):
        rows(manager, "INSERT INTO import_batch_items (batch_id, item_index, source_data, item_key)"
                      " VALUES (%s, 9, '{}', 'k'), (%s, 0, '{}', 'k') RETURNING id", (second.batch_id, first.batch_id))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        rows(manager, "UPDATE import_batch_items SET batch_id = %s RETURNING id", (first.batch_id,))
    # The content of the deleted batch is no longer applied: importing it again applies it.
    again = manager.process_batch(manager.create_batch("counter", [{"n": n} for n in range(5)]))
    assert (again.completed_items, again.skipped_items) == (5, 0)
    with psycopg.connect(manager.database_url) as conn:
        conn.execute("TRUNCATE import_batch_items CASCADE")
    assert rows(manager, "SELECT count(*) FROM import_batch_item_keys") == [(0,)]
    manager.process_batch(manager.create_batch("counter", [{"n": n} for n in range(3)]))
    with psycopg.connect(manager.database_url) as conn:
        conn.execute("TRUNCATE import_batches CASCADE")
    assert rows(manager, "SELECT count(*) FROM import_batch_items") == [(0,)]
    assert rows(manager, "SELECT count(*) FROM import_batch_item_keys") == [(0,)]
