"""Items in groups (replay_safe processors) keep the guarantees of a savepoint per item.

The same items go through ``customer_data`` (a savepoint per item) and ``grouped_customer`` (the
same processor, replay_safe): the tables, statuses, errors and log lines must come out the same,
and only the grouped one may call ``process_item`` twice for an item.
"""

from __future__ import annotations

import logging

import psycopg
import pytest

from musingly_pipeline.batches.pipelined import PipelinedChunk
from musingly_pipeline_tests.batches.processors import CALLS, make_manager

ITEMS = [
    {"email": "ann@example.com", "name": "Ann"},                    # 0 ok
    {"email": "ann@example.com", "name": "Annie"},                  # 1 ok, updates ann: logs an info line
    {"email": "bob@example.com", "name": "Bob", "explode": True},   # 2 raises after a write, mid-group
    {"email": "cy@example.com", "name": None},                      # 3 NOT NULL violation, first of its group
    {"email": "no-at-sign", "name": "Dee"},                         # 4 invalid
    {"email": "dee@example.com", "name": "Dee"},                    # 5 ok
    {"email": "dee@example.com", "name": "Dee"},                    # 6 same content as 5: skipped
    {"email": "eve@example.com", "name": "Eve"},                    # 7 ok
    {"email": "fay@example.com", "name": None},                     # 8 NOT NULL violation, mid-group
    {"email": "gus@example.com", "name": "Gus"},                    # 9 ok
]


