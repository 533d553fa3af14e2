"""BatchManager: create batches, process them item by item, resume them, reprocess their failures.

How a run commits (and why a killed run is safe to resume):

* Items are processed in chunks (``chunk_size``, 500 by default). Before a chunk, the range of
  its items is committed on the batch row as the items in flight (``store.claim_items``; one
  small update instead of one per item). The chunk then runs in one transaction, its
  items under a savepoint, so a failing item rolls back alone; the outcomes, the applied keys and
  the log lines are written in bulk at the end of the chunk, in the same transaction as the
  processors' writes, which also counts each item's attempt and clears the range. An item's
  writes and its ``completed`` status therefore commit together.
* How the items of a chunk run is :mod:`musingly_pipeline.batches.chunk`: a savepoint per item, or
  for a ``replay_safe`` processor groups of ``group_size`` items under one savepoint, run again
  item by item when one fails. With ``pipelined`` (the default) such groups run in psycopg's
  pipeline mode (:mod:`musingly_pipeline.batches.pipelined`), which gives the same outcomes.
* An item that catches a database error and returns normally leaves its transaction aborted; it
  is failed (``ItemAborted``) instead of breaking the chunk. Error messages and tracebacks are
  stored with NUL characters and lone surrogates escaped, so every failure can be recorded.
* A run holds a PostgreSQL session lock on the batch; a second run is refused (``BATCH_BUSY``).
  If the process dies, the lock goes with its connection, the open chunk rolls back and its items
  stay in flight (shown as ``processing``). The next ``process_batch`` counts their interrupted
  attempt and retries them one at a time (each its own commit),
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

import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from musingly_pipeline.batches import endpoints, store
from musingly_pipeline.batches.chunk import CLOSE_SAVEPOINT, OPEN_SAVEPOINT, Chunk, short_error
from musingly_pipeline.batches.context import ImportContext
from musingly_pipeline.batches.errors import BatchError
from musingly_pipeline.batches.item_json import check_metadata, prepare_items, storable_text
from musingly_pipeline.batches.pipelined import PipelinedChunk
from musingly_pipeline.batches.processor import BaseProcessor
from musingly_pipeline.batches.records import (
    BATCH_STATUSES, ITEM_STATUSES, BatchSummary, ItemRecord, LogEntry, LogRecord)
from musingly_pipeline.batches.registry import ProcessorRegistry, default_registry
from musingly_pipeline.storage.database import connect, database_url
from musingly_pipeline.storage.migrations import ensure_migrated

# Items a replay_safe processor runs under one savepoint, by default (see batches.chunk).
GROUP_SIZE = 24


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
    ``manager.registry.register(cls)``). ``chunk_size`` items commit together;
    ``max_attempts`` interrupted attempts fail an item; a ``replay_safe`` processor's items run
    ``group_size`` under one savepoint, in pipeline mode when ``pipelined`` (see the module docstring).
    """

    def __init__(
        self,
        database_url: str | None = None,
        registry: ProcessorRegistry | None = None,
        *,
        chunk_size: int = 500,
        max_attempts: int = 3,
        group_size: int = GROUP_SIZE,
        pipelined: bool = True,
    ):
        if chunk_size < 1 or max_attempts < 1 or group_size < 1:
            raise ValueError("chunk_size, max_attempts and group_size must be at least 1")
        self._url = database_url
        self.registry = registry if registry is not None else default_registry()
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.group_size = group_size
        self.pipelined = pipelined
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
        self, batch_type: str, items: Iterable[dict[str, Any]], *, metadata: dict[str, Any] | None = None,
        created_by: str | None = None,
    ) -> uuid.UUID:
        """Store a new pending batch of ``items`` (JSON objects) and return its id; nothing is processed."""
        processor = self.registry.create(batch_type)
        rows = prepare_items(processor, items)
        check_metadata(metadata)
        with self.connect() as conn, conn.transaction():
            return store.insert_batch(conn, batch_type, rows, metadata=metadata, created_by=created_by)

    def create_batch_for_request(self, request_data: dict[str, Any], *, user_id: str | None,
                                 via: str = "the REST API") -> tuple[uuid.UUID, dict[str, Any]]:
        """Create the batch a request asks for (``batch_type``, ``items``, ``process``, ``metadata``).

        The batch type's endpoint hook ``before_create_batch`` (see ``batches.endpoints``) runs
        first, in the transaction that then creates the batch: it may refuse the request
        (RequestRefused, nothing written) or change it. Returns the new batch's id and the request
        as the hook left it (the caller reads ``process`` from it).
        """
        batch_type = request_data["batch_type"]
        processor = self.registry.create(batch_type)
        endpoint = self.registry.endpoint(batch_type)
        with self.connect() as conn, conn.transaction():
            ctx = endpoints.EndpointContext(conn, user_id=user_id, batch_type=batch_type)
            if endpoint is not None:
                request_data = endpoints.before_create(endpoint, request_data, ctx)
            rows = prepare_items(processor, request_data["items"])
            metadata = request_data.get("metadata")
            check_metadata(metadata)
            batch_id = store.insert_batch(conn, batch_type, rows, metadata=metadata, created_by=user_id)
            created = LogEntry(batch_id, None, "info", f"created through {via} by {user_id or 'an unnamed caller'}",
                               {"user_id": user_id, "items": len(rows)})
            store.write_logs(conn, [created, *ctx.take_logs(batch_id)])
        return batch_id, request_data

    # -- processing -------------------------------------------------------------------------

    def process_batch(self, batch_id: uuid.UUID | str, *, stop: Callable[[], bool] | None = None) -> BatchSummary:
        """Process a batch's pending items (and resume an interrupted run); return its summary.

        A completed batch is returned unchanged. Failed items are not retried here: that is
        :meth:`reprocess_batch`. When the run has given every item an outcome, the batch type's
        endpoint hook ``after_batch_complete`` runs (see ``batches.endpoints``). ``stop``, asked
        before each chunk, ends the run early when it returns True: the chunks done are kept, the
        rest stays pending (status ``pending``) for the next run, and no completion hook runs.
        """
        batch_id = as_batch_id(batch_id)
        with self.connect() as conn:
            summary = store.batch_summary(conn, batch_id)
            if not store.try_lock_batch(conn, batch_id):
                raise BatchError("BATCH_BUSY", f"batch {batch_id} is being processed by another run; "
                                 "wait for it to finish (if that run dies, the next run resumes the batch)")
            try:
                return self._run(conn, summary, stop)
            finally:
                if not conn.closed and not conn.broken:
                    store.unlock_batch(conn, batch_id)

    def _run(self, conn: psycopg.Connection, summary: BatchSummary, stop: Callable[[], bool] | None) -> BatchSummary:
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
            if stop is not None and stop():
                return self._stopped(conn, ctx)
            self._process_chunk(conn, ctx, processor, chunk)
        interim = store.batch_summary(conn, batch_id)
        try:
            self._run_hook(conn, ctx, processor, "on_batch_complete", lambda: processor.on_batch_complete(ctx, interim))
        except BatchError:
            self._after_complete(conn, batch_id)  # every item has its outcome: the run is complete (and failed)
            raise

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
        return self._after_complete(conn, batch_id)

    def _after_complete(self, conn: psycopg.Connection, batch_id: uuid.UUID) -> BatchSummary:
        summary = store.batch_summary(conn, batch_id)
        endpoint = self.registry.endpoint(summary.batch_type)
        if endpoint is not None:
            endpoints.after_complete(conn, endpoint, summary)
        return summary

    def _stopped(self, conn: psycopg.Connection, ctx: ImportContext) -> BatchSummary:
        """End a run asked to stop between chunks: what is done stays, the rest waits for the next run."""
        with conn.transaction():
            left = store.batch_summary(conn, ctx.batch_id).pending_items
            store.set_batch_status(conn, ctx.batch_id, "pending")
            ctx.info(f"processing stopped on request with {left} item(s) still pending; process the batch "
                     "again to continue")
            store.write_logs(conn, ctx.take_logs())
        return store.batch_summary(conn, ctx.batch_id)

    def _run_hook(self, conn: psycopg.Connection, ctx: ImportContext, processor: BaseProcessor, name: str,
                  call: Callable[[], None]) -> None:
        """Run a hook in its own transaction; if it raises, keep none of its writes and fail the batch."""
        try:
            with conn.transaction():
                call()
                store.write_logs(conn, ctx.take_logs())
        except Exception as exc:
            message = (f"{type(processor).__name__}.{name} raised {type(exc).__name__}: {short_error(exc)}; "
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
            items = store.claim_items(conn, ctx.batch_id, item_ids)
        if not items:
            return
        with conn.transaction():
            applied: dict[str, int] = {}
            if processor.skip_already_applied:
                store.lock_batch_type(conn, ctx.batch_type)
                applied = store.applied_keys(conn, ctx.batch_type, (i.item_key for i in items))
            chunk = self._chunk(conn, ctx, processor, applied)
            conn.execute(OPEN_SAVEPOINT)
            try:
                chunk.run(items, self.group_size if processor.replay_safe else 1)
                error = chunk.close()
                if error is not None:
                    raise error
            finally:
                chunk.close()
                ctx.item = None
                ctx.release_logs(keep=True)  # if the run breaks off mid-group, still show what was logged
            conn.execute(CLOSE_SAVEPOINT)
            store.write_outcomes(conn, chunk.outcomes)
            completed = {o.item_id for o in chunk.outcomes if o.status == "completed"}
            # One key per content: with skip_already_applied off, the last item applying it wins.
            keys = {i.item_key: i.id for i in items if i.id in completed}
            # Skipping applied keys, every key recorded here is new (checked under the type's lock).
            store.record_keys(conn, ctx.batch_type, list(keys.items()), new=processor.skip_already_applied)
            store.write_logs(conn, ctx.take_logs())
            store.finish_chunk(conn, ctx.batch_id)

    def _chunk(self, conn: psycopg.Connection, ctx: ImportContext, processor: BaseProcessor,
               applied: dict[str, int]) -> Chunk:
        """The way the chunk's items run: pipelined groups for a replay_safe processor, when asked and possible."""
        fast = self.pipelined and processor.replay_safe and psycopg.Pipeline.is_supported()
        return (PipelinedChunk if fast else Chunk)(conn, ctx, processor, applied)

    # -- reprocessing and reading -----------------------------------------------------------

    def reprocess_batch(
        self, batch_id: uuid.UUID | str, failed_items_only: bool = True, *, process: bool = True,
        created_by: str | None = None,
    ) -> BatchSummary:
        """A new batch linked to ``batch_id`` with the original source data of its failed (or all) items.

        Processes it unless ``process=False``; returns the new batch's summary. Items whose content
        was already applied (in the original or any other batch) are skipped, not applied twice.
        The new batch's ``created_by`` is ``created_by``, or the original's.
        """
        batch_id = as_batch_id(batch_id)
        with self.connect() as conn:
            original = store.batch_summary(conn, batch_id)
            self.registry.get(original.batch_type)
            if not store.try_lock_batch(conn, batch_id):
                raise BatchError("BATCH_BUSY", f"batch {batch_id} is being processed; reprocess it when that run ends")
            try:
                with conn.transaction():
                    statuses = ["failed"] if failed_items_only else list(ITEM_STATUSES)
                    new_id = store.copy_items_to_new_batch(
                        conn, original, statuses,
                        {"reprocess_of": str(batch_id), "failed_items_only": failed_items_only}, created_by,
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

    def is_batch_running(self, batch_id: uuid.UUID | str) -> bool:
        """Whether a processing run (in any process) is working on the batch now."""
        with self.connect() as conn:
            return store.batch_is_running(conn, as_batch_id(batch_id))

    def add_log(self, batch_id: uuid.UUID | str, level: str, message: str, **details: Any) -> None:
        """Append a line to the batch's audit log (for the faces that queue and launch runs)."""
        with self.connect() as conn, conn.transaction():
            store.write_logs(conn, [LogEntry(as_batch_id(batch_id), None, level, storable_text(message), details)])

    def delete_pending_batch(self, batch_id: uuid.UUID | str) -> bool:
        """Delete a batch that no run has started (undo a creation whose processing could not be queued)."""
        with self.connect() as conn, conn.transaction():
            return store.delete_pending_batch(conn, as_batch_id(batch_id))

    def list_batches(self, *, status: str | None = None, batch_type: str | None = None,
                     parent_batch_id: uuid.UUID | str | None = None, limit: int = 50,
                     offset: int = 0) -> list[BatchSummary]:
        if status is not None and status not in BATCH_STATUSES:
            raise BatchError("BATCH_STATUS_INVALID",
                             f"unknown status {status!r}; use one of {', '.join(BATCH_STATUSES)}", "status")
        parent = as_batch_id(parent_batch_id) if parent_batch_id is not None else None
        with self.connect() as conn:
            return store.list_batches(conn, status=status, batch_type=batch_type, parent_batch_id=parent,
                                      limit=limit, offset=offset)

    def get_batch_items(self, batch_id: uuid.UUID | str, *, status: str | None = None,
                        limit: int | None = None) -> list[ItemRecord]:
        with self.connect() as conn:
            batch_id = as_batch_id(batch_id)
            store.batch_summary(conn, batch_id)
            return store.batch_items(conn, batch_id, status=status, limit=limit)

    def get_batch_logs(self, batch_id: uuid.UUID | str, *, limit: int | None = None) -> list[LogRecord]:
        with self.connect() as conn:
            return store.batch_logs(conn, as_batch_id(batch_id), limit=limit)

    def failed_imports_report(self, *, limit: int = 50) -> list[dict[str, Any]]:
        with self.connect() as conn:
            return store.failed_imports(conn, limit=limit)


def _chunks(values: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
