"""The import batch tables: SQL for batches, their items, the applied-keys table and the audit log.

Every function takes an open psycopg connection (with ``dict_row``) and leaves transaction control
to the caller, except where the docstring says it commits. The records it reads and writes are in
:mod:`musingly_pipeline.batches.records`; :class:`~musingly_pipeline.batches.BatchManager` is the
API on top of it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from musingly_pipeline.batches.errors import BatchError
from musingly_pipeline.batches.item_json import dumps
from musingly_pipeline.batches.records import (
    BatchSummary, ImportBatchItem, ItemOutcome, ItemRecord, LogEntry, LogRecord, jsonable)


def insert_batch(
    conn: psycopg.Connection,
    batch_type: str,
    items: Sequence[tuple[str, str]],
    *,
    metadata: dict[str, Any] | None = None,
    parent_batch_id: uuid.UUID | None = None,
    created_by: str | None = None,
) -> uuid.UUID:
    """Insert a batch and its items (``(source_json_text, item_key)`` pairs, via COPY); no commit."""
    batch_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO import_batches (id, batch_type, total_items, parent_batch_id, metadata, created_by)"
        " VALUES (%s, %s, %s, %s, %s::jsonb, %s)",
        (batch_id, batch_type, len(items), parent_batch_id, dumps(metadata or {}), created_by),
    )
    with conn.cursor() as cur, cur.copy(
        "COPY import_batch_items (batch_id, item_index, source_data, item_key) FROM STDIN"
    ) as copy:
        for index, (text, key) in enumerate(items):
            copy.write_row((batch_id, index, text, key))
    return batch_id


def copy_items_to_new_batch(
    conn: psycopg.Connection, original: BatchSummary, item_statuses: Sequence[str], metadata: dict[str, Any],
    created_by: str | None = None,
) -> uuid.UUID | None:
    """A new batch linked to ``original`` holding copies of its items in ``item_statuses``; no commit.

    Its ``created_by`` is ``created_by`` or, if None, the original's. Returns ``None`` (and writes
    nothing) when the original has no such items.
    """
    batch_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO import_batches (id, batch_type, total_items, parent_batch_id, metadata, created_by)"
        " SELECT %(new)s, b.batch_type, n.count, b.id, %(metadata)s::jsonb, coalesce(%(by)s, b.created_by)"
        " FROM import_batches b, LATERAL (SELECT count(*) AS count FROM import_batch_items i"
        "   WHERE i.batch_id = b.id AND i.status = ANY(%(statuses)s)) n"
        " WHERE b.id = %(old)s AND n.count > 0",
        {"new": batch_id, "old": original.batch_id, "statuses": list(item_statuses), "metadata": dumps(metadata),
         "by": created_by},
    )
    if conn.execute("SELECT 1 FROM import_batches WHERE id = %s", (batch_id,)).fetchone() is None:
        return None
    conn.execute(
        "INSERT INTO import_batch_items (batch_id, item_index, source_data, item_key, source_item_id)"
        " SELECT %(new)s, (row_number() OVER (ORDER BY i.item_index)) - 1, i.source_data, i.item_key, i.id"
        " FROM import_batch_items i WHERE i.batch_id = %(old)s AND i.status = ANY(%(statuses)s)",
        {"new": batch_id, "old": original.batch_id, "statuses": list(item_statuses)},
    )
    return batch_id


def batch_lock_key(batch_id: uuid.UUID) -> int:
    """The advisory lock that one processing run of a batch holds (a signed 64-bit integer)."""
    return int.from_bytes(batch_id.bytes[:8], "big", signed=True)


def try_lock_batch(conn: psycopg.Connection, batch_id: uuid.UUID) -> bool:
    """Take the batch's session lock; released when the connection ends, even if the process dies."""
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (batch_lock_key(batch_id),)).fetchone()["ok"])


def unlock_batch(conn: psycopg.Connection, batch_id: uuid.UUID) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (batch_lock_key(batch_id),))


