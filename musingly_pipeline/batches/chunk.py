"""The plain way to process one chunk of a batch: each item (or group of items) under a savepoint.

A chunk runs in one transaction (see :class:`~musingly_pipeline.batches.BatchManager`) with one
savepoint, ``musingly_item``, that it reuses: released and re-opened after each successful item (or
group), rolled back to when an item fails, so a failing item's writes roll back alone.

By default each item has its own savepoint: after a good item one round trip releases it and opens
the next (``RELEASE SAVEPOINT; SAVEPOINT``). For small items that round trip is about as costly as
the item's own statement, so a processor that declares ``replay_safe`` (it acts only through
``ctx``) gets its items in groups (``BatchManager.group_size``) under one savepoint. When an item of
a group fails, the savepoint is rolled back, the group's outcomes and log lines are dropped, and its
items run again: those before the failing one as one group, the failing one alone. An item may thus
be processed twice, but what is kept (writes, outcome, error, log lines) comes from one run,
exactly as with a savepoint per item.

This module is the reference; :mod:`musingly_pipeline.batches.pipelined` is the fast path for
``replay_safe`` processors, which must give the same outcomes (a property test checks it).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence

import psycopg
from psycopg.pq import TransactionStatus

from musingly_pipeline.batches.context import ImportContext
from musingly_pipeline.batches.item_json import result_fields, storable_text
from musingly_pipeline.batches.processor import BaseProcessor
from musingly_pipeline.batches.records import ImportBatchItem, ItemOutcome

# The one savepoint name a chunk reuses: released and re-opened after each successful item (or group).
OPEN_SAVEPOINT = "SAVEPOINT musingly_item"
NEXT_SAVEPOINT = "RELEASE SAVEPOINT musingly_item; SAVEPOINT musingly_item"
UNDO_SAVEPOINT = "ROLLBACK TO SAVEPOINT musingly_item"
CLOSE_SAVEPOINT = "RELEASE SAVEPOINT musingly_item"
INERROR = TransactionStatus.INERROR
# The largest text kept for an item's error message, and (about) for its traceback, whose message
# line may repeat what the item held: its start and end are kept.
MAX_ERROR_MESSAGE = 2000
MAX_TRACEBACK = 8000


class Chunk:
    """The items of one chunk, inside the chunk's transaction and its open savepoint ``musingly_item``.

    ``run(items, size)`` takes the items ``size`` at a time. A group whose items all succeed costs
    one round trip at its end (release the savepoint, open the next). When an item fails, the
    savepoint is rolled back: if no other item of the group had been processed, the failure is the
    item's outcome (with ``size`` 1, always); otherwise the group's outcomes and log lines are
    dropped and its items run again, those before the failing one as one group and the failing one
    alone, so every outcome kept comes from a run whose writes are the ones kept.

    ``outcomes`` holds what the chunk produced, in item order; the caller writes them.
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

    def run(self, items: Sequence[ImportBatchItem], size: int) -> None:
        """Process ``items``, ``size`` at a time under one savepoint."""
        self.run_plain(items, size)

    def run_plain(self, items: Sequence[ImportBatchItem], size: int) -> None:
        start = 0
        while start < len(items):
            self.settle()
            start += self._group(items[start:start + size])

    def settle(self) -> None:
        """Make sure nothing sent earlier is still waiting for its result (a plain chunk waits for each)."""

    def close(self) -> psycopg.Error | None:
        """End the chunk's processing; the first error of a statement not yet waited for, if any."""
        return None

    def _group(self, group: Sequence[ImportBatchItem]) -> int:
        """Run ``group`` under the open savepoint; return how many of its items now have an outcome."""
        ctx, mark, added, processed = self.ctx, len(self.outcomes), [], 0
        if len(group) > 1:
            ctx.hold_logs()  # the Python logger sees a group's lines only once they are kept
        for position, item in enumerate(group):
            if self._skipped(item):
                continue
            outcome = self._item(item)
            if isinstance(outcome, Failure):
                self.conn.execute(UNDO_SAVEPOINT)
                if not processed:
                    # Nothing else of the group was written: this is the item's own savepoint.
                    self.outcomes.append(outcome.record(ctx))
                    ctx.release_logs(keep=True)
                    return position + 1
                # Items before it were written in this savepoint too: drop the attempt, run them again.
                self._drop_attempt(mark, added)
                self.run_plain(group[:position], position)
                self.run_plain([item], 1)
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

    def _item(self, item: ImportBatchItem) -> ItemOutcome | Failure:
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
            return Failure(item, code, exc, (time.perf_counter() - started) * 1000)
        return ItemOutcome(item.id, "completed", duration_ms=(time.perf_counter() - started) * 1000, **fields)


class Failure:
    """An item that raised; its error and log line are only made if this run's outcome is kept."""

    def __init__(self, item: ImportBatchItem, code: str, exc: Exception, duration_ms: float):
        self.item, self.code, self.exc, self.duration_ms = item, code, exc, duration_ms

    def record(self, ctx: ImportContext) -> ItemOutcome:
        exc, item, code = self.exc, self.item, self.code
        trace = capped_traceback(storable_text("".join(traceback.format_exception(exc))))
        message = short_error(exc) if isinstance(exc, ItemInvalid) else f"{type(exc).__name__}: {short_error(exc)}"
        what = "is invalid" if code == "ITEM_INVALID" else "failed"
        ctx.item = item
        ctx.error(f"item {item.item_index} {what}: {message}", code=code, traceback=trace)
        return ItemOutcome(item.id, "failed", error_code=code, error_message=message, error_traceback=trace,
                           duration_ms=self.duration_ms)


class ItemInvalid(Exception):
    """validate_item said no."""


class ItemAborted(Exception):
    """The item returned with its transaction aborted by an error it caught."""


def short_error(exc: BaseException) -> str:
    """The text of ``exc`` as an error message keeps it: storable, at most MAX_ERROR_MESSAGE characters."""
    text = storable_text(str(exc).strip() or type(exc).__name__)
    return text if len(text) <= MAX_ERROR_MESSAGE else text[:MAX_ERROR_MESSAGE] + "…"


def capped_traceback(text: str) -> str:
    """At most about MAX_TRACEBACK characters: the start (where it began) and the end (the error)."""
    if len(text) <= MAX_TRACEBACK:
        return text
    head = MAX_TRACEBACK // 4
    return f"{text[:head]}\n… {len(text) - MAX_TRACEBACK} characters cut …\n{text[-(MAX_TRACEBACK - head):]}"
