"""BatchManager: create batches, process them item by item, resume them, reprocess their failures.

How a run commits (and why a killed run is safe to resume):

* Items are processed in chunks (``chunk_size``, 500 by default). Before a chunk, its items are
  marked ``processing`` (attempts + 1) and committed. The chunk then runs in one transaction: each
  item in its own savepoint, so a failing item rolls back alone; the outcomes, the applied keys and
  the log lines are written in bulk at the end of the chunk, in the same transaction as the
  processors' writes. An item's writes and its ``completed`` status therefore commit together.
* A run holds a PostgreSQL session lock on the batch; a second run is refused (``BATCH_BUSY``).
  If the process dies, the lock goes with its connection, the open chunk rolls back and its items
  stay ``processing``. The next ``process_batch`` retries them one at a time (each its own commit),
  so the item that kills the process is found; after ``max_attempts`` interrupted attempts an item
  is marked failed (``ITEM_INTERRUPTED``). Nothing is counted twice: the counts come from the item
  rows, and a rolled-back chunk left no writes behind.
* Every applied item records ``(batch_type, item_key)`` in ``import_batch_item_keys`` in the same
  transaction as its writes, under a per-type transaction lock. An item whose key is already there
  (it succeeded in another batch, or earlier in this one) is marked ``skipped`` with
  ``duplicate_of`` pointing at the item that applied it, and its processor is not called again.
  This makes ``reprocess_batch(..., failed_items_only=False)`` and repeated reprocessing safe.
"""

from __future__ import annotations

import json
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from musingly_pipeline.batches.context import ImportContext
from musingly_pipeline.batches.processor import BaseProcessor
from musingly_pipeline.batches.registry import ProcessorRegistry, default_registry
from musingly_pipeline.storage import batches as store
from musingly_pipeline.storage.batches import BatchError, BatchSummary, ImportBatchItem, ItemOutcome, LogEntry
from musingly_pipeline.storage.database import connect, database_url
from musingly_pipeline.storage.migrations import ensure_migrated

# The one savepoint name a chunk reuses: released and re-opened after each successful item.
OPEN_SAVEPOINT = "SAVEPOINT musingly_item"
NEXT_SAVEPOINT = "RELEASE SAVEPOINT musingly_item; SAVEPOINT musingly_item"
UNDO_SAVEPOINT = "ROLLBACK TO SAVEPOINT musingly_item"
CLOSE_SAVEPOINT = "RELEASE SAVEPOINT musingly_item"
# A JSON text with an escaped NUL (\u0000 not preceded by an escaping backslash): jsonb refuses it.
JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# The largest text kept for an item's error message (the traceback is kept whole).
MAX_ERROR_MESSAGE = 2000