def batch_is_running(conn: psycopg.Connection, batch_id: uuid.UUID) -> bool:
    """Whether a processing run (of any process) holds the batch's session lock now.

    Read from ``pg_locks`` without taking the lock, so asking never makes a starting run busy. A
    bigint advisory lock shows there as its high and low 32 bits (``classid``, ``objid``) with
    ``objsubid`` 1.
    """
    key = batch_lock_key(batch_id) & 0xFFFF_FFFF_FFFF_FFFF
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid::bigint = %s AND objid::bigint = %s) AS running",
        (key >> 32, key & 0xFFFF_FFFF),
    ).fetchone()
    return bool(row["running"])


def delete_pending_batch(conn: psycopg.Connection, batch_id: uuid.UUID) -> bool:
    """Delete a batch no run has touched (status pending, never started), with its items and log; no commit."""
    return conn.execute(
        "DELETE FROM import_batches WHERE id = %s AND status = 'pending' AND started_at IS NULL", (batch_id,)
    ).rowcount == 1


def lock_batch_type(conn: psycopg.Connection, batch_type: str) -> None:
    """Serialise the applied-key check of one batch type until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", ("import_batch_type:" + batch_type,))


def batch_summary(conn: psycopg.Connection, batch_id: uuid.UUID) -> BatchSummary:
    row = conn.execute("SELECT * FROM import_batch_summary WHERE batch_id = %s", (batch_id,)).fetchone()
    if row is None:
        raise BatchError("BATCH_NOT_FOUND", f"no import batch {batch_id}; list batches with `musingly batches`")
    return _summary(row)


def _summary(row: dict[str, Any]) -> BatchSummary:
    values = dict(row)
    values["success_rate"] = float(values["success_rate"])
    if values["items_per_second"] is not None:
        values["items_per_second"] = float(values["items_per_second"])
    return BatchSummary(**values)


def list_batches(
    conn: psycopg.Connection,
    *,
    status: str | None = None,
    batch_type: str | None = None,
    parent_batch_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[BatchSummary]:
    """Batches, newest first, optionally filtered."""
    rows = conn.execute(
        "SELECT * FROM import_batch_summary"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        "   AND (%(type)s::text IS NULL OR batch_type = %(type)s)"
        "   AND (%(parent)s::uuid IS NULL OR parent_batch_id = %(parent)s)"
        " ORDER BY created_at DESC, batch_id LIMIT %(limit)s OFFSET %(offset)s",
        {"status": status, "type": batch_type, "parent": parent_batch_id, "limit": limit, "offset": offset},
    ).fetchall()
    return [_summary(row) for row in rows]


def batch_items(
    conn: psycopg.Connection, batch_id: uuid.UUID, *, status: str | None = None, limit: int | None = None
) -> list[ItemRecord]:
    """The batch's items in index order; pending items in flight (see the import batches section of 0001_baseline.sql) show as 'processing'."""
    rows = conn.execute(
        "SELECT * FROM (SELECT i.id, i.item_index,"
        "   CASE WHEN i.status = 'pending' AND i.item_index BETWEEN b.in_flight_from AND b.in_flight_to"
        "        THEN 'processing' ELSE i.status END AS status,"
        "   i.attempts, i.item_key, i.source_data, i.error_code, i.error_message, i.error_traceback,"
        "   i.target_table, i.target_id, i.result, i.duplicate_of, i.source_item_id, i.duration_ms, i.processed_at"
        "   FROM import_batch_items i JOIN import_batches b ON b.id = i.batch_id"
        "   WHERE i.batch_id = %(batch)s) i"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        " ORDER BY item_index LIMIT %(limit)s",
        {"batch": batch_id, "status": status, "limit": limit},
    ).fetchall()
    return [ItemRecord(**row) for row in rows]


def batch_logs(conn: psycopg.Connection, batch_id: uuid.UUID, *, limit: int | None = None) -> list[LogRecord]:
    rows = conn.execute(
        "SELECT id, item_id, level, message, details, created_at FROM import_batch_logs"
        " WHERE batch_id = %s ORDER BY id LIMIT %s",
        (batch_id, limit),
    ).fetchall()
    return [LogRecord(**row) for row in rows]


