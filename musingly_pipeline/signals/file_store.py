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
the ids are hashed and looked up in the index with numpy (in-batch repeats from one stable argsort
of the hashes); the new envelopes are serialised by one orjson call for the whole list
(``envelope_json``: pydantic's bytes exactly, about twice as fast; pydantic itself for any envelope
of an unusual shape), in batch order (the order their objects sit in memory: reading them in day
order costs a cache miss per object), and the lines are regrouped by day as bytes; the index entries
are appended (one write), then worker threads append each day's lines (one write per file) and fsync
them all at once, while this thread builds the results; the call returns when every fsync has. The
cyclic GC is paused meanwhile. What remains per envelope is the serialisation (about 1 µs, plus the
first read of each envelope's objects, which are rarely still in the CPU cache), the id's hash and
lookup, the result tuple, and the kernel's copy and fsync of the bytes.

How a day is read (``read_partition``): the file's lines are validated as bytes, one pydantic call
each, with the GC paused; the careful line-by-line read (lenient UTF-8, an issue per skipped line)
runs only if one fails. Memory is most of a read's cost on a virtual machine, where a page the
process has not used yet costs about 10 µs: each line is released once validated, and each
envelope's ``__pydantic_fields_set__`` (and its entity refs'), when it holds every field, is swapped
for one shared immutable set (``_AllFields``) as the envelope is made, so the next one reuses the
memory (those sets were more than half of a read-back signal's 2.6 KB).
"""

from __future__ import annotations

import fcntl
import functools
import json
import operator
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from itertools import compress
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from musingly_core.gcpause import gc_paused
from musingly_core.report import error

from musingly_pipeline.signals.envelope_json import dump_envelopes
from musingly_pipeline.signals.envelopes import (
    ENVELOPE_TYPES,
    ID_FIELDS,
    ID_GETTERS,
    STORED_LINE_VALIDATORS,
    EntityRef,
    Envelope,
    EventKind,
    InvalidEnvelope,
    parse_stored_line,
)
from musingly_pipeline.signals.id_index import ENTRY, IdIndex, id_hashes, partition_day
from musingly_pipeline.signals.query import EventQuery
from musingly_pipeline.signals.store import DuplicateEventError, DuplicatePolicy, EventStore, PartitionRead, WriteResult

KIND_DIRS = {"signal": "signals", "emission": "emissions"}
_TIMESTAMP = operator.attrgetter("timestamp")
_NEWEST_KEYS = {kind: operator.attrgetter("timestamp", field) for kind, field in ID_FIELDS.items()}
_LAST = [b""]
_LIST_ADAPTERS = {kind: TypeAdapter(list[model]) for kind, model in ENVELOPE_TYPES.items()}
_LIST_MARKERS = {kind: f',{{"{next(iter(model.model_fields))}":'.encode() for kind, model in ENVELOPE_TYPES.items()}
_ORDINAL = datetime.toordinal  # of the UTC date: envelopes hold UTC timestamps


_result = functools.partial(tuple.__new__, WriteResult)  # _result(values): WriteResult(*values), in C


def _serialize(kind: EventKind, envelopes: list[Envelope]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Every envelope's JSON: ``(data, starts, sizes)``.

    ``data[starts[k]:starts[k] + sizes[k]]`` is pydantic's ``to_json`` of envelope ``k`` (its line,
    without the newline). The envelopes are of the kind's own class (``parse_envelope`` sees to that). The
    whole list is serialised in one call (``[line,line,...]``, by orjson if :func:`dump_envelopes` can
    write the exact same bytes, else by pydantic; no per-call overhead) and cut at the
    commas between envelopes: each line starts with the first field (``{"entity_refs":`` for a
    signal), so ``,{"entity_refs":`` occurs at each of the n-1 boundaries; if it occurs exactly n-1
    times, it occurs nowhere else (an occurrence inside an envelope cannot overlap a boundary: an
    envelope ends with ``}``). Otherwise (a payload holding a nested object with that first key)
    each envelope is serialised on its own.
    """
    model = ENVELOPE_TYPES[kind]
    n = len(envelopes)
    marker = _LIST_MARKERS[kind]
    dumped = dump_envelopes(kind, envelopes)  # orjson, the same bytes; None: an unusual shape
    if dumped is None:
        dumped = _LIST_ADAPTERS[kind].dump_json(envelopes)
    raw = np.frombuffer(dumped, np.uint8)
    braces = np.flatnonzero(raw == marker[1])  # every "{" (never the first byte: that is "[")
    candidates = braces[raw[braces - 1] == marker[0]] - 1  # every ",{"
    candidates = candidates[candidates <= len(raw) - len(marker)]
    windows = np.lib.stride_tricks.sliding_window_view(raw, len(marker))[candidates]
    bounds = candidates[(windows == np.frombuffer(marker, np.uint8)).all(axis=1)]
    if len(bounds) == n - 1:
        starts = np.r_[1, bounds + 1]
        return dumped, starts, np.r_[bounds, len(dumped) - 1] - starts  # up to each "," and the final "]"
    lines = list(map(model.__pydantic_serializer__.to_json, envelopes))
    sizes = np.fromiter(map(len, lines), np.int64, n)
    return b"".join(lines), np.cumsum(sizes) - sizes, sizes


class _AllFields(frozenset):
    """One model's every field name: the ``__pydantic_fields_set__`` shared by the envelopes a read makes.

    pydantic gives each instance its own set (728 bytes for 5 to 10 names, more than half of a
    stored signal's memory). An envelope read back has every field set, so one immutable set
    serves them all; ``copy`` (``model_copy``) gives a fresh mutable set, as pydantic does.
    """

    __slots__ = ()

    def __copy__(self) -> set[str]:
        return set(self)


_ALL_FIELDS = {model: _AllFields(model.model_fields) for model in (*ENVELOPE_TYPES.values(), EntityRef)}
_FIELDS_SET = "__pydantic_fields_set__"


def _validate_lines(kind: EventKind, lines: list[bytes]) -> list[Envelope]:
    """Each line's envelope, validated by pydantic, taking the lines out of ``lines`` (emptied).

    Memory is time here (a page the process has not used yet costs about 10 µs on a virtual
    machine): each line is released once validated, and each full fields set is swapped for the
    shared one as its envelope is made, so the next envelope reuses that memory.
    """
    validate, setattr_, get_set = STORED_LINE_VALIDATORS[kind], object.__setattr__, operator.attrgetter(_FIELDS_SET)
    full, full_ref = _ALL_FIELDS[ENVELOPE_TYPES[kind]], _ALL_FIELDS[EntityRef]
    size, ref_size = len(full), len(full_ref)
    out = []
    append = out.append
    lines.reverse()
    take = lines.pop
    for _ in range(len(lines)):
        e = validate(take())
        if len(get_set(e)) == size:
            setattr_(e, _FIELDS_SET, full)
        for ref in e.entity_refs:
            if len(get_set(ref)) == ref_size:
                setattr_(ref, _FIELDS_SET, full_ref)
        append(e)
    return out


def _first_positions(event_ids: list[str], hashes: np.ndarray, by_hash: np.ndarray) -> np.ndarray:
    """For each position, the position where its id first occurs in the batch.

    ``by_hash`` is the stable argsort of ``hashes``: the first position of each run of equal hashes
    is that hash's first occurrence; ids with equal hashes are then compared.
    """
    ordered = hashes[by_hash]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    firsts = np.empty(len(hashes), np.intp)
    firsts[by_hash] = by_hash[starts][np.cumsum(starts) - 1]
    later = np.flatnonzero(firsts != np.arange(len(firsts)))
    if any(event_ids[i] != event_ids[j] for i, j in zip(later.tolist(), firsts[later].tolist())):
        # two different ids with one hash in this batch: compare the ids themselves
        by_id = dict(zip(reversed(event_ids), range(len(event_ids) - 1, -1, -1)))
        firsts = np.fromiter(map(by_id.__getitem__, event_ids), np.intp, len(event_ids))
    return firsts


class UnreadableLineWarning(UserWarning):
    """A partition line that could not be read (torn by a crash, or not an envelope) was skipped."""


class ForeignWriterError(RuntimeError):
    """A day file kept changing while a batch was written: a process that does not take the store's
    lock appends to it. The batch is not acknowledged; what was written intact is found next time."""


class _IndexCaughtUp(Exception):
    """Lines another writer appended may hold ids of the batch (nothing written yet): look up again."""


class _LinesMoved(Exception):
    """Another writer appended while the batch was written, so some lines are not at the offsets
    their entries say (the first may even be glued onto a torn line): the written ids are not
    acknowledged until a rebuilt index finds them."""


# Attempts at a batch while another writer appends (each is a lookup and maybe a write).
_ATTEMPTS = 10


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
            hashes = id_hashes(event_ids)
            by_hash = np.argsort(hashes, kind="stable")
            firsts = _first_positions(event_ids, hashes, by_hash)  # where each id first occurs in the batch
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
                except _LinesMoved:  # written, but not where their entries say: see _FileWrites.finish
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
            locations = np.array([self._location(kind, day) for day in days] or [""], object)
            day_objects = np.empty(max(len(days), 1), object)
            day_objects[:len(days)] = days
            results = list(map(_result, zip(event_ids, day_objects[which].tolist(), written.tolist(),
                                            locations[which].tolist())))
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
        data, starts, sizes = _serialize(kind, picked)  # before touching a file: an error here writes nothing
        ordinals = np.fromiter(map(_ORDINAL, map(_TIMESTAMP, picked)), np.int64, len(picked))
        order = np.argsort(ordinals, kind="stable")  # by day, batch order within a day
        new, ordinals, starts, sizes = new[order], ordinals[order], starts[order], sizes[order]
        lengths = sizes + 1  # on disk, with the newline
        firsts = np.r_[0, np.flatnonzero(np.diff(ordinals)) + 1]  # first line of each day
        counts = np.diff(np.r_[firsts, len(new)])
        before = np.cumsum(lengths) - lengths  # bytes of the lines before each one, all days
        within = before - np.repeat(before[firsts], counts)  # ... of the same day
        days = [date.fromordinal(o) for o in ordinals[firsts].tolist()]
        files = _FileWrites(self.durable, index)
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
        path = self._location(kind, day)
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
                result.envelopes = _validate_lines(kind, picked)
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


_IO_POOL: ThreadPoolExecutor | None = None


def _forget_pool_after_fork() -> None:
    global _IO_POOL
    _IO_POOL = None  # a forked child has none of the parent's threads: it starts its own pool


os.register_at_fork(after_in_child=_forget_pool_after_fork)


class _FileWrites:
    """Appends (and fsyncs) handed to worker threads, so the file system can commit them together
    while the caller goes on; :meth:`finish` waits for all of them and closes the descriptors."""

    def __init__(self, durable: bool, index: IdIndex):
        self.durable = durable
        self.index = index
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
        global _IO_POOL
        if self.inline:
            try:
                task(*args)
            except BaseException as exc:
                self.error = self.error or exc
            return
        if _IO_POOL is None:
            _IO_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="signal-io")
        self.futures.append(_IO_POOL.submit(task, *args))

    def write(self, fd: int, data: bytes) -> None:
        self._run(self._append, fd, data)

    def _append(self, fd: int, data: bytes) -> None:
        _write_all(fd, data)
        if self.durable:
            os.fsync(fd)
        # The lines' entries say they start at the size the file had when opened. Another writer
        # that does not take the lock may have appended meanwhile: then the bytes must be checked.
        start = self.days[fd][1]
        if os.fstat(fd).st_size == start + len(data) or os.pread(fd, len(data), start) == data:
            self.ends[fd] = start + len(data)

    def sync_directory(self, directory: Path) -> None:
        self._run(_fsync_dir, directory)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def finish(self) -> None:
        """Wait for every write; raise the first error (the index then forgets the ids it holds as
        written), or :class:`_LinesMoved` if some lines are not where their entries say."""
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
            raise _LinesMoved()
        for fd, end in self.ends.items():
            self.index.wrote(self.days[fd][0], end)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
