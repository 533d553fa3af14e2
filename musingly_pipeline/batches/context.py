"""What a processor gets: the database (in a savepoint that rolls a failing item back) and a batch logger."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

import psycopg

from musingly_pipeline.batches.item_json import storable_text
from musingly_pipeline.batches.records import ImportBatchItem, LogEntry

logger = logging.getLogger("musingly_pipeline.batches")
# A library logs to its own logger; the application (CLI, Dagster) decides where it goes.
logger.addHandler(logging.NullHandler())


class PipelinedStatements(Protocol):
    """(For the framework.) Sends ``ctx.execute`` statements while a group runs in pipeline mode."""

    def execute(self, query: Any, params: Any, one: bool) -> Any: ...

    def leave(self) -> None: ...


class ImportContext:
    """The database connection and the audit log of one batch run.

    ``execute`` and ``execute_one`` run SQL with parameters on the run's connection: inside the
    current item's savepoint (or its group's, for a ``replay_safe`` processor) during
    ``validate_item``/``process_item``, inside the hook's transaction in
    ``on_batch_start``/``on_batch_complete``. Never commit or roll back yourself. In a pipelined
    group (``replay_safe``), a write without RETURNING returns ``[]`` (or None) at once and its
    error, if any, shows at the group's end, where the framework rolls the group back and runs the
    failing item again alone, without pipelining.
    ``info``/``warning``/``error`` append to ``import_batch_logs``, tagged with the batch and the
    current item (the lines of a run that is rolled back and repeated are dropped, see
    ``BaseProcessor.replay_safe``). ``metadata`` is a dict shared by the hooks and every item of the run.
    """

    def __init__(self, connection: psycopg.Connection, batch_id: uuid.UUID, batch_type: str):
        self._connection = connection
        self.batch_id = batch_id
        self.batch_type = batch_type
        self.item: ImportBatchItem | None = None
        self.metadata: dict[str, Any] = {}
        self._logs: list[LogEntry] = []
        # While a group of items runs (see batches.chunk), its lines wait here for the Python logger.
        self._held: list[tuple[str, str, int | None]] | None = None
        self._held_from = 0
        # While a pipelined group runs (see batches.pipelined), what sends its statements; None otherwise.
        self._pipeline: PipelinedStatements | None = None
        # False once the run's processor used ``connection`` directly: no more pipelined groups.
        self.pipelining = True

    @property
    def connection(self) -> psycopg.Connection:
        """The run's connection, for what ``execute`` cannot do (COPY, a nested ``transaction()``).

        Inside a pipelined group this first leaves pipeline mode (waiting for the statements sent
        so far, so an error of an earlier statement may be raised here), and the rest of the run
        goes without pipelining.
        """
        if self._pipeline is not None:
            self.pipelining = False
            self._pipeline.leave()
        return self._connection

    def execute(self, query, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement; return its rows as dicts (empty for statements without rows)."""
        if self._pipeline is not None:
            return self._pipeline.execute(query, params, False)
        cursor = self._connection.execute(query, params)
        return cursor.fetchall() if cursor.description is not None else []

    def execute_one(self, query, params: Any = None) -> dict[str, Any] | None:
        """Run one statement; return its first row as a dict, or None."""
        if self._pipeline is not None:
            return self._pipeline.execute(query, params, True)
        cursor = self._connection.execute(query, params)
        return cursor.fetchone() if cursor.description is not None else None

    def info(self, message: str, **details: Any) -> None:
        self._log("info", message, details)

    def warning(self, message: str, **details: Any) -> None:
        self._log("warning", message, details)

    def error(self, message: str, **details: Any) -> None:
        self._log("error", message, details)

    def _log(self, level: str, message: str, details: dict[str, Any]) -> None:
        item = self.item
        self._logs.append(LogEntry(self.batch_id, item.id if item is not None else None, level,
                                   storable_text(str(message)), details))
        index = item.item_index if item is not None else None
        if self._held is None:
            self._emit(level, message, index)
        else:
            self._held.append((level, message, index))

    def _emit(self, level: str, message: str, item_index: int | None) -> None:
        logger.log(
            {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[level],
            "batch %s%s: %s", self.batch_id, "" if item_index is None else f" item {item_index}", message,
        )

    def hold_logs(self) -> None:
        """(For the framework.) Keep the next lines from the Python logger until :meth:`release_logs`."""
        self._held, self._held_from = [], len(self._logs)

    def release_logs(self, *, keep: bool) -> None:
        """(For the framework.) Pass the held lines on to the Python logger, or drop them from the run's log."""
        held, self._held = self._held, None
        if held is None:
            return
        if keep:
            for line in held:
                self._emit(*line)
        else:
            del self._logs[self._held_from:]

    def take_logs(self) -> list[LogEntry]:
        """The log lines written since the last call (the framework writes them in bulk)."""
        logs, self._logs = self._logs, []
        return logs