def failed_imports(conn: psycopg.Connection, *, limit: int = 50) -> list[dict[str, Any]]:
    """Rows of the ``failed_imports_report`` view, newest first."""
    rows = conn.execute(
        "SELECT * FROM failed_imports_report ORDER BY created_at DESC LIMIT %s", (limit,)
    ).fetchall()
    return [{k: jsonable(v) if not isinstance(v, list) else [jsonable(x) for x in v] for k, v in r.items()}
            for r in rows]


def set_batch_status(
    conn: psycopg.Connection, batch_id: uuid.UUID, status: str, *, error_message: str | None = None
) -> None:
    """Move a batch to ``status``: 'processing' stamps the first start, an end status the end time."""
    conn.execute(
        "UPDATE import_batches SET status = %(status)s, error_message = %(error)s, updated_at = now(),"
        " started_at = CASE WHEN %(status)s = 'processing' THEN coalesce(started_at, now()) ELSE started_at END,"
        " completed_at = CASE WHEN %(status)s IN ('completed', 'failed') THEN now() ELSE NULL END"
        " WHERE id = %(id)s",
        {"status": status, "error": error_message, "id": batch_id},
    )


def recover_interrupted(conn: psycopg.Connection, batch_id: uuid.UUID, max_attempts: int) -> tuple[list[int], list[int]]:
    """Items left in flight by a run that died: return (ids to retry, ids now marked failed); no commit.

    The items in flight are the batch's pending items in its ``in_flight_from``..``in_flight_to``
    range (see the import batches section of 0001_baseline.sql), and items left 'processing' by the code before it. Their writes
    rolled back with the dead run's transaction, so retrying cannot apply them twice. The
    interrupted attempt is counted now (the range's items; a 'processing' item was counted when it
    was marked); an item interrupted ``max_attempts`` times is marked failed
    (``ITEM_INTERRUPTED``): it is likely the one that kills the process. The range is cleared: the
    items to retry are ordinary pending items until the caller runs them.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "WITH batch AS ("
            "   SELECT in_flight_from, in_flight_to FROM import_batches WHERE id = %(batch)s FOR UPDATE),"
            " counted AS ("
            "   UPDATE import_batch_items i SET attempts = i.attempts + 1 FROM batch b"
            "   WHERE i.batch_id = %(batch)s AND i.status = 'pending'"
            "     AND i.item_index BETWEEN b.in_flight_from AND b.in_flight_to"
            "   RETURNING i.id, i.item_index, i.attempts),"
            " cleared AS ("
            "   UPDATE import_batches SET in_flight_from = NULL, in_flight_to = NULL"
            "   WHERE id = %(batch)s AND in_flight_from IS NOT NULL RETURNING id)"
            " SELECT id, item_index, attempts FROM counted"
            " UNION ALL SELECT id, item_index, attempts FROM import_batch_items"
            "   WHERE batch_id = %(batch)s AND status = 'processing'"
            " ORDER BY item_index",
            {"batch": batch_id},
        ).fetchall()
    failed = [item_id for item_id, _, attempts in rows if attempts >= max_attempts]
    if failed:
        conn.execute(
            "UPDATE import_batch_items SET status = 'failed', error_code = 'ITEM_INTERRUPTED',"
            " error_message = 'processing was interrupted ' || attempts || ' times (the process died or was"
            " killed while this item was in flight); fix the cause and reprocess the batch',"
            " processed_at = now()"
            " WHERE id = ANY(%s)",
            (failed,),
        )
    return [item_id for item_id, _, attempts in rows if attempts < max_attempts], failed


def pending_item_ids(conn: psycopg.Connection, batch_id: uuid.UUID) -> list[int]:
    """The batch's pending items in index order (a chunk of them is a run of consecutive pending items)."""
    return [r["id"] for r in conn.execute(
        "SELECT id FROM import_batch_items WHERE batch_id = %s AND status = 'pending' ORDER BY item_index",
        (batch_id,),
    ).fetchall()]


