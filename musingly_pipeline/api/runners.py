"""Where the API sends a batch to be processed, so that no request waits for its items.

Two runners, one per API process (``APIManager`` picks one):

- :class:`WorkerPool` (default): threads of the API process run ``BatchManager.process_batch``.
  Queued batches wait for a free thread; a batch queued twice is refused (``BATCH_BUSY``). When
  the server shuts down, batches still waiting are not started (they stay pending and their log
  says so) and running ones stop after their current chunk (what is done is kept; the rest stays
  pending); either way ``POST /api/batches/{id}/process`` continues them later. If the process
  dies, its runs' open chunks roll back and the next run resumes them (``BatchManager``).
- ``defs.batches.launch.DagsterLauncher`` (when ``MUSINGLY_DAGSTER_URL`` names a Dagster
  webserver): a ``process_batch`` run of the code location per batch.

A runner's ``submit(batch_id, requested_by)`` writes to the batch's log where it went and returns
a :class:`Submission`, or raises BatchError.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Protocol

from musingly_pipeline.batches import BatchError, BatchManager

logger = logging.getLogger("musingly_pipeline.api")


class Submission(NamedTuple):
    runner: str
    dagster_run_id: str | None = None

    def describe(self) -> str:
        if self.dagster_run_id:
            return f"Dagster run {self.dagster_run_id} of job process_batch"
        return "the API's worker pool"


class Runner(Protocol):
    def submit(self, batch_id: uuid.UUID, requested_by: str) -> Submission: ...

    def is_queued(self, batch_id: uuid.UUID) -> bool: ...

    def close(self) -> None: ...


class WorkerPool:
    """``workers`` threads that process batches for the API process."""

    name = "worker_pool"

    def __init__(self, manager: BatchManager, workers: int = 2):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.manager = manager
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="musingly-batch")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._waiting: set[uuid.UUID] = set()  # queued, not started yet
        self._running: set[uuid.UUID] = set()

    def submit(self, batch_id: uuid.UUID, requested_by: str) -> Submission:
        with self._lock:
            if self._stop.is_set():
                raise BatchError("PROCESSING_UNAVAILABLE", "the server is shutting down; process the batch "
                                 "again once it is back")
            if batch_id in self._waiting or batch_id in self._running:
                raise BatchError("BATCH_BUSY", f"batch {batch_id} is already queued for processing; "
                                 f"GET /api/batches/{batch_id} shows its progress")
            self._waiting.add(batch_id)
        submission = Submission(self.name)
        try:
            # Logged before the run can start, so the log reads in order.
            self.manager.add_log(batch_id, "info", f"queued for processing in {submission.describe()} by "
                                 f"{requested_by}", runner=self.name, requested_by=requested_by)
            self._executor.submit(self._process, batch_id)
        except RuntimeError:  # the pool was shut down: the server is stopping
            with self._lock:
                self._waiting.discard(batch_id)
            raise BatchError("PROCESSING_UNAVAILABLE", "the server is shutting down; process the batch again "
                             "once it is back") from None
        except BaseException:
            with self._lock:
                self._waiting.discard(batch_id)
            raise
        return submission

    def is_queued(self, batch_id: uuid.UUID) -> bool:
        with self._lock:
            return batch_id in self._waiting or batch_id in self._running

    def _process(self, batch_id: uuid.UUID) -> None:
        with self._lock:
            self._waiting.discard(batch_id)
            if self._stop.is_set():
                return
            self._running.add(batch_id)
        try:
            summary = self.manager.process_batch(batch_id, stop=self._stop.is_set)
            logger.info("batch %s: %s, %d of %d items done", batch_id, summary.status, summary.done_items,
                        summary.total_items)
        except BatchError as exc:
            # Hook failures are on the batch already; say why this run did nothing else.
            logger.warning("batch %s: %s", batch_id, exc)
            if exc.code == "BATCH_BUSY":
                self._note(batch_id, "warning", f"the queued run did not start: {exc.message}")
        except Exception:
            logger.exception("batch %s: processing failed", batch_id)
            self._note(batch_id, "error", "the API's worker stopped on an unexpected error (see the server log); "
                       "process the batch again to resume it")
        finally:
            with self._lock:
                self._running.discard(batch_id)

    def _note(self, batch_id: uuid.UUID, level: str, message: str) -> None:
        try:
            self.manager.add_log(batch_id, level, message)
        except Exception:
            logger.exception("batch %s: could not write to its log", batch_id)

    def close(self) -> None:
        """Stop: waiting batches are not started, running ones stop after their current chunk."""
        self._stop.set()
        with self._lock:
            waiting = sorted(self._waiting)
        self._executor.shutdown(wait=True, cancel_futures=True)
        for batch_id in waiting:
            self._note(batch_id, "info", "not started: the API stopped before this batch's turn; "
                       f"POST /api/batches/{batch_id}/process to process it")


class DagsterRunner:
    """Each batch becomes a ``process_batch`` run of the Dagster deployment at ``url`` (see
    ``defs.batches.launch``). Dagster's run queue decides when it starts."""

    name = "dagster"

    def __init__(self, manager: BatchManager, url: str):
        from musingly_pipeline.defs.batches.launch import DagsterLauncher

        self.manager = manager
        self._launcher = DagsterLauncher(url)

    def submit(self, batch_id: uuid.UUID, requested_by: str) -> Submission:
        submission = Submission(self.name, self._launcher.launch(batch_id))
        self.manager.add_log(batch_id, "info", f"queued for processing in {submission.describe()} by {requested_by}",
                             runner=self.name, requested_by=requested_by, dagster_run_id=submission.dagster_run_id,
                             dagster_url=self._launcher.url)
        return submission

    def is_queued(self, batch_id: uuid.UUID) -> bool:
        return False  # Dagster's queue is not asked; a second run of a busy batch fails with BATCH_BUSY

    def close(self) -> None:
        """Nothing to stop: the runs belong to Dagster."""
