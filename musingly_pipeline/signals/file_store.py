"""The filesystem backend: metaspn-store's workspace layout, safe against crashes and concurrent writers.

::

    workspace/store/signals/YYYY-MM-DD.jsonl     one signal envelope per line, by UTC day
    workspace/store/emissions/YYYY-MM-DD.jsonl   one emission envelope per line
    workspace/store/checkpoints/NAME.json        replay checkpoints
    workspace/store/snapshots/NAME__....json     snapshots (digest__DAY.json, calibration__DAY.json, ...)
    workspace/store/{signals,emissions}/.lock    the writers' lock (flock), ignored by metaspn-store
    workspace/store/{signals,emissions}/.ids.idx the persistent id index (see ``id_index``)

What this adds to metaspn-store, same files:

* Writers take an exclusive ``flock`` on the kind's ``.lock``, so two processes never interleave
  lines or store one id twice; readers take it shared just while reading a partition's bytes.
* A batch is validated and checked for duplicates before any byte is written, appended with one
  write per day, and ``fsync``-ed (files, and the directory for a new day) before the call returns.
* A torn last line left by a crash is skipped by readers with an :class:`UnreadableLineWarning`,
  and the next writer terminates it first, so only that line is lost.
* A query opens only the partitions of the days in its window.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from musingly_pipeline.signals.envelopes import ID_FIELDS, Envelope, EventKind, InvalidEnvelope, parse_stored_line
from musingly_pipeline.signals.id_index import IdIndex, id_hashes, partition_day
from musingly_pipeline.signals.query import EventQuery
from musingly_pipeline.signals.store import DuplicateEventError, DuplicatePolicy, EventStore, PartitionRead, WriteResult
from musingly_pipeline.validation.report import error

KIND_DIRS = {"signal": "signals", "emission": "emissions"}


class UnreadableLineWarning(UserWarning):
    """A partition line that could not be read (torn by a crash, or not an envelope) was skipped."""


class FileSystemStore(EventStore):
    """Append-only JSONL store in metaspn-store's layout; ``durable=False`` skips fsync (tests, bulk loads)."""

    def __init__(self, workspace: str | Path, *, durable: bool = True) -> None:
        self.workspace = Path(workspace)
        self.store_root = self.workspace / "store"
        self.signals_dir = self.store_root / "signals"
        self.emissions_dir = self.store_root / "emissions"
        self.snapshots_dir = self.store_root / "snapshots"
        self.checkpoints_dir = self.store_root / "checkpoints"
        self.durable = durable
        for d in (self.signals_dir, self.emissions_dir, self.snapshots_dir, self.checkpoints_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._indexes = {kind: IdIndex(self.kind_dir(kind), ID_FIELDS[kind]) for kind in KIND_DIRS}
        self._locations: dict[tuple[str, date], str] = {}

    def __repr__(self) -> str:
        return f"FileSystemStore({str(self.workspace)!r})"

    def kind_dir(self, kind: EventKind) -> Path:
        return self.store_root / KIND_DIRS[kind]

    def partition_path(self, kind: EventKind, day: date) -> Path:
        return self.kind_dir(kind) / f"{day.isoformat()}.jsonl"

    @contextmanager
    def _lock(self, kind: EventKind, exclusive: bool):
        fd = os.open(self.kind_dir(kind) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def close(self) -> None:
        for index in self._indexes.values():
            index.close()

    def days(self, kind: EventKind = "signal") -> list[date]:
        return sorted(d for d in (partition_day(p) for p in self.kind_dir(kind).iterdir()) if d is not None)

    def reindex(self, kind: EventKind = "signal") -> int:
        """Load (and repair or build) the id index now; return how many ids it holds."""
        with self._lock(kind, exclusive=True):
            index = self._indexes[kind]
            index.refresh()
            return index.size

    # -- writes --------------------------------------------------------------------------------------
    def _append(self, kind: EventKind, envelopes: Sequence[Envelope], on_duplicate: DuplicatePolicy) -> list[WriteResult]:
        with self._lock(kind, exclusive=True):
            index = self._indexes[kind]
            index.refresh()
            event_ids = [e.event_id for e in envelopes]
            hashes = id_hashes(event_ids)
            stored = index.lookup_many(event_ids, hashes)
            results: list[WriteResult | None] = []
            pending: dict[date, list[tuple[int, int, str, bytes]]] = {}
            in_batch: dict[str, date] = {}
            duplicates = 0
            for e, event_id, h, existing in zip(envelopes, event_ids, hashes.tolist(), stored):
                existing = existing or in_batch.get(event_id)
                if existing is not None:
                    duplicates += 1
                    results.append(WriteResult(event_id, existing, False, self._location(kind, existing)))
                    continue
                day = e.timestamp.date()
                in_batch[event_id] = day
                pending.setdefault(day, []).append((len(results), h, event_id, e.to_json_bytes() + b"\n"))
                results.append(None)
            if duplicates and on_duplicate == "raise":
                first = next(r.event_id for r in results if r is not None)
                raise DuplicateEventError(
                    f"{duplicates} {kind} id(s) already stored, e.g. {first!r}; nothing of this batch was "
                    "written (use on_duplicate='return_existing' to skip them)"
                )
            opened: list[int] = []
            created = False
            try:
                for day, items in sorted(pending.items()):
                    fd, new_file = self._append_day(kind, index, self.partition_path(kind, day), day, items, results)
                    opened.append(fd)
                    created = created or new_file
                if self.durable:
                    _fsync_all(opened)
                    if created:
                        _fsync_dir(self.kind_dir(kind))
            finally:
                for fd in opened:
                    os.close(fd)
            return results  # type: ignore[return-value]

    def _location(self, kind: EventKind, day: date) -> str:
        key = (kind, day)
        location = self._locations.get(key)
        if location is None:
            location = self._locations[key] = str(self.partition_path(kind, day))
        return location

    def _append_day(self, kind, index: IdIndex, path: Path, day: date, items, results) -> tuple[int, bool]:
        """Append one day's lines (index entries first); return the still open descriptor to fsync."""
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            prefix = b""
            if size and _last_byte(path, size) != b"\n":
                prefix = b"\n"  # a torn line from a crash: end it so it stays one skipped line
            offset = size + len(prefix)
            hashes, lengths, offsets = [], [], []
            chunks = [prefix]
            location = self._location(kind, day)
            for position, h, event_id, line in items:
                hashes.append(h)
                lengths.append(len(line))
                offsets.append(offset)
                offset += len(line)
                chunks.append(line)
                results[position] = WriteResult(event_id, day, True, location)
            index.append(hashes, day.toordinal(), lengths, offsets)  # before the lines: see id_index
            _write_all(fd, b"".join(chunks))
        except BaseException:
            os.close(fd)
            raise
        return fd, created

    # -- reads ---------------------------------------------------------------------------------------
    def read_partition(self, kind: EventKind, day: date, query: EventQuery | None = None, *, warn: bool = True) -> PartitionRead:
        """Every readable envelope of one day (lines that cannot match ``query`` are skipped unparsed)."""
        path = self.partition_path(kind, day)
        result = PartitionRead(str(path))
        try:
            with self._lock(kind, exclusive=False):
                with open(path, "rb") as handle:
                    data = handle.read()
        except FileNotFoundError:
            return result
        text = data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        torn = lines.pop()  # text after the last newline: empty, or a line torn by a crash
        needles = query.line_needles() if query is not None else []
        where = f"{KIND_DIRS[kind]}/{path.name}"
        with _gc_paused():
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                result.lines += 1
                if needles and not all(any(n in line for n in group) for group in needles):
                    continue
                try:
                    result.envelopes.append(parse_stored_line(kind, line, f"{where}:{number}"))
                except InvalidEnvelope as exc:
                    result.issues.append(error("SIGNAL_UNREADABLE_LINE", f"{where}:{number}",
                                               f"skipped an unreadable line: {exc.issues[0].message}"))
        if torn.strip():
            result.lines += 1
            result.issues.append(error("SIGNAL_UNREADABLE_LINE", f"{where}:{len(lines) + 1}",
                                       "skipped a torn last line (no newline: a write was interrupted)"))
        if warn:
            for issue in result.issues:
                warnings.warn(f"{issue.path}: {issue.message}", UnreadableLineWarning, stacklevel=3)
        return result

    def _scan(self, query: EventQuery, limit: int | None = None) -> Iterator[Envelope]:
        stored = set(self.days(query.kind))
        day, last, step = query.first_day, query.last_day, timedelta(days=1)
        days = []
        while day <= last:
            if day in stored:
                days.append(day)
            day += step
        if query.newest_first:
            days.reverse()
        for day in days:
            envelopes = self.read_partition(query.kind, day, query).envelopes
            seen: set[str] = set()
            unique = []
            for e in envelopes:  # first seen wins, before sorting by time
                if e.event_id not in seen:
                    seen.add(e.event_id)
                    unique.append(e)
            if query.newest_first:
                unique.sort(key=lambda e: (e.timestamp, e.event_id), reverse=True)
            else:
                unique.sort(key=lambda e: e.timestamp)  # stable: ties keep first-written order
            yield from unique

    # -- documents -----------------------------------------------------------------------------------
    def _document_path(self, folder: str, name: str) -> Path:
        return (self.checkpoints_dir if folder == "checkpoints" else self.snapshots_dir) / f"{name}.json"

    def _put_document(self, folder: str, name: str, document: dict[str, Any]) -> str:
        path = self._document_path(folder, name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if self.durable:
            _fsync_dir(path.parent)
        return str(path)

    def _get_document(self, folder: str, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._document_path(folder, name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _list_documents(self, folder: str, prefix: str) -> list[str]:
        base = self.checkpoints_dir if folder == "checkpoints" else self.snapshots_dir
        return sorted(p.stem for p in base.glob("*.json") if p.stem.startswith(prefix))


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while tens of thousands of acyclic envelopes are built;
    its generation-2 passes otherwise take half of a day's replay."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


_SYNC_POOL: ThreadPoolExecutor | None = None


def _fsync_all(fds: list[int]) -> None:
    """fsync every descriptor; several at once, so the file system can commit them together."""
    global _SYNC_POOL
    if len(fds) == 1:
        os.fsync(fds[0])
        return
    if _SYNC_POOL is None:
        _SYNC_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="signal-fsync")
    list(_SYNC_POOL.map(os.fsync, fds))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