def claim_items(conn: psycopg.Connection, batch_id: uuid.UUID, item_ids: Sequence[int]) -> list[ImportBatchItem]:
    """Record ``item_ids`` as the batch's items in flight and return them in index order; no commit.

    ``item_ids`` must be consecutive pending items (a slice of :func:`pending_item_ids`, or one
    item): the record is their range of item indexes (see the import batches section of 0001_baseline.sql). Items already done are
    left out. An item's ``attempts`` includes this one, which :func:`write_outcomes` records;
    :func:`finish_chunk` clears the record.
    """
    with conn.cursor(row_factory=tuple_row) as cur:  # in ImportBatchItem's field order
        rows = cur.execute(
            "SELECT id, batch_id, item_index, source_data, item_key, attempts + 1, source_item_id"
            " FROM import_batch_items WHERE id = ANY(%s) AND status IN ('pending', 'processing')"
            " ORDER BY item_index",
            (list(item_ids),),
        ).fetchall()
    items = [ImportBatchItem(*row) for row in rows]
    if items:
        conn.execute(
            "UPDATE import_batches SET in_flight_from = %s, in_flight_to = %s WHERE id = %s",
            (items[0].item_index, items[-1].item_index, batch_id),
        )
    return items


def finish_chunk(conn: psycopg.Connection, batch_id: uuid.UUID) -> None:
    """Clear the batch's record of items in flight (in the transaction that writes their outcomes)."""
    conn.execute("UPDATE import_batches SET in_flight_from = NULL, in_flight_to = NULL WHERE id = %s", (batch_id,))


def applied_keys(conn: psycopg.Connection, batch_type: str, keys: Iterable[str]) -> dict[str, int]:
    """Of ``keys``, those already applied for ``batch_type``, with the item that applied each."""
    rows = conn.execute(
        "SELECT item_key, item_id FROM import_batch_item_keys WHERE batch_type = %s AND item_key = ANY(%s)",
        (batch_type, list(set(keys))),
    ).fetchall()
    return {r["item_key"]: r["item_id"] for r in rows}


def record_keys(conn: psycopg.Connection, batch_type: str, items: Sequence[tuple[str, int]], *,
                new: bool = False) -> None:
    """Record ``(item_key, item_id)`` pairs (distinct keys) as applied; a key applied again points at the newer item.

    ``new``: the caller knows none of the keys is recorded yet (a plain INSERT, cheaper than an
    upsert; a key already there is then a unique violation, not an update).
    """
    if not items:
        return
    conn.execute(
        "INSERT INTO import_batch_item_keys (batch_type, item_key, item_id)"
        " SELECT %s, u.item ->> 0, (u.item ->> 1)::bigint FROM json_array_elements(%s::json) AS u(item)"
        + ("" if new else
           " ON CONFLICT (batch_type, item_key) DO UPDATE SET item_id = excluded.item_id, recorded_at = now()"),
        (batch_type, json.dumps(items)),
    )


def write_outcomes(conn: psycopg.Connection, outcomes: Sequence[ItemOutcome]) -> None:
    """Write many items' outcomes in one statement (one JSON parameter: cheaper to send than arrays).

    An item's attempt is counted here, with its outcome (an interrupted attempt is counted by
    :func:`recover_interrupted`).
    """
    if not outcomes:
        return
    conn.execute(
        "UPDATE import_batch_items i SET status = u.status, attempts = i.attempts + 1,"
        " error_code = u.error_code,"
        " error_message = u.error_message, error_traceback = u.error_traceback,"
        " target_table = u.target_table, target_id = u.target_id, result = u.result,"
        " duplicate_of = u.duplicate_of, duration_ms = u.duration_ms, processed_at = now()"
        " FROM json_to_recordset(%s::json)"
        "   AS u(item_id bigint, status text, error_code text, error_message text, error_traceback text,"
        "        target_table text, target_id text, result jsonb, duplicate_of bigint, duration_ms float8)"
        " WHERE i.id = u.item_id",
        (dumps([vars(o) for o in outcomes]),),
    )


def write_logs(conn: psycopg.Connection, entries: Sequence[LogEntry]) -> None:
    """Append log lines via COPY."""
    if not entries:
        return
    with conn.cursor() as cur, cur.copy(
        "COPY import_batch_logs (batch_id, item_id, level, message, details) FROM STDIN"
    ) as copy:
        for e in entries:
            copy.write_row((e.batch_id, e.item_id, e.level, e.message, dumps(e.details)))