def as_batch_id(value: uuid.UUID | str) -> uuid.UUID:
    """A batch id from a UUID or its text; anything else is BATCH_ID_INVALID."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise BatchError("BATCH_ID_INVALID", f"{value!r} is not a batch id; batch ids are UUIDs "
                         "such as 3f2c...-...; list them with `musingly batches`", "batch_id") from None


class BatchManager:
    """Create, process, resume and reprocess import batches in one PostgreSQL database.

    ``database_url`` defaults to the project's database; ``registry`` to the processors of
    :func:`default_registry` (add more with ``manager.registry.discover(package)`` or
    ``manager.registry.register(cls)``).
    """

    def __init__(
        self,
        database_url: str | None = None,
        registry: ProcessorRegistry | None = None,
        *,
        chunk_size: int = 500,
        max_attempts: int = 3,
    ):
        if chunk_size < 1 or max_attempts < 1:
            raise ValueError("chunk_size and max_attempts must be at least 1")
        self._url = database_url
        self.registry = registry if registry is not None else default_registry()
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self._migrated = False

    @property
    def database_url(self) -> str:
        if self._url is None:
            self._url = database_url()
        return self._url

    def connect(self) -> psycopg.Connection:
        """An autocommit connection (``dict_row``) to a migrated database; work runs in explicit transactions."""
        if not self._migrated:
            ensure_migrated(self.database_url)
            self._migrated = True
        return connect(self.database_url, autocommit=True, row_factory=dict_row)

    # -- creating ---------------------------------------------------------------------------

    def create_batch(
        self, batch_type: str, items: Iterable[dict[str, Any]], *, metadata: dict[str, Any] | None = None
    ) -> uuid.UUID:
        """Store a new pending batch of ``items`` (JSON objects) and return its id; nothing is processed."""
        processor = self.registry.create(batch_type)
        rows = prepare_items(processor, items)
        check_metadata(metadata)
        with self.connect() as conn, conn.transaction():
            return store.insert_batch(conn, batch_type, rows, metadata=metadata)

    # -- processing -------------------------------------------------------------------------

    def process_batch(self, batch_id: uuid.UUID | str) -> BatchSummary:
        """Process a batch's pending items (and resume an interrupted run); return its summary.

        A completed batch is returned unchanged. Failed items are not retried here: that is
        :meth:`reprocess_batch`.
        """
        batch_id = as_batch_id(batch_id)
        with self.connect() as conn:
            summary = store.batch_summary(conn, batch_id)
            if not store.try_lock_batch(conn, batch_id):
                raise BatchError("BATCH_BUSY", f"batch {batch_id} is being processed by another run; "
                                 "wait for it to finish (it is resumed automatically if that run dies)")
            try:
                return self._run(conn, summary)
            finally:
                if not conn.closed and not conn.broken:
                    store.unlock_batch(conn, batch_id)

    def _run(self, conn: psycopg.Connection, summary: BatchSummary) -> BatchSummary:
        batch_id, batch_type = summary.batch_id, summary.batch_type
        summary = store.batch_summary(conn, batch_id)  # re-read under the lock
        if summary.status == "completed":
            return summary
        processor = self.registry.create(batch_type)
        ctx = ImportContext(conn, batch_id, batch_type)
        with conn.transaction():
            retry, gave_up = store.recover_interrupted(conn, batch_id, self.max_attempts)
            if retry or gave_up:
                ctx.warning(
                    f"resuming an interrupted run: {len(retry)} item(s) left in flight are retried one at a time,"
                    f" {len(gave_up)} interrupted {self.max_attempts} times are marked failed",
                    retried_item_ids=retry, failed_item_ids=gave_up,
                )
            store.set_batch_status(conn, batch_id, "processing")
            ctx.info(f"processing started with {type(processor).__name__}")
            store.write_logs(conn, ctx.take_logs())

        self._run_hook(conn, ctx, processor, "on_batch_start", lambda: processor.on_batch_start(ctx))
        for item_id in retry:
            self._process_chunk(conn, ctx, processor, [item_id])
        for chunk in _chunks(store.pending_item_ids(conn, batch_id), self.chunk_size):
            self._process_chunk(conn, ctx, processor, chunk)
        interim = store.batch_summary(conn, batch_id)
        self._run_hook(conn, ctx, processor, "on_batch_complete", lambda: processor.on_batch_complete(ctx, interim))

        with conn.transaction():
            done = store.batch_summary(conn, batch_id)
            if done.failed_items:
                error = (f"{done.failed_items} of {done.total_items} item(s) failed; see `musingly batch show "
                         f"{batch_id}`, fix the cause, then `musingly batch reprocess {batch_id}`")
                store.set_batch_status(conn, batch_id, "failed", error_message=error)
            else:
                store.set_batch_status(conn, batch_id, "completed")
            ctx.info("processing finished", completed=done.completed_items, failed=done.failed_items,
                     skipped=done.skipped_items)
            store.write_logs(conn, ctx.take_logs())
        return store.batch_summary(conn, batch_id)

    def _run_hook(self, conn: psycopg.Connection, ctx: ImportContext, processor: BaseProcessor, name: str,
                  call: Callable[[], None]) -> None:
        """Run a hook in its own transaction; if it raises, keep none of its writes and fail the batch."""
        try:
            with conn.transaction():
                call()
                store.write_logs(conn, ctx.take_logs())
        except Exception as exc:
            message = (f"{type(processor).__name__}.{name} raised {type(exc).__name__}: {_short(exc)}; "
                       "none of its writes were kept; fix it and run the batch again")
            logs = ctx.take_logs() + [LogEntry(ctx.batch_id, None, "error", message,
                                               {"code": "BATCH_HOOK_FAILED", "traceback": traceback.format_exc()})]
            with conn.transaction():
                store.write_logs(conn, logs)
                store.set_batch_status(conn, ctx.batch_id, "failed", error_message=message)
            raise BatchError("BATCH_HOOK_FAILED", message) from exc

    def _process_chunk(self, conn: psycopg.Connection, ctx: ImportContext, processor: BaseProcessor,
                       item_ids: Sequence[int]) -> None:
        with conn.transaction():
            items = store.claim_items(conn, item_ids)
        if not items:
            return
        outcomes: list[ItemOutcome] = []
        applied_now: list[tuple[str, int]] = []
        with conn.transaction():
            skip = processor.skip_already_applied
            applied: dict[str, int] = {}
            if skip:
                store.lock_batch_type(conn, ctx.batch_type)
                applied = store.applied_keys(conn, ctx.batch_type, (i.item_key for i in items))
            conn.execute(OPEN_SAVEPOINT)
            for item in items:
                duplicate_of = applied.get(item.item_key) if skip else None
                if duplicate_of is not None:
                    outcomes.append(ItemOutcome(item.id, "skipped", duplicate_of=duplicate_of))
                    continue
                outcome = self._process_item(conn, ctx, processor, item)
                outcomes.append(outcome)
                if outcome.status == "completed":
                    applied_now.append((item.item_key, item.id))
                    applied[item.item_key] = item.id
            ctx.item = None
            conn.execute(CLOSE_SAVEPOINT)
            store.write_outcomes(conn, outcomes)
            store.record_keys(conn, ctx.batch_type, applied_now)
            store.write_logs(conn, ctx.take_logs())

    def _process_item(self, conn: psycopg.Connection, ctx: ImportContext, processor: BaseProcessor,
                      item: ImportBatchItem) -> ItemOutcome:
        """One item inside the chunk's open savepoint; on failure roll back to it, else start the next."""
        ctx.item = item
        started = time.perf_counter()
        code = "ITEM_INVALID"
        try:
            if not processor.validate_item(item, ctx):
                raise ItemInvalid("validate_item returned False")
            code = "ITEM_FAILED"
            fields = result_fields(processor.process_item(item, ctx))
        except Exception as exc:
            trace = traceback.format_exc()
            conn.execute(UNDO_SAVEPOINT)
            message = _short(exc) if isinstance(exc, ItemInvalid) else f"{type(exc).__name__}: {_short(exc)}"
            what = "is invalid" if code == "ITEM_INVALID" else "failed"
            ctx.error(f"item {item.item_index} {what}: {message}", code=code, traceback=trace)
            return ItemOutcome(item.id, "failed", error_code=code, error_message=message, error_traceback=trace,
                               duration_ms=(time.perf_counter() - started) * 1000)
        # One round trip ends this item's savepoint and opens the next one.
        conn.execute(NEXT_SAVEPOINT)
        return ItemOutcome(item.id, "completed", duration_ms=(time.perf_counter() - started) * 1000, **fields)

    # -- reprocessing and reading -----------------------------------------------------------

    def reprocess_batch(
        self, batch_id: uuid.UUID | str, failed_items_only: bool = True, *, process: bool = True
    ) -> BatchSummary:
        """A new batch linked to ``batch_id`` with the original source data of its failed (or all) items.

        Processes it unless ``process=False``; returns the new batch's summary. Items whose content
        was already applied (in the original or any other batch) are skipped, not applied twice.
        """
        batch_id = as_batch_id(batch_id)
        with self.connect() as conn:
            original = store.batch_summary(conn, batch_id)
            self.registry.get(original.batch_type)
            if not store.try_lock_batch(conn, batch_id):
                raise BatchError("BATCH_BUSY", f"batch {batch_id} is being processed; reprocess it when that run ends")
            try:
                with conn.transaction():
                    statuses = ["failed"] if failed_items_only else list(store.ITEM_STATUSES)
                    new_id = store.copy_items_to_new_batch(
                        conn, original, statuses,
                        {"reprocess_of": str(batch_id), "failed_items_only": failed_items_only},
                    )
            finally:
                store.unlock_batch(conn, batch_id)
        if new_id is None:
            raise BatchError("BATCH_NOTHING_TO_REPROCESS",
                             f"batch {batch_id} has no failed items to reprocess"
                             + ("; its items are still pending: process it instead" if original.pending_items else ""))
        return self.process_batch(new_id) if process else self.get_batch_summary(new_id)

    def get_batch_summary(self, batch_id: uuid.UUID | str) -> BatchSummary:
        with self.connect() as conn:
            return store.batch_summary(conn, as_batch_id(batch_id))

    def list_batches(self, *, status: str | None = None, batch_type: str | None = None,
                     parent_batch_id: uuid.UUID | str | None = None, limit: int = 50,
                     offset: int = 0) -> list[BatchSummary]:
        if status is not None and status not in store.BATCH_STATUSES:
            raise BatchError("BATCH_STATUS_INVALID",
                             f"unknown status {status!r}; use one of {', '.join(store.BATCH_STATUSES)}", "status")
        parent = as_batch_id(parent_batch_id) if parent_batch_id is not None else None
        with self.connect() as conn:
            return store.list_batches(conn, status=status, batch_type=batch_type, parent_batch_id=parent,
                                      limit=limit, offset=offset)

    def get_batch_items(self, batch_id: uuid.UUID | str, *, status: str | None = None,
                        limit: int | None = None) -> list[store.ItemRecord]:
        with self.connect() as conn:
            batch_id = as_batch_id(batch_id)
            store.batch_summary(conn, batch_id)
            return store.batch_items(conn, batch_id, status=status, limit=limit)

    def get_batch_logs(self, batch_id: uuid.UUID | str, *, limit: int | None = None) -> list[store.LogRecord]:
        with self.connect() as conn:
            return store.batch_logs(conn, as_batch_id(batch_id), limit=limit)

    def failed_imports_report(self, *, limit: int = 50) -> list[dict[str, Any]]:
        with self.connect() as conn:
            return store.failed_imports(conn, limit=limit)


