"""How the file store appends a batch's lines to its day files: all at once, or one after the other.

A batch touches one or more day files. :class:`DayFileWrites` appends each day's lines (one write per
file) and fsyncs them on worker threads, so the file system commits them together while the calling
thread builds the results; the call returns when every fsync has (:meth:`DayFileWrites.finish`). The
threads belong to the store (:class:`WriterThreads`, started on first use, started again in a forked
child, which has none of its parent's threads). ``WriterThreads(0)`` is the plain reference: every
write and fsync in the calling thread, in order; the property test of the batch write path
(``musingly_pipeline_tests/signals/test_batch_writes.py``) runs both and expects the same files.

A write also checks that its lines landed where their index entries say: a process that appends
without the store's lock may have come first (see ``file_store``).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from musingly_pipeline.signals.id_index import IdIndex


class LinesMoved(Exception):
    """Another writer appended while the batch was written, so some lines are not at the offsets
    their entries say (the first may even be glued onto a torn line): the written ids are not
    acknowledged until a rebuilt index finds them."""


class WriterThreads:
    """A store's worker threads for appends and fsyncs; ``workers=0``: none, everything inline."""

    def __init__(self, workers: int = 32):
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def submit(self, task, *args) -> Future:
        if self._pool is None or self._pid != os.getpid():  # a forked child starts its own threads
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="signal-io")
            self._pid = os.getpid()
        return self._pool.submit(task, *args)

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.shutdown(wait=False)
        self._pool = None


def open_day_file(path: str) -> tuple[int, bool, int, bool]:
    """Open a day file for appending: ``(fd, created, size, ends_in_a_torn_line)``."""
    created = False
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        created = True
    try:
        size = os.fstat(fd).st_size
        torn = bool(size) and os.pread(fd, 1, size - 1) != b"\n"
    except BaseException:
        os.close(fd)
        raise
    return fd, created, size, torn


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class DayFileWrites:
    """One batch's appends (and fsyncs), handed to worker threads so the file system can commit them
    together while the caller goes on; :meth:`finish` waits for all of them and closes the descriptors."""

    def __init__(self, durable: bool, index: IdIndex, threads: WriterThreads):
        self.durable = durable
        self.index = index
        self.threads = threads
        self.inline = False  # a single file: write it in the calling thread
        self.fds: list[int] = []
        self.days: dict[int, tuple[int, int]] = {}  # fd -> (day, size when opened)
        self.ends: dict[int, int] = {}  # fd -> where this store's bytes end, checked
        self.futures: list = []
        self.error: BaseException | None = None

    def opened(self, fd: int, day: int, size: int) -> None:
        self.fds.append(fd)  # closed by finish() or close()
        self.days[fd] = (day, size)

    def _run(self, task, *args) -> None:
        if self.inline or not self.threads.workers:
            try:
                task(*args)
            except BaseException as exc:
                self.error = self.error or exc
            return
        self.futures.append(self.threads.submit(task, *args))

    def write(self, fd: int, data: bytes) -> None:
        self._run(self._append, fd, data)

    def _append(self, fd: int, data: bytes) -> None:
        write_all(fd, data)
        if self.durable:
            os.fsync(fd)
        # The lines' entries say they start at the size the file had when opened. Another writer
        # that does not take the lock may have appended meanwhile: then the bytes must be checked.
        start = self.days[fd][1]
        if os.fstat(fd).st_size == start + len(data) or os.pread(fd, len(data), start) == data:
            self.ends[fd] = start + len(data)

    def sync_directory(self, directory: Path) -> None:
        self._run(fsync_dir, directory)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def finish(self) -> None:
        """Wait for every write; raise the first error (the index then forgets the ids it holds as
        written), or :class:`LinesMoved` if some lines are not where their entries say."""
        written = len(self.fds)
        try:
            for future in self.futures:
                self.error = self.error or future.exception()  # waits
        finally:
            self.close()
        if self.error is not None:
            self.index.forget()  # reloading it checks the entries against the files again
            raise self.error
        if len(self.ends) < written:
            raise LinesMoved()
        for fd, end in self.ends.items():
            self.index.wrote(self.days[fd][0], end)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
