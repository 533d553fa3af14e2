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
* A batch is validated, checked for duplicates and serialised before any byte is written, appended
  with one write per day, and ``fsync``-ed (files, and the directory for a new day) before the call
  returns.
* A torn last line left by a crash is skipped by readers with an :class:`UnreadableLineWarning`,
  and the next writer terminates it first, so only that line is lost.
* A process that appends without the lock is not supported, but noticed rather than trusted: lines
  appended since the index last accounted for a day file are indexed before a write to it, and a
  write checks that its lines landed where their entries say (another writer's bytes may have come
  first, even a torn line its first line is then glued onto). If they did not, the index is rebuilt
  and whatever is not found intact is written again before the call returns; nothing is
  acknowledged that a fresh store would not find (:class:`ForeignWriterError` if the files keep
  changing, after ``_ATTEMPTS`` tries).
* A query opens only the partitions of the days in its window.

How a batch is written (``_append``), fast because nearly all of it is per batch, not per envelope:
the ids are hashed and looked up in the index with numpy (``id_hashes``; in-batch repeats from one
stable argsort of the hashes); the new envelopes are serialised by one call for the whole list
(``envelope_json.encode_lines``), in batch order (the order their objects sit in memory: reading them
in day order costs a cache miss per object), and the lines are regrouped by day as bytes; the index
entries are appended (one write), then worker threads append each day's lines (one write per file)
and fsync them all at once (``day_writes``), while this thread builds the results
(``write_results``); the call returns when every fsync has. The cyclic GC is paused meanwhile.

How a day is read (``read_partition``): the file's lines are validated as bytes, one pydantic call
each, with the GC paused (``stored_lines``); the careful line-by-line read (lenient UTF-8, an issue
per skipped line) runs only if one fails.