class ItemInvalid(Exception):
    """validate_item said no."""


def prepare_items(processor: BaseProcessor, items: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(json_text, item_key)`` per item; refuse anything that is not a JSON object."""
    if isinstance(items, (str, bytes, dict)):
        raise BatchError("BATCH_ITEM_NOT_OBJECT", "items must be a list of JSON objects, not a single value", "items")
    rows = []
    for index, data in enumerate(items):
        if not isinstance(data, dict):
            raise BatchError("BATCH_ITEM_NOT_OBJECT",
                             f"item {index} is a {type(data).__name__}; every item must be a JSON object",
                             f"items[{index}]")
        text = storable_json(data, f"item {index}", f"items[{index}]")
        rows.append((text, processor.item_key(data)))
    if not rows:
        raise BatchError("BATCH_EMPTY", "a batch needs at least one item; nothing was created", "items")
    return rows


def check_metadata(metadata: dict[str, Any] | None) -> None:
    """Refuse batch metadata that is not a JSON object PostgreSQL can store."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise BatchError("BATCH_ITEM_NOT_JSON", "metadata must be a JSON object", "metadata")
    storable_json(metadata, "metadata", "metadata")


def storable_json(value: Any, what: str, path: str) -> str:
    """JSON text of ``value`` that a jsonb column accepts, or BATCH_ITEM_NOT_JSON saying why not."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise BatchError("BATCH_ITEM_NOT_JSON", f"{what} cannot be stored as JSON: {exc}", path) from exc
    if JSON_NUL.search(text):
        raise BatchError("BATCH_ITEM_NOT_JSON", f"{what} contains a NUL character, which PostgreSQL cannot store",
                         path)
    return text


def result_fields(result: Any) -> dict[str, Any]:
    """What ``process_item`` returned, as the item's target_table, target_id and result."""
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"process_item must return a dict or None, not {type(result).__name__}")
    target_id = result.get("target_id")
    target_table = result.get("target_table")
    return {
        "target_table": None if target_table is None else str(target_table),
        "target_id": None if target_id is None else str(target_id),
        "result": json.loads(store.dumps(result)),
    }


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= MAX_ERROR_MESSAGE else text[:MAX_ERROR_MESSAGE] + "…"


def _chunks(values: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
