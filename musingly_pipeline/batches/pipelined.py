"""The fast path of a chunk: a ``replay_safe`` processor's groups in psycopg's pipeline mode.

It gives the outcomes, errors, log lines and writes of the plain :class:`~.chunk.Chunk` (a property
test checks it); only the number of times an item's code runs may differ.

* A statement that cannot return rows (INSERT, UPDATE, DELETE or MERGE without RETURNING, as text)
  is sent without waiting for its result; any other statement waits for its own (and those before
  it), so reads see what they would see without pipelining. One sync at the end of the group
  collects every result with the savepoint's release.
* If anything failed, the savepoint is rolled back and the attempt dropped; the first failing item
  is the earliest of the item of the first statement without a good result and the first item
  whose code raised. The items before it run again (pipelined) and it runs alone without
  pipelining, so its outcome, error and traceback, and a database error it catches itself, are
  those it gets with a savepoint of its own. The price: a database error shows only at the group's
  end, so the items after the failing one ran in vain and run again.
* Nothing is prepared server-side in a pipeline (after an error the server skips the rest up to the
  sync, a statement's preparation included, which psycopg would still count as done).
* ``ctx.connection`` (COPY, a nested transaction) leaves pipeline mode, waiting for what was sent,
  and the rest of the run goes without it (as a plain chunk).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import psycopg
from psycopg.pq import ExecStatus

from musingly_pipeline.batches.chunk import (
    CLOSE_SAVEPOINT, INERROR, NEXT_SAVEPOINT, OPEN_SAVEPOINT, UNDO_SAVEPOINT, Chunk, Failure)
from musingly_pipeline.batches.context import ImportContext
from musingly_pipeline.batches.processor import BaseProcessor
from musingly_pipeline.batches.records import ImportBatchItem

COMMAND_OK, TUPLES_OK = ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK
# Statements that cannot return rows unless they say RETURNING (see PipelinedChunk.execute).
WRITE_STATEMENT = re.compile(r"\s*(?:insert|update|delete|merge)\b", re.IGNORECASE)


class PipelinedChunk(Chunk):
    """A :class:`~.chunk.Chunk` whose groups run in pipeline mode while the run allows it.

    It is also what :class:`~.context.ImportContext` sends ``ctx.execute`` to during an attempt
    (``execute``, ``leave``: the context's ``PipelinedStatements``).
    """

    def __init__(self, conn: psycopg.Connection, ctx: ImportContext, processor: BaseProcessor,
                 applied: dict[str, int]):
        super().__init__(conn, ctx, processor, applied)
        # A pipelined attempt: its pipeline (None once left), what leaves it, and the cursor of
        # every statement sent with the position in the group of the item that sent it.
        self._pipeline: psycopg.Pipeline | None = None
        self._exit: ExitStack | None = None
        self._sent: list[tuple[int, psycopg.Cursor]] = []
        self._position = 0
        self._cursors: list[psycopg.Cursor] = []  # reused by the attempts of the chunk, one per statement

    def run(self, items: Sequence[ImportBatchItem], size: int) -> None:
        start = 0
        while start < len(items):
            if not self.ctx.pipelining:  # the processor used ctx.connection: the rest goes the plain way
                self.run_plain(items[start:], size)
                return
            start += self._piped_group(items[start:start + size])

    def settle(self) -> None:
        error = self.close()  # what was sent before succeeded (its group was synced)
        if error is not None:
            raise error

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
                if isinstance(outcome, Failure):
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
        self.run(group[:failed], failed)
        self.run_plain([group[failed]], 1)
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


def returns_no_rows(query: Any) -> bool:
    """True for SQL text that cannot return rows: INSERT, UPDATE, DELETE or MERGE without RETURNING."""
    return isinstance(query, str) and _text_returns_no_rows(query)


@functools.lru_cache(maxsize=512)
def _text_returns_no_rows(query: str) -> bool:
    return WRITE_STATEMENT.match(query) is not None and "returning" not in query.lower()


def _succeeded(cursor: psycopg.Cursor) -> bool:
    result = cursor.pgresult
    return result is not None and result.status in (COMMAND_OK, TUPLES_OK)
