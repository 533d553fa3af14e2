"""What a processor gets: the database (inside the item's savepoint) and a logger tied to the batch."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg

from musingly_pipeline.storage.batches import ImportBatchItem, LogEntry

logger = logging.getLogger("musingly_pipeline.batches")
# A library logs to its own logger; the application (CLI, Dagster) decides where it goes.
logger.addHandler(logging.NullHandler())


class ImportContext:
    """The database connection and the audit log of one batch run.

    ``execute`` and ``execute_one`` run SQL with parameters on the run's connection: inside the
    current item's savepoint during ``validate_item``/``process_item``, inside the hook's transaction
    in ``on_batch_start``/``on_batch_complete``. Never commit or roll back yourself.
    ``info``/``warning``/``error`` append to ``import_batch_logs``, tagged with the batch and the
    current item. ``metadata`` is a dict shared by the hooks and every item of the run.
    """

    def __init__(self, connection: psycopg.Connection, batch_id: uuid.UUID, batch_type: str):
        self.connection = connection
        self.batch_id = batch_id
        self.batch_type = batch_type
        self.item: ImportBatchItem | None = None
        self.metadata: dict[str, Any] = {}
        self._logs: list[LogEntry] = []

    def execute(self, query, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement; return its rows as dicts (empty for statements without rows)."""
        cursor = self.connection.execute(query, params)
        return cursor.fetchall() if cursor.description is not None else []

    def execute_one(self, query, params: Any = None) -> dict[str, Any] | None:
        """Run one statement; return its first row as a dict, or None."""
        cursor = self.connection.execute(query, params)
        return cursor.fetchone() if cursor.description is not None else None

    def info(self, message: str, **details: Any) -> None:
        self._log("info", message, details)

    def warning(self, message: str, **details: Any) -> None:
        self._log("warning", message, details)

    def error(self, message: str, **details: Any) -> None:
        self._log("error", message, details)

    def _log(self, level: str, message: str, details: dict[str, Any]) -> None:
        item_id = self.item.id if self.item is not None else None
        self._logs.append(LogEntry(self.batch_id, item_id, level, str(message), details))
        logger.log(
            {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[level],
            "batch %s%s: %s", self.batch_id, f" item {self.item.item_index}" if self.item else "", message,
        )

    def take_logs(self) -> list[LogEntry]:
        """The log lines written since the last call (the framework writes them in bulk)."""
        logs, self._logs = self._logs, []
        return logs
