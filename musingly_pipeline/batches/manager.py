"""BatchManager: create batches, process them item by item, resume them, reprocess their failures.

How a run commits (and why a killed run is safe to resume):

* Items are processed in chunks (``chunk_size``, 500 by default). Before a chunk, the range of
  its items is committed on the batch row as the items in flight (``store.claim_items``; one
  small update instead of one per item). The chunk then runs in one transaction, its
  items under a savepoint, so a failing item rolls back alone; the outcomes, the applied keys and
  the log lines are written in bulk at the end of the chunk, in the same transaction as the
  processors' writes, which also counts each item's attempt and clears the range. An item's
  writes and its ``completed`` status therefore commit together.
* By default each item has its own savepoint: after a good item one round trip releases it and
  opens the next (``RELEASE SAVEPOINT; SAVEPOINT``); a failing item is rolled back to it. For
  small items that round trip is about as costly as the item's own statement, so a processor
  that declares ``replay_safe`` (it acts only through ``ctx``) gets its items in groups of
  ``GROUP_SIZE`` under one savepoint. When an item of a group fails, the savepoint is rolled
  back, the group's outcomes and log lines are dropped, and its items run again: those before the
  failing one as one group, the failing one alone (see ``_Chunk``). An item may thus be processed
  twice, but what is kept (writes, outcome, error, log lines) comes from one run, exactly as with
  a savepoint per item.
* Pipeline mode. A ``replay_safe`` processor's groups run in psycopg's pipeline mode (see
  ``_Chunk._piped_group``): a statement that cannot return rows (INSERT, UPDATE, DELETE or MERGE
  without RETURNING, as text) is sent without waiting for its result; any other statement waits
  for its own (and those before it), so reads see what they would see without pipelining. One
  sync at the end of the group collects every result with the savepoint's release. If anything
  failed, the savepoint is rolled back and the attempt dropped; the first failing item is the
  earliest of the item of the first statement without a good result and the first item whose code
  raised. The items before it run again (pipelined) and it runs alone without pipelining, so its
  outcome, error and traceback, and a database error it catches itself, are those it gets with a
  savepoint of its own. The price: a database error shows only at the group's end, so the items
  after the failing one ran in vain and run again. Nothing is prepared server-side in a pipeline
  (after an error the server skips the rest up to the sync, a statement's preparation included,
  which psycopg would still count as done). ``ctx.connection`` (COPY, a nested transaction) leaves
  pipeline mode, waiting for what was sent, and the rest of the run goes without it.
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

import functools
import json
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import Any

import psycopg
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.rows import dict_row

from musingly_pipeline.batches import endpoints
from musingly_pipeline.batches.context import ImportContext
from musingly_pipeline.batches.processor import BaseProcessor, hash_text
from musingly_pipeline.batches.registry import ProcessorRegistry, default_registry
from musingly_pipeline.batches import store
from musingly_pipeline.batches.errors import BatchError
from musingly_pipeline.batches.item_json import dumps, storable_text
from musingly_pipeline.batches.records import (
    BATCH_STATUSES, ITEM_STATUSES, BatchSummary, ImportBatchItem, ItemOutcome, ItemRecord, LogEntry, LogRecord)
from musingly_pipeline.storage.database import connect, database_url
from musingly_pipeline.storage.migrations import ensure_migrated

# The one savepoint name a chunk reuses: released and re-opened after each successful item (or group).
OPEN_SAVEPOINT = "SAVEPOINT musingly_item"
NEXT_SAVEPOINT = "RELEASE SAVEPOINT musingly_item; SAVEPOINT musingly_item"
UNDO_SAVEPOINT = "ROLLBACK TO SAVEPOINT musingly_item"
CLOSE_SAVEPOINT = "RELEASE SAVEPOINT musingly_item"
# A JSON text with an escaped NUL (\u0000 not preceded by an escaping backslash): jsonb refuses it.
JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# Items a replay_safe processor runs under one savepoint (see _Chunk).
GROUP_SIZE = 24
# Whether a replay_safe processor's groups run in pipeline mode (see _Chunk._piped_group).
PIPELINING = True
INERROR = TransactionStatus.INERROR
COMMAND_OK, TUPLES_OK = ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK
# Statements that cannot return rows unless they say RETURNING (see _Chunk.execute).
WRITE_STATEMENT = re.compile(r"\s*(?:insert|update|delete|merge)\b", re.IGNORECASE)
# canonical_json without its fallback for values JSON cannot hold (those are refused instead).
STORABLE_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The largest text kept for an item's error message, and (about) for its traceback, whose message
# line may repeat what the item held: its start and end are kept.
MAX_ERROR_MESSAGE = 2000
MAX_TRACEBACK = 8000


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
            items = store.claim_items(conn, ctx.batch_id, item_ids)
        if not items:
            return
        with conn.transaction():
            applied: dict[str, int] = {}
            if processor.skip_already_applied:
                store.lock_batch_type(conn, ctx.batch_type)
                applied = store.applied_keys(conn, ctx.batch_type, (i.item_key for i in items))
            chunk = _Chunk(conn, ctx, processor, applied)
            conn.execute(OPEN_SAVEPOINT)
            try:
                if processor.replay_safe:
                    chunk.run(items, GROUP_SIZE, pipelined=PIPELINING and psycopg.Pipeline.is_supported())
                else:
                    chunk.run(items, 1)
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


class _Chunk:
    """The items of one chunk, inside the chunk's transaction and its open savepoint ``musingly_item``.

    ``run(items, size, pipelined)`` takes the items ``size`` at a time. A group whose items all
    succeed costs one round trip at its end (release the savepoint, open the next). When an item
    fails, the savepoint is rolled back: if no other item of the group had been processed, the
    failure is the item's outcome (with ``size`` 1, always); otherwise the group's outcomes and log
    lines are dropped and its items run again, those before the failing one as one group and the
    failing one alone, so every outcome kept comes from a run whose writes are the ones kept.

    A pipelined group (a ``replay_safe`` processor; see :meth:`_piped_group`) runs the same way in
    psycopg's pipeline mode: its statements are sent without waiting for each result.
    """

    def __init__(self, conn: psycopg.Connection, ctx: ImportContext, processor: BaseProcessor,
                 applied: dict[str, int]):
        self.conn = conn
        self.ctx = ctx
        self.processor = processor
        self.skip = processor.skip_already_applied
        # item_key -> the item that applied it, before this chunk or in it (only read when skipping).
        self.applied = applied
        self.outcomes: list[ItemOutcome] = []
        # A pipelined attempt: its pipeline (None once left), what leaves it, and the cursor of
        # every statement sent with the position in the group of the item that sent it.
        self._pipeline: psycopg.Pipeline | None = None
        self._exit: ExitStack | None = None
        self._sent: list[tuple[int, psycopg.Cursor]] = []
        self._position = 0
        self._cursors: list[psycopg.Cursor] = []  # reused by the attempts of the chunk, one per statement

    def run(self, items: Sequence[ImportBatchItem], size: int, pipelined: bool = False) -> None:
        start = 0
        while start < len(items):
            group = items[start:start + size]
            if pipelined and self.ctx.pipelining:
                start += self._piped_group(group)
            else:
                error = self.close()  # what was sent before succeeded (its group was synced)
                if error is not None:
                    raise error
                start += self._group(group)

    def _group(self, group: Sequence[ImportBatchItem]) -> int:
        """Run ``group`` under the open savepoint; return how many of its items now have an outcome."""
        ctx, mark, added, processed = self.ctx, len(self.outcomes), [], 0
        if len(group) > 1:
            ctx.hold_logs()  # the Python logger sees a group's lines only once they are kept
        for position, item in enumerate(group):
            if self._skipped(item):
                continue
            outcome = self._item(item)
            if isinstance(outcome, _Failure):
                self.conn.execute(UNDO_SAVEPOINT)
                if not processed:
                    # Nothing else of the group was written: this is the item's own savepoint.
                    self.outcomes.append(outcome.record(ctx))
                    ctx.release_logs(keep=True)
                    return position + 1
                # Items before it were written in this savepoint too: drop the attempt, run them again.
                self._drop_attempt(mark, added)
                self.run(group[:position], position)
                self.run([item], 1)
                return position + 1
            self._keep(item, outcome, added)
            processed += 1
        if processed:
            self.conn.execute(NEXT_SAVEPOINT)
        ctx.release_logs(keep=True)
        return len(group)

    def _skipped(self, item: ImportBatchItem) -> bool:
        """If ``item``'s content was already applied (and the processor skips such items), record it
        as skipped, naming the item that applied it, and return True."""
        duplicate_of = self.applied.get(item.item_key) if self.skip else None
        if duplicate_of is None:
            return False
        self.outcomes.append(ItemOutcome(item.id, "skipped", duplicate_of=duplicate_of))
        return True

    def _keep(self, item: ImportBatchItem, outcome: ItemOutcome, added: list[str]) -> None:
        """Record ``item``'s outcome and, when skipping, that it applied its key (``added``: this attempt's keys)."""
        self.outcomes.append(outcome)
        if self.skip and item.item_key not in self.applied:
            self.applied[item.item_key] = item.id
            added.append(item.item_key)

    def _drop_attempt(self, mark: int, added: list[str]) -> None:
        """Forget the outcomes, applied keys and log lines of a rolled-back attempt."""
        del self.outcomes[mark:]
        for key in added:
            del self.applied[key]
        self.ctx.release_logs(keep=False)

    def _piped_group(self, group: Sequence[ImportBatchItem]) -> int:
        """One attempt at ``group`` in pipeline mode; return how many of its items now have an outcome.

        The processor's statements are sent as it makes them (see :meth:`execute`); the savepoint's
        release and re-opening follow the last item, and one sync collects every result. If
        anything failed (a statement, or the processor's own code), the savepoint is rolled back
        and the attempt dropped. The first failing item is the earliest of: the item of the first
        statement without a good result (the server skips everything after an error), and the
        first item whose code raised. The items before it run again as a pipelined group, and it
        runs alone without pipelining, with a savepoint of its own: its outcome, error, traceback
        and log lines, and any database error it catches itself, are exactly those of a savepoint
        per item.
        """
        ctx, mark, added, raised, released, error = self.ctx, len(self.outcomes), [], None, False, None
        processed = 0
        ctx.hold_logs()
        self._sent = []
        if self._exit is None:
            self._exit = ExitStack()
            self._pipeline = self._exit.enter_context(self.conn.pipeline())
        ctx._pipeline = self
        try:
            for position, item in enumerate(group):
                self._position = position
                if self._skipped(item):
                    continue
                outcome = self._item(item)
                if isinstance(outcome, _Failure):
                    raised = position
                    break
                self._keep(item, outcome, added)
                processed += 1
            if raised is None and self._pipeline is not None:
                self.conn.execute(CLOSE_SAVEPOINT, prepare=False)
                self.conn.execute(OPEN_SAVEPOINT, prepare=False)
                released = True
                self._pipeline.sync()  # an error of any statement sent shows here
        except psycopg.Error as exc:
            error = exc
        finally:
            ctx._pipeline = None
        if raised is None and error is None:
            failed = next((position for position, cursor in self._sent if not _succeeded(cursor)), None)
            if failed is None and self.conn.pgconn.transaction_status != INERROR:
                if not released:  # the attempt left pipeline mode (the processor used ctx.connection)
                    self.conn.execute(NEXT_SAVEPOINT)
                ctx.release_logs(keep=True)
                return len(group)  # the pipeline stays open for the next group
        error = self.close() or error  # every result of the attempt is in now
        failed = next((position for position, cursor in self._sent if not _succeeded(cursor)), None)
        self.conn.execute(UNDO_SAVEPOINT)
        if raised is not None and not processed and failed is None and error is None:
            # The first item processed raised, every statement before succeeded: as in a savepoint of its own.
            self.outcomes.append(outcome.record(ctx))
            ctx.release_logs(keep=True)
            return raised + 1
        self._drop_attempt(mark, added)
        if raised is not None and (failed is None or raised < failed):
            failed = raised
        if failed is None:  # an error no item's statement shows (one sent on ctx.connection): go slowly
            return self._group(group)
        self.run(group[:failed], failed, pipelined=True)
        self.run([group[failed]], 1)
        return failed + 1

    def close(self) -> psycopg.Error | None:
        """Leave pipeline mode (syncing); return the first error of what was sent, if any."""
        if self._exit is None:
            return None
        exit_ = self._exit
        self._exit = self._pipeline = self.ctx._pipeline = None
        try:
            exit_.close()
        except psycopg.Error as exc:
            return exc
        return None

    # -- what ImportContext calls during a pipelined attempt (PipelinedStatements) --

    def execute(self, query: Any, params: Any, one: bool) -> Any:
        """``ctx.execute`` / ``ctx.execute_one`` in a pipelined attempt.

        A statement that cannot return rows (INSERT, UPDATE, DELETE or MERGE without RETURNING,
        as plain text) is sent without waiting: ``[]`` (or None) at once, its error (if any) at
        the group's sync. Any other statement waits for its result (and for those sent before
        it), so the processor reads its rows as it would without pipelining. Nothing is prepared
        server-side in a pipeline: after an error the server skips everything up to the sync, a
        statement's preparation included, which psycopg would still count as done.
        """
        sent = self._sent
        if len(sent) < len(self._cursors):
            cursor = self._cursors[len(sent)]  # execute() clears what it held: no result until this one's
        else:
            cursor = self.conn.cursor()
            self._cursors.append(cursor)
        sent.append((self._position, cursor))
        if type(query) is str:
            # The same text as the same object: psycopg then reuses the cursor's adapters for it.
            query = sys.intern(query)
        cursor.execute(query, params, prepare=False)
        if returns_no_rows(query):
            return None if one else []
        self._pipeline.sync()
        if cursor.description is None:
            return None if one else []
        return cursor.fetchone() if one else cursor.fetchall()

    def leave(self) -> None:
        """The processor asked for ctx.connection (COPY and the like need it out of pipeline mode)."""
        error = self.close()
        if error is not None:
            raise error

    def _item(self, item: ImportBatchItem) -> ItemOutcome | _Failure:
        """Validate and process one item; an exception is its failure (the caller rolls back)."""
        processor, ctx = self.processor, self.ctx
        ctx.item = item
        started = time.perf_counter()
        code = "ITEM_INVALID"
        try:
            if not processor.validate_item(item, ctx):
                raise ItemInvalid("validate_item returned False")
            code = "ITEM_FAILED"
            fields = result_fields(processor.process_item(item, ctx))
            if self.conn.pgconn.transaction_status == INERROR:
                raise ItemAborted("the item caught a database error and carried on, but its transaction is aborted;"
                                  " let the error propagate, or run the statement in ctx.connection.transaction()")
        except Exception as exc:
            return _Failure(item, code, exc, (time.perf_counter() - started) * 1000)
        return ItemOutcome(item.id, "completed", duration_ms=(time.perf_counter() - started) * 1000, **fields)


class _Failure:
    """An item that raised; its error and log line are only made if this run's outcome is kept."""

    def __init__(self, item: ImportBatchItem, code: str, exc: Exception, duration_ms: float):
        self.item, self.code, self.exc, self.duration_ms = item, code, exc, duration_ms

    def record(self, ctx: ImportContext) -> ItemOutcome:
        exc, item, code = self.exc, self.item, self.code
        trace = _capped_traceback(storable_text("".join(traceback.format_exception(exc))))
        message = _short(exc) if isinstance(exc, ItemInvalid) else f"{type(exc).__name__}: {_short(exc)}"
        what = "is invalid" if code == "ITEM_INVALID" else "failed"
        ctx.item = item
        ctx.error(f"item {item.item_index} {what}: {message}", code=code, traceback=trace)
        return ItemOutcome(item.id, "failed", error_code=code, error_message=message, error_traceback=trace,
                           duration_ms=self.duration_ms)