def rows(url, query, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def run(make_database, batch_type, items, **kwargs):
    manager = make_manager(make_database(), **kwargs)
    batch_id = manager.create_batch(batch_type, items)
    return manager, manager.process_batch(batch_id)


def outcome(manager, batch_id):
    """What a user sees of a batch, without ids that differ between databases."""
    items = manager.get_batch_items(batch_id)
    ids = {i.id: i.item_index for i in items}
    logs = [(ids.get(log.item_id), log.level, log.message) for log in manager.get_batch_logs(batch_id)
            if log.item_id is not None]
    return [(i.item_index, i.status, i.error_code, i.error_message, i.target_id, ids.get(i.duplicate_of))
            for i in items], sorted(logs)


@pytest.fixture(autouse=True)
def clear_calls():
    CALLS.clear()


@pytest.mark.parametrize("pipelining", [True, False])
def test_groups_keep_what_a_savepoint_per_item_keeps(make_database, caplog, pipelining):
    caplog.set_level(logging.INFO, logger="musingly_pipeline.batches")
    plain, plain_summary = run(make_database, "customer_data", ITEMS, pipelined=pipelining)
    plain_lines = [r.getMessage() for r in caplog.records]
    caplog.clear()
    grouped, grouped_summary = run(make_database, "grouped_customer", ITEMS, pipelined=pipelining)
    grouped_lines = [r.getMessage() for r in caplog.records]

    statuses, logs = outcome(grouped, grouped_summary.batch_id)
    assert [(i, s, code, target, dup) for i, s, code, _, target, dup in statuses] == [
        (0, "completed", None, "ann@example.com", None),
        (1, "completed", None, "ann@example.com", None),
        (2, "failed", "ITEM_FAILED", None, None),
        (3, "failed", "ITEM_FAILED", None, None),
        (4, "failed", "ITEM_INVALID", None, None),
        (5, "completed", None, "dee@example.com", None),
        (6, "skipped", None, None, 5),
        (7, "completed", None, "eve@example.com", None),
        (8, "failed", "ITEM_FAILED", None, None),
        (9, "completed", None, "gus@example.com", None),
    ]
    errors = {i: message for i, _, _, message, _, _ in statuses if message}
    assert "explode is set" in errors[2] and "NotNullViolation" in errors[3] and "NotNullViolation" in errors[8]
    # Every kept item logged once: no line of a rolled-back attempt survives, in the table or the logger.
    assert [line for line in logs if line[1] == "error"] == [
        (2, "error", f"item 2 failed: {errors[2]}"), (3, "error", f"item 3 failed: {errors[3]}"),
        (4, "error", "item 4 is invalid: validate_item returned False"), (8, "error", f"item 8 failed: {errors[8]}")]
    assert [line for line in logs if line[1] == "info"] == [(1, "info", "updated an existing customer")]
    assert sum("updated an existing customer" in line for line in grouped_lines) == 1
    assert sum(" failed: " in line or " is invalid: " in line for line in grouped_lines) == 4

    # The same as a savepoint per item: outcomes, log lines, tables, logger lines.
    assert (statuses, logs) == outcome(plain, plain_summary.batch_id)
    assert sorted(grouped_lines) == sorted(
        line.replace(str(plain_summary.batch_id), str(grouped_summary.batch_id))
        .replace("CustomerDataProcessor", "GroupedCustomerProcessor") for line in plain_lines)
    for query in ("SELECT email, name FROM customers ORDER BY email",
                  "SELECT email, count(*) FROM customer_events GROUP BY email ORDER BY email"):
        assert rows(grouped.database_url, query) == rows(plain.database_url, query)
    assert rows(grouped.database_url, "SELECT email, name FROM customers ORDER BY email") == [
        ("ann@example.com", "Annie"), ("dee@example.com", "Dee"), ("eve@example.com", "Eve"),
        ("gus@example.com", "Gus")]
    assert (grouped_summary.completed_items, grouped_summary.failed_items, grouped_summary.skipped_items) == (5, 4, 1)

    # A savepoint per item never calls process_item twice; groups call the items before a
    # mid-group failure, and that item, a second time (item 3 failed first in its group: once).
    # Pipelined, a database error shows at the group's end: the items after it ran too (9), and
    # the failing item runs again alone even when it came first (3).
    assert set(CALLS[t, i] for t, i in CALLS if t == "customer_data") == {1}
    grouped_calls = {i: n for (t, i), n in CALLS.items() if t == "grouped_customer"}
    assert grouped_calls == {0: 2, 1: 2, 2: 2, 3: 1 + pipelining, 5: 2, 7: 2, 8: 2, 9: 1 + pipelining}
    # The applied keys point at the kept items.
    items = {i.item_index: i.id for i in grouped.get_batch_items(grouped_summary.batch_id)}
    assert {r[0] for r in rows(grouped.database_url, "SELECT item_id FROM import_batch_item_keys")} == {
        items[i] for i in (0, 1, 5, 7, 9)}


@pytest.mark.parametrize("chunk_size", [500, 7])
def test_reads_inside_groups_see_exactly_the_kept_writes(make_database, chunk_size):
    fails = {3: "after_write", 4: "null", 17: "null", 18: "after_write", 33: "after_write", 40: "null"}
    items = [{"i": i, **({"fail": fails[i]} if i in fails else {})} for i in range(45)]
    manager, summary = run(make_database, "running_number", items, chunk_size=chunk_size)

    done = manager.get_batch_items(summary.batch_id)
    assert {i.item_index for i in done if i.status == "failed"} == set(fails)
    assert [i.error_code for i in done if i.status == "failed"] == ["ITEM_FAILED"] * len(fails)
    assert all("AssertionError" not in (i.error_message or "") for i in done)
    kept = [int(i.target_id) for i in done if i.status == "completed"]
    assert kept == list(range(45 - len(fails)))  # in item order, no gap, no repeat
    assert rows(manager.database_url, "SELECT n FROM counted ORDER BY n") == [(n,) for n in kept]
    wrote = [log.message for log in manager.get_batch_logs(summary.batch_id) if log.message.startswith("wrote")]
    assert wrote == [f"wrote {n}" for n in kept]
    assert sum(CALLS.values()) > len(items)  # groups were rolled back and run again


def test_a_processor_that_is_not_replay_safe_runs_each_item_once(make_database):
    manager, summary = run(make_database, "customer_data", ITEMS * 3, chunk_size=500, group_size=4)
    # The copies of good items are skipped; those of failing items fail again, each in one call.
    assert (summary.completed_items, summary.failed_items, summary.skipped_items) == (5, 12, 13)
    assert len(CALLS) == 5 + 9 and set(CALLS.values()) == {1}


@pytest.mark.parametrize("batch_type", ["swallows_errors", "grouped_swallows_errors"])
def test_an_item_that_catches_a_database_error_fails_alone(make_database, batch_type):
    manager, summary = run(make_database, batch_type, [{"divide": 1}, {"divide": 0}, {"divide": 2}])
    assert (summary.completed_items, summary.failed_items) == (2, 1)
    failed = manager.get_batch_items(summary.batch_id, status="failed")
    assert [i.item_index for i in failed] == [1]
    assert failed[0].error_message.startswith("ItemAborted: the item caught a database error")


def test_an_item_may_catch_an_error_in_its_own_nested_transaction(make_database):
    items = [{"n": 1}, {"n": 2}, {"n": None}, {"n": 4}, {"n": None}, {"n": 6}]
    manager, summary = run(make_database, "catches_in_a_savepoint", items * 3, chunk_size=500)
    assert (summary.status, summary.completed_items, summary.skipped_items) == ("completed", 5, 13)
    assert rows(manager.database_url, "SELECT n FROM counted ORDER BY n") == [(-1,), (1,), (2,), (4,), (6,)]
    warnings = [log for log in manager.get_batch_logs(summary.batch_id) if log.level == "warning"]
    assert [w.message for w in warnings] == ["n is missing: counted as -1"]


def test_rows_read_back_inside_groups(make_database):
    manager, summary = run(make_database, "returning", [{"n": n} for n in range(1, 21)])
    assert (summary.status, summary.completed_items) == ("completed", 20)
    done = manager.get_batch_items(summary.batch_id)
    assert [i.target_id for i in done] == [str(n * 10) for n in range(1, 21)]
    assert [i.result["sum"] for i in done] == [n * (n + 1) // 2 for n in range(1, 21)]


@pytest.mark.parametrize("group_size", [2, 3, 16])
def test_every_other_item_failing_lands_each_error_on_its_item(make_database, group_size):
    manager, summary = run(make_database, "every_other_fails", [{"n": n} for n in range(60)], chunk_size=25,
                           group_size=group_size)
    done = manager.get_batch_items(summary.batch_id)
    assert [i.item_index for i in done if i.status == "failed"] == list(range(1, 60, 2))
    assert all("NotNullViolation" in i.error_message and "process_item" in i.error_traceback
               for i in done if i.status == "failed")
    assert rows(manager.database_url, "SELECT n FROM counted ORDER BY n") == [(n,) for n in range(0, 60, 2)]
    errors = [log for log in manager.get_batch_logs(summary.batch_id) if log.level == "error"]
    assert sorted(ids := [log.item_id for log in errors]) == sorted({i.id for i in done if i.status == "failed"})
    assert len(ids) == 30


def test_failures_with_a_nul_or_a_lone_surrogate_are_recorded(make_database):
    manager, summary = run(make_database, "nul_message", [{"n": 1}])
    assert (summary.status, summary.failed_items) == ("failed", 1)
    item = manager.get_batch_items(summary.batch_id)[0]
    assert item.error_message == "ValueError: bad byte \\x00 and a lone surrogate \\udcff in here"
    assert "ValueError: bad byte \\x00" in item.error_traceback
    messages = [log.message for log in manager.get_batch_logs(summary.batch_id)]
    assert "about to fail with a NUL \\x00 in the message" in messages


def test_identical_items_of_a_processor_that_always_runs_are_both_applied(make_database):
    manager, summary = run(make_database, "always_run", [{"n": 5}, {"n": 5}])
    assert (summary.status, summary.completed_items) == ("completed", 2)
    assert rows(manager.database_url, "SELECT count(*) FROM counted WHERE n = 5") == [(2,)]
    later = manager.get_batch_items(summary.batch_id)[1].id
    assert rows(manager.database_url, "SELECT item_id FROM import_batch_item_keys WHERE batch_type = 'always_run'"
                ) == [(later,)]



@pytest.mark.parametrize("batch_type", ["swallows_write_errors", "grouped_swallows_write_errors"])
def test_a_caught_error_of_a_write_that_is_not_waited_for_fails_its_item_alone(make_database, batch_type):
    # Pipelined, the INSERT's error only shows at the group's sync, not where the processor catches
    # it; the group is rolled back and the item runs alone, where it catches the error as usual.
    items = [{"n": n} for n in range(40)] + [{"n": None}] + [{"n": n} for n in range(40, 60)]
    items[5], items[22] = {"n": None, "k": 1}, {"n": None, "k": 2}  # distinct content: not skipped
    manager, summary = run(make_database, batch_type, items)
    assert (summary.completed_items, summary.failed_items) == (58, 3)
    failed = manager.get_batch_items(summary.batch_id, status="failed")
    assert [i.item_index for i in failed] == [5, 22, 40]
    assert all(i.error_message.startswith("ItemAborted: the item caught a database error") for i in failed)
    assert rows(manager.database_url, "SELECT n FROM counted ORDER BY n") == [
        (n,) for n in range(60) if n not in (5, 22)]


def test_ctx_connection_leaves_pipeline_mode_and_an_earlier_error_stays_with_its_item(make_database, monkeypatch):
    piped = []
    original = PipelinedChunk._piped_group
    monkeypatch.setattr(PipelinedChunk, "_piped_group",
                        lambda self, group: piped.append(group[0].item_index) or original(self, group))
    # Item 1's NULL is sent without waiting; its error shows later (at item 2's statement, or when
    # item 2 asks for ctx.connection, which waits for what was sent) but stays item 1's. Once item
    # 2 has used ctx.connection, the run goes without pipelining.
    items = [{"n": 0}, {"n": None}, {"n": 2, "direct": True}] + [{"n": n} for n in range(3, 40)]
    manager, summary = run(make_database, "connection_midway", items)
    assert (summary.completed_items, summary.failed_items) == (39, 1)
    [failed] = manager.get_batch_items(summary.batch_id, status="failed")
    assert failed.item_index == 1 and "NotNullViolation" in failed.error_message
    assert piped[0] == 0 and max(piped) <= 2 and len(piped) <= 3
    assert rows(manager.database_url, "SELECT n FROM counted ORDER BY n") == [(n,) for n in range(40) if n != 1]
    assert rows(manager.database_url, "SELECT hook FROM hook_marks") == [("direct 2",)]


def test_statements_prepared_outside_a_pipeline_keep_working_inside(make_database):
    # Failing items run alone, outside pipeline mode, where psycopg prepares a statement after a few
    # runs; pipelined groups before and after them fail and succeed: every outcome must stay right.
    items = [{"n": 2 * n + 1 if n % 7 == 3 else 2 * n} for n in range(300)]
    manager, summary = run(make_database, "every_other_fails", items)
    done = manager.get_batch_items(summary.batch_id)
    assert [i.item_index for i in done if i.status == "failed"] == [n for n in range(300) if n % 7 == 3]
    assert all("NotNullViolation" in i.error_message for i in done if i.status == "failed")
    assert rows(manager.database_url, "SELECT n FROM counted ORDER BY n") == [
        (2 * n,) for n in range(300) if n % 7 != 3]