Each of those fast paths sits in its own module beside a plain version, and a property test holds
the two to the same answers.
"""

from __future__ import annotations

import fcntl
import json
import operator
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from itertools import compress
from pathlib import Path
from typing import Any

import numpy as np

from musingly_core.gcpause import gc_paused
from musingly_core.report import error

from musingly_pipeline.signals.day_writes import DayFileWrites, LinesMoved, WriterThreads, fsync_dir, open_day_file, write_all
from musingly_pipeline.signals.envelope_json import encode_lines
from musingly_pipeline.signals.envelopes import ID_FIELDS, ID_GETTERS, Envelope, EventKind, parse_stored_line
from musingly_pipeline.signals.errors import DuplicateEventError, ForeignWriterError, InvalidEnvelope, UnreadableLineWarning
from musingly_pipeline.signals.id_hashes import first_positions
from musingly_pipeline.signals.id_index import ENTRY, IdIndex, partition_day
from musingly_pipeline.signals.query import EventQuery
from musingly_pipeline.signals.store import DuplicatePolicy, EventStore, PartitionRead, WriteResult
from musingly_pipeline.signals.stored_lines import validate_lines
from musingly_pipeline.signals.write_results import write_results

KIND_DIRS = {"signal": "signals", "emission": "emissions"}
_TIMESTAMP = operator.attrgetter("timestamp")
_NEWEST_KEYS = {kind: operator.attrgetter("timestamp", field) for kind, field in ID_FIELDS.items()}
_LAST = [b""]
_ORDINAL = datetime.toordinal  # of the UTC date: envelopes hold UTC timestamps


class _IndexCaughtUp(Exception):
    """Lines another writer appended may hold ids of the batch (nothing written yet): look up again."""


# Attempts at a batch while another writer appends (each is a lookup and maybe a write).
_ATTEMPTS = 10


class FileSystemStore(EventStore):
    """Append-only JSONL store in metaspn-store's layout; ``durable=False`` skips fsync (tests, bulk loads);
    ``io_threads``: the worker threads that append and fsync a batch's day files (0: the calling thread)."""

    def __init__(self, workspace: str | Path, *, durable: bool = True, io_threads: int = 32) -> None:
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
        self._threads = WriterThreads(io_threads)  # io_threads=0: every write in the calling thread

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
        self._threads.close()

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
        """Write a batch: every check first, then the index entries, one write per day file, and fsync.

        Per envelope this costs its serialisation (orjson, or pydantic's serializer for an unusual
        shape; both in Rust) and a result tuple;
        the id hashes, duplicate detection, grouping by day and the index entries are numpy
        operations over the whole batch.
        """
        n = len(envelopes)
        with gc_paused(), self._lock(kind, exclusive=True):
            event_ids = list(map(ID_GETTERS[kind], envelopes))
            index = self._indexes[kind]
            index.refresh()
            hashes = index.hash_ids(event_ids)
            by_hash = np.argsort(hashes, kind="stable")
            firsts = first_positions(event_ids, hashes, by_hash)  # where each id first occurs in the batch
            ours = np.zeros(n, bool)  # positions an earlier attempt of this call wrote
            for _ in range(_ATTEMPTS):
                stored = index.lookup_many(event_ids, hashes, by_hash)  # {position: day} of ids already stored
                fresh = firsts == np.arange(n)
                if stored:
                    fresh[list(stored)] = False
                new = np.flatnonzero(fresh)
                written = fresh | ours  # an id an earlier attempt wrote intact is stored now, by this call
                if on_duplicate == "raise" and not written.all():
                    example = event_ids[int(np.flatnonzero(~written)[0])]
                    raise DuplicateEventError(
                        f"{int(n - written.sum())} {kind} id(s) already stored, e.g. {example!r}; nothing of this "
                        "batch was written (use on_duplicate='return_existing' to skip them)"
                    )
                try:
                    return self._results(kind, index, envelopes, event_ids, hashes, new, stored, firsts, written)
                except _IndexCaughtUp:  # lines another writer appended are indexed now: look up again
                    continue
                except LinesMoved:  # written, but not where their entries say: see DayFileWrites.finish
                    index.rebuild()
                    ours[new] = True
            raise ForeignWriterError(
                f"the {kind} day files kept changing while this batch was written ({_ATTEMPTS} attempts): a "
                "process that does not take the store's lock (metaspn-store?) is appending to them; stop it and "
                "write again (what was written intact is found then, and not written twice)")

    def _results(self, kind: EventKind, index: IdIndex, envelopes: Sequence[Envelope], event_ids: list[str],
                 hashes: np.ndarray, new: np.ndarray, stored: dict[int, date], firsts: np.ndarray,
                 written: np.ndarray) -> list[WriteResult]:
        """Write the ``new`` positions and build every position's result meanwhile."""
        n = len(event_ids)
        # results[i] is (event_ids[i], days[which[i]], written[i], locations[which[i]])
        which = np.empty(n, np.intp)
        days: list[date] = []
        finish = None
        if len(new):
            days, finish = self._write_new(kind, index, envelopes, event_ids, hashes, new, which)
        try:  # the results are built while worker threads write and fsync
            for i, day in stored.items():
                which[i] = len(days)
                days.append(day)
            repeats = np.flatnonzero(firsts != np.arange(n))  # ids repeated inside the batch
            which[repeats] = which[firsts[repeats]]
            results = write_results(event_ids, days, [self._location(kind, day) for day in days], which, written)
        finally:
            if finish is not None:
                finish()  # every line written, fsynced and checked, or raises
        return results

    def _write_new(self, kind: EventKind, index: IdIndex, envelopes: Sequence[Envelope], event_ids: list[str],
                   hashes: np.ndarray, new: np.ndarray, which: np.ndarray) -> tuple[list[date], Callable[[], None]]:
        """Append the envelopes at positions ``new`` (ids not stored yet), grouped by day, and fsync.

        Returns the days written (``which[i]`` is set to the index of position ``i``'s day, for each
        new position) and ``finish``, which the caller must call before returning: it waits until
        every line is written and fsynced (worker threads do that meanwhile) and raises if one
        could not be.
        """
        # The envelopes are read in batch order (the order they were most likely made in, so mostly
        # sequential in memory; reading them in day order costs a cache miss per object), and the
        # serialised lines are then regrouped by day as bytes.
        picked = list(map(envelopes.__getitem__, new.tolist()))
        data, starts, sizes = encode_lines(kind, picked)  # before touching a file: an error here writes nothing
        ordinals = np.fromiter(map(_ORDINAL, map(_TIMESTAMP, picked)), np.int64, len(picked))
        order = np.argsort(ordinals, kind="stable")  # by day, batch order within a day
        new, ordinals, starts, sizes = new[order], ordinals[order], starts[order], sizes[order]
        lengths = sizes + 1  # on disk, with the newline
        firsts = np.r_[0, np.flatnonzero(np.diff(ordinals)) + 1]  # first line of each day
        counts = np.diff(np.r_[firsts, len(new)])
        before = np.cumsum(lengths) - lengths  # bytes of the lines before each one, all days
        within = before - np.repeat(before[firsts], counts)  # ... of the same day
        days = [date.fromordinal(o) for o in ordinals[firsts].tolist()]
        files = DayFileWrites(self.durable, index, self._threads)
        created = False
        try:
            bases, torn = [], []
            for day, ordinal in zip(days, ordinals[firsts].tolist()):
                fd, new_file, size, ends_torn = self._open_partition(kind, day)
                files.opened(fd, ordinal, size)
                appended = index.catch_up(ordinal, size)  # lines another writer appended since
                if appended is None or (len(appended) and np.isin(hashes[new], appended).any()):
                    raise _IndexCaughtUp()
                torn.append(ends_torn)
                bases.append(size + ends_torn)
                created = created or new_file
            entries = np.empty(len(new), ENTRY)
            entries["h"] = hashes[new]
            entries["day"] = ordinals
            entries["len"] = lengths
            entries["off"] = within + np.repeat(bases, counts)
            index.write_entries(entries)  # before the lines: see id_index
        except BaseException:
            files.close()
            raise
        try:
            # each day's lines go to a worker thread as soon as they are joined
            files.inline = len(days) == 1 and not (created and self.durable)
            view = memoryview(data)
            lines = [view[a:a + b] for a, b in zip(starts.tolist(), sizes.tolist())]
            for fd, first, count, ends_torn in zip(files.fds, firsts.tolist(), counts.tolist(), torn):
                chunk = b"\n".join(lines[first:first + count] + _LAST)  # each line ending in "\n"
                # a torn line from a crash is ended first, so it stays one skipped line
                files.write(fd, b"\n" + chunk if ends_torn else chunk)
            del lines, view
            if created and self.durable:
                files.sync_directory(self.kind_dir(kind))
            # meanwhile
            index.add_entries(entries, list(map(event_ids.__getitem__, new.tolist())))
            which[new] = np.repeat(np.arange(len(days)), counts)
        except BaseException:
            with suppress(BaseException):
                files.finish()
            index.forget()
            raise
        return days, files.finish

    def _open_partition(self, kind: EventKind, day: date) -> tuple[int, bool, int, bool]:
        """Open a day file for appending: ``(fd, created, size, ends_in_a_torn_line)``."""
        return open_day_file(self._location(kind, day))

    def _location(self, kind: EventKind, day: date) -> str:
        key = (kind, day)
        location = self._locations.get(key)
        if location is None:
            location = self._locations[key] = str(self.partition_path(kind, day))
        return location

    # -- reads ---------------------------------------------------------------------------------------
    def read_partition(self, kind: EventKind, day: date, query: EventQuery | None = None, *, warn: bool = True) -> PartitionRead:
        """Every readable envelope of one day (lines that cannot match ``query`` are skipped unparsed).

        The lines are validated as bytes, one Rust call each, with the cyclic GC paused; only when
        one of them fails is the partition read again line by line (:meth:`_read_lines`), which
        decodes invalid UTF-8 leniently and names every line it skips.
        """
        path = self.partition_path(kind, day)
        result = PartitionRead(str(path))
        try:
            with self._lock(kind, exclusive=False):
                with open(path, "rb") as handle:
                    data = handle.read()
        except FileNotFoundError:
            return result
        lines = data.split(b"\n")
        torn = lines.pop()  # bytes after the last newline: empty, or a line torn by a crash
        numbered = len(lines)
        needles = [tuple(n.encode() for n in group) for group in query.line_needles()] if query is not None else []
        where = f"{KIND_DIRS[kind]}/{path.name}"
        picked = list(compress(lines, map(bytes.strip, lines)))
        nonblank = len(picked)
        del lines  # each line's memory is freed once validated, for the envelopes to reuse
        if needles:
            picked = [line for line in picked if all(any(n in line for n in group) for group in needles)]
        try:
            with gc_paused():
                result.envelopes = validate_lines(kind, picked)
            result.lines = nonblank
        except ValueError:  # a line that is not a valid envelope (ValidationError) or not UTF-8
            self._read_lines(kind, data.split(b"\n")[:numbered], needles, where, result)
        if torn.strip():
            result.lines += 1
            result.issues.append(error("SIGNAL_UNREADABLE_LINE", f"{where}:{numbered + 1}",
                                       "skipped a torn last line (no newline: a write was interrupted)"))
        if warn:
            for issue in result.issues:
                warnings.warn(f"{issue.path}: {issue.message}", UnreadableLineWarning, stacklevel=3)
        return result

    @staticmethod
    def _read_lines(kind: EventKind, lines: list[bytes], needles: list[tuple[bytes, ...]], where: str, result: PartitionRead) -> None:
        """The partition line by line: every readable envelope, and an issue for each line skipped."""
        result.envelopes, result.lines = [], 0
        with gc_paused():
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                result.lines += 1
                if needles and not all(any(n in line for n in group) for group in needles):
                    continue
                try:
                    result.envelopes.append(parse_stored_line(kind, line.decode("utf-8", errors="replace"), f"{where}:{number}"))
                except InvalidEnvelope as exc:
                    result.issues.append(error("SIGNAL_UNREADABLE_LINE", f"{where}:{number}",
                                               f"skipped an unreadable line: {exc.issues[0].message}"))

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
        event_id = ID_GETTERS[query.kind]
        for day in days:
            envelopes = self.read_partition(query.kind, day, query).envelopes
            ids = list(map(event_id, envelopes))
            if len(set(ids)) < len(ids):  # first seen wins, before sorting by time
                first = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1)))
                envelopes = list(map(envelopes.__getitem__, sorted(first.values())))
            if query.newest_first:
                envelopes.sort(key=_NEWEST_KEYS[query.kind], reverse=True)
            else:
                envelopes.sort(key=_TIMESTAMP)  # stable: ties keep first-written order
            yield from envelopes

    # -- documents -----------------------------------------------------------------------------------
    def _document_path(self, folder: str, name: str) -> Path:
        return (self.checkpoints_dir if folder == "checkpoints" else self.snapshots_dir) / f"{name}.json"

    def _put_document(self, folder: str, name: str, document: dict[str, Any]) -> str:
        path = self._document_path(folder, name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if self.durable:
            fsync_dir(path.parent)
        return str(path)

    def _get_document(self, folder: str, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._document_path(folder, name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _list_documents(self, folder: str, prefix: str) -> list[str]:
        base = self.checkpoints_dir if folder == "checkpoints" else self.snapshots_dir
        return sorted(p.stem for p in base.glob("*.json") if p.stem.startswith(prefix))