class ItemInvalid(Exception):
    """validate_item said no."""


class ItemAborted(Exception):
    """The item returned with its transaction aborted by an error it caught."""


def prepare_items(processor: BaseProcessor, items: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(json_text, item_key)`` per item; refuse anything that is not a JSON object."""
    if isinstance(items, (str, bytes, dict)):
        raise BatchError("BATCH_ITEM_NOT_OBJECT", "items must be a list of JSON objects, not a single value", "items")
    rows = []
    # The stored text is canonical JSON, so the default key (content_key) is its hash: one encoding per item.
    default_key = type(processor).item_key is BaseProcessor.item_key
    for index, data in enumerate(items):
        if not isinstance(data, dict):
            raise BatchError("BATCH_ITEM_NOT_OBJECT",
                             f"item {index} is a {type(data).__name__}; every item must be a JSON object",
                             f"items[{index}]")
        text = storable_json(data, f"item {index}", f"items[{index}]")
        rows.append((text, hash_text(text) if default_key else processor.item_key(data)))
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
    """Canonical JSON text of ``value`` (as content_key writes it) that a jsonb column accepts,
    or BATCH_ITEM_NOT_JSON saying why not."""
    try:
        text = STORABLE_JSON.encode(value)
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise BatchError("BATCH_ITEM_NOT_JSON", f"{what} cannot be stored as JSON: {exc}", path) from exc
    except RecursionError as exc:
        raise BatchError("BATCH_ITEM_NOT_JSON", f"{what} is nested too deeply to be stored as JSON", path) from exc
    if "\\u0000" in text and JSON_NUL.search(text):
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
        "result": json.loads(dumps(result)),
    }


def returns_no_rows(query: Any) -> bool:
    """True for SQL text that cannot return rows: INSERT, UPDATE, DELETE or MERGE without RETURNING."""
    return isinstance(query, str) and _text_returns_no_rows(query)


@functools.lru_cache(maxsize=512)
def _text_returns_no_rows(query: str) -> bool:
    return WRITE_STATEMENT.match(query) is not None and "returning" not in query.lower()


def _succeeded(cursor: psycopg.Cursor) -> bool:
    result = cursor.pgresult
    return result is not None and result.status in (COMMAND_OK, TUPLES_OK)


def _short(exc: BaseException) -> str:
    text = storable_text(str(exc).strip() or type(exc).__name__)
    return text if len(text) <= MAX_ERROR_MESSAGE else text[:MAX_ERROR_MESSAGE] + "…"



def _capped_traceback(text: str) -> str:
    """At most about MAX_TRACEBACK characters: the start (where it began) and the end (the error)."""
    if len(text) <= MAX_TRACEBACK:
        return text
    head = MAX_TRACEBACK // 4
    return f"{text[:head]}\n… {len(text) - MAX_TRACEBACK} characters cut …\n{text[-(MAX_TRACEBACK - head):]}"


def _chunks(values: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
