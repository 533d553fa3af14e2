"""A compact, persistent index of the ids in one kind's partitions, so a write never re-reads history.

metaspn-store rebuilds its duplicate index by parsing every line of every partition on the first
write of a process (15 s for a million events). Here each kind directory holds ``.ids.idx``:

* a 16-byte header: the magic ``MSIDX002`` and a generation number (changed when rebuilt);
* then one 24-byte entry per stored line: a 64-bit hash of the id (``id_hashes``), the day
  (proleptic ordinal), the line's byte length and its byte offset in that day's ``.jsonl`` file.

Opening loads the entries with numpy (24 MB for a million events) and sorts the hashes; a batch's
lookup is one vectorised binary search, and a hash hit is confirmed by reading the one line it
points at and comparing the id, so a hash collision can never drop an event. Entries another writer
added since the load are kept in a second, smaller sorted array; the entries this store object
appended itself in a third, with their ids in a list, so a hit there is confirmed by comparing the id
kept in memory instead of reading the line. These are merged into the main arrays past
``merge_threshold`` entries (:data:`MERGE_THRESHOLD` unless told), so a batch never re-sorts the main
arrays.

The hash is computed with numpy for a whole batch (``id_hashes``: splitmix64 over the id's 8-byte
words); an index of the previous format (``MSIDX001``, BLAKE2b) is rebuilt on open.

The index is a cache of the partitions and is repaired from them: on open each partition's size is
compared with the end of its last indexed line, and that line is checked (read, its id hashed): if it
is intact, lines appended by another writer (metaspn-store, a crash before the index was written) are
indexed from that offset; anything else (a shorter file, a last line that is not where its entry
says, as when a writer that does not take the lock appended while a batch was written) rebuilds the
index from all partitions. While a store is open it knows how far each day file is indexed
(:meth:`IdIndex.catch_up` indexes what was appended since, the same way), and a write checks that
its lines landed where their entries say (see ``file_store``). Entries are appended *before* their
lines, so a crashed writer leaves at worst an entry pointing at missing bytes, which the
confirmation read rejects; a writer whose lines could not be written drops its in-memory index
(:meth:`IdIndex.forget`) and reloads it.

The index file is only written under the kind's exclusive lock (see ``file_store``); another process
picks up new entries by reading the file's tail when it next takes the lock.
"""

from __future__ import annotations

import json
import operator
import os
from datetime import date
from pathlib import Path

import numpy as np
from pydantic_core import from_json

from musingly_pipeline.signals.id_hashes import id_hashes
from musingly_pipeline.signals.sorted_entries import ENTRY, SortedEntries

MAGIC = b"MSIDX002"  # 002: the numpy hash (001, BLAKE2b, is rebuilt on open)
HEADER_SIZE = 16
# Entries added since the index was loaded are kept apart (see the module docstring); past this many
# they are merged into the main arrays.
MERGE_THRESHOLD = 200_000
_DAY_THEN_OFFSET = operator.itemgetter(0, 2)  # of a (day, len, off) candidate


def partition_day(path: Path) -> date | None:
    if path.suffix != ".jsonl":
        return None
    try:
        return date.fromisoformat(path.stem)
    except ValueError:
        return None


class IdIndex:
    """The ids of one directory of day partitions; every method expects the caller to hold the lock.

    ``hash_ids`` (ids -> uint64 array) and ``merge_threshold`` are the index's own settings (a test
    gives it a hash with collisions, or a small threshold); an index file is only valid with the hash
    that wrote it.
    """

    def __init__(self, directory: Path, id_field: str, *, hash_ids=id_hashes, merge_threshold: int = MERGE_THRESHOLD):
        self.directory = directory
        self.id_field = id_field
        self.hash_ids = hash_ids
        self.merge_threshold = merge_threshold
        self.path = directory / ".ids.idx"
        self._loaded = False
        self._generation = 0
        self._file_size = 0
        self._main = SortedEntries(np.empty(0, ENTRY))
        self._delta = SortedEntries(np.empty(0, ENTRY))  # entries other writers added since the load
        self._own = SortedEntries(np.empty(0, ENTRY), spare=True)  # entries this object appended since
        self._own_ids: list[str] = []  # their ids: entry k of _own is the line of _own_ids[k]
        self._fds: dict[int, int] = {}
        # day (ordinal) -> bytes of that day's file the index accounts for: bytes past it were
        # appended by another writer since (see catch_up)
        self._known_end: dict[int, int] = {}

    # -- loading and repair --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the in-memory index up to date with the file (first call: load and repair)."""
        if not self._loaded:
            self._load_and_repair()
            return
        try:
            with open(self.path, "rb") as handle:
                header = handle.read(HEADER_SIZE)
                size = os.fstat(handle.fileno()).st_size
                if len(header) < HEADER_SIZE or header[:8] != MAGIC or int.from_bytes(header[8:], "little") != self._generation:
                    self._load_and_repair()
                    return
                if size > self._file_size:
                    handle.seek(self._file_size)
                    tail = handle.read(size - self._file_size)
                    usable = len(tail) - len(tail) % ENTRY.itemsize
                    added = np.frombuffer(tail[:usable], ENTRY)
                    self._add_delta(added)
                    self._file_size += usable
                    for day, (end, _) in _last_entries(added).items():  # lines another store wrote
                        self._known_end[day] = max(self._known_end.get(day, 0), end)
        except FileNotFoundError:
            self._load_and_repair()

    def _load_and_repair(self) -> None:
        self.close()
        entries = np.empty(0, ENTRY)
        if self.path.exists():
            data = self.path.read_bytes()
            if len(data) >= HEADER_SIZE and data[:8] == MAGIC:
                generation = int.from_bytes(data[8:16], "little")
                usable = (len(data) - HEADER_SIZE) // ENTRY.itemsize * ENTRY.itemsize
                entries = np.frombuffer(data[HEADER_SIZE:HEADER_SIZE + usable], ENTRY)
                if HEADER_SIZE + usable != len(data):  # a torn entry from a crash: drop it
                    with open(self.path, "r+b") as handle:
                        handle.truncate(HEADER_SIZE + usable)
            else:
                self.rebuild()
                return
        else:
            self.rebuild()
            return
        last = _last_entries(entries)
        new_parts: list[np.ndarray] = []
        known: dict[int, int] = {}
        for path in sorted(self.directory.glob("*.jsonl")):
            day = partition_day(path)
            if day is None:
                continue
            size = path.stat().st_size
            end, entry = last.get(day.toordinal(), (0, None))
            if end == size:
                known[day.toordinal()] = size
                continue
            if end > size or not self._intact(path, entry):
                self.rebuild()
                return
            part, known[day.toordinal()] = self._scan(path, end)
            new_parts.append(part)
        new = np.concatenate(new_parts) if new_parts else np.empty(0, ENTRY)
        if len(new):
            with open(self.path, "ab") as handle:
                handle.write(new.tobytes())
        self._generation = generation
        self._file_size = self.path.stat().st_size
        self._build_sorted(np.concatenate([entries, new]) if len(new) else entries)
        self._known_end = known
        self._loaded = True

    def rebuild(self) -> None:
        """Index every partition again from its first byte, in a new index file (a new generation,
        so other processes reload it)."""
        self.close()
        generation = self._new_file()
        parts: list[np.ndarray] = []
        known: dict[int, int] = {}
        for path in sorted(self.directory.glob("*.jsonl")):
            day = partition_day(path)
            if day is not None:
                part, known[day.toordinal()] = self._scan(path, 0)
                parts.append(part)
        entries = np.concatenate(parts) if parts else np.empty(0, ENTRY)
        if len(entries):
            with open(self.path, "ab") as handle:
                handle.write(entries.tobytes())
        self._generation = generation
        self._file_size = self.path.stat().st_size
        self._build_sorted(entries)
        self._known_end = known
        self._loaded = True

    def catch_up(self, day: int, size: int) -> np.ndarray | None:
        """Account for day ``day``'s file up to ``size`` bytes (its size now, under the lock).

        Returns the id hashes of lines another writer appended since the index last accounted for
        the file, now indexed (an empty array when there are none), or ``None`` when the file no
        longer matches the index (its last indexed line is not where its entry says) and the index
        was rebuilt: then any id may have moved.
        """
        known = self._known_end.get(day, 0)
        if size <= known:  # (a crashed writer's entries may reach past the end: harmless)
            return _NO_HASHES
        path = self.directory / f"{date.fromordinal(day).isoformat()}.jsonl"
        if not self._intact(path, self._last_entry(day)):
            self.rebuild()
            return None
        new, self._known_end[day] = self._scan(path, known)
        if len(new):
            self.write_entries(new)
            self._add_delta(new)
        return new["h"]

    def wrote(self, day: int, end: int) -> None:
        """This store's lines of ``day`` are in its file, checked, up to byte ``end``."""
        self._known_end[day] = end

    def _last_entry(self, day: int) -> np.void | None:
        """The entry of ``day`` whose line ends last in its file."""
        last = None
        for part in (self._main, self._delta, self._own):
            entries = part.entries
            found = _last_entries(entries[entries["day"] == day]).get(day)
            if found is not None and (last is None or found[0] > last[0]):
                last = found
        return None if last is None else last[1]

    def _intact(self, path: Path, entry: np.void | None) -> bool:
        """Whether ``entry``'s line is where it says in ``path``: a whole line whose id has its hash."""
        if entry is None:
            return True
        off, length = int(entry["off"]), int(entry["len"])
        before = 1 if off else 0
        with open(path, "rb") as handle:
            handle.seek(off - before)
            data = handle.read(length + before)
        if len(data) != length + before or not data.endswith(b"\n") or (before and data[0] != 0x0A):
            return False
        event_id = _line_id(data[before:], self.id_field)
        return event_id is not None and int(self.hash_ids([event_id])[0]) == int(entry["h"])

    def _new_file(self) -> int:
        generation = int.from_bytes(os.urandom(8), "little")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(MAGIC + generation.to_bytes(8, "little"))
        os.replace(tmp, self.path)
        return generation

    def _scan(self, path: Path, start: int) -> tuple[np.ndarray, int]:
        """Index the complete lines of ``path`` from byte ``start`` (unreadable lines get no entry);
        (entries, the file's size as read)."""
        day = partition_day(path).toordinal()
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
        ids, lens, offs = [], [], []
        pos = 0
        id_field = self.id_field
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # a torn last line is not indexed; the writer terminates it before appending
            event_id = _line_id(data[pos:nl], id_field)
            if event_id:
                ids.append(event_id)
                lens.append(nl + 1 - pos)
                offs.append(start + pos)
            pos = nl + 1
        out = np.empty(len(ids), ENTRY)
        out["h"], out["day"], out["len"], out["off"] = self.hash_ids(ids), day, lens, offs
        return out, start + len(data)

    def _build_sorted(self, entries: np.ndarray) -> None:
        self._main = SortedEntries(entries)
        self._delta = SortedEntries(np.empty(0, ENTRY), spare=True)
        self._own, self._own_ids = SortedEntries(np.empty(0, ENTRY), spare=True), []

    def _add_delta(self, entries: np.ndarray) -> None:
        self._delta.add(entries)
        self._merge_if_large()

    def _merge_if_large(self) -> None:
        if self._delta.count + self._own.count > self.merge_threshold:
            self._main.add(np.concatenate([self._delta.entries, self._own.entries]))
            self._delta = SortedEntries(np.empty(0, ENTRY), spare=True)
            self._own, self._own_ids = SortedEntries(np.empty(0, ENTRY), spare=True), []

    def forget(self) -> None:
        """Drop the in-memory index (after a failed write); the next :meth:`refresh` reloads it."""
        self.close()
        self._loaded = False

    # -- lookups and appends -------------------------------------------------------------------------
    def lookup_many(self, event_ids: list[str], hashes: np.ndarray, by_hash: np.ndarray | None = None) -> dict[int, date]:
        """The days of a batch's ids already stored: ``{position: day}``; ``hashes`` are their hashes.

        An id this object appended itself since it loaded the index is found by its hash among the
        entries it appended and confirmed by the id it kept with the entry (no other copy can precede
        it: it was not stored when it was written). The others: one vectorised search of the sorted
        hashes (main, and entries other writers added since the load); a hash hit is confirmed by
        reading its line. If an id is stored more than once
        (metaspn-store can do that), the first occurrence (earliest day, then offset) is the one
        reported. ``by_hash``: the argsort of ``hashes``, if the caller has it.
        """
        found: dict[int, date] = {}
        positions = np.argsort(hashes) if by_hash is None else by_hash
        sorted_hashes = hashes[positions]
        if self._own.count:
            at, index = self._own.pairs(sorted_hashes, positions)
            own_ids, days = self._own_ids, self._own.entries["day"][index].tolist()
            for i, k, day in zip(at.tolist(), index.tolist(), days):
                if event_ids[i] == own_ids[k]:
                    found[i] = date.fromordinal(day)
        candidates: dict[int, list[tuple[int, int, int]]] = {}
        for part in (self._main, self._delta):
            part.candidates(sorted_hashes, positions, candidates)
        read_id = self._read_id
        for i, entries in candidates.items():
            if i in found:
                continue
            event_id = event_ids[i]
            if len(entries) > 1:
                entries.sort(key=_DAY_THEN_OFFSET)
            for day, length, off in entries:
                if read_id(day, off, length) == event_id:
                    found[i] = date.fromordinal(day)
                    break
        return found

    def _read_id(self, day: int, off: int, length: int) -> str | None:
        fd = self._fds.get(day)
        if fd is None:
            try:
                fd = os.open(self.directory / f"{date.fromordinal(day).isoformat()}.jsonl", os.O_RDONLY)
            except FileNotFoundError:
                return None
            self._fds[day] = fd
        return _line_id(os.pread(fd, length, off), self.id_field)

    def write_entries(self, entries: np.ndarray) -> None:
        """Append entries to the file, with one write: before their lines are written."""
        if not len(entries):
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = memoryview(entries.tobytes())
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        self._file_size += entries.nbytes

    def add_entries(self, entries: np.ndarray, ids: list[str]) -> None:
        """Add entries just written by :meth:`write_entries`, and their ids, to the in-memory index.

        If appending their lines then fails, call :meth:`forget`: the ids must not be taken as stored.
        """
        if len(entries):
            self._own.add(entries)
            self._own_ids.extend(ids)
            self._merge_if_large()

    @property
    def size(self) -> int:
        return self._main.count + self._delta.count + self._own.count

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def _line_id(line: bytes, id_field: str) -> str | None:
    """The id of one stored line, or None if it is not a JSON object with a string id."""
    try:
        record = from_json(line, cache_strings=False)  # pydantic-core's parser: 2-3x json.loads
    except ValueError:
        try:
            record = json.loads(line)  # whatever pydantic-core refuses, e.g. a lone surrogate escape
        except ValueError:
            return None
    value = record.get(id_field) if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


_NO_HASHES = np.empty(0, "<u8")


def _last_entries(entries: np.ndarray) -> dict[int, tuple[int, np.void]]:
    """Per day, (end, entry) of the entry whose line ends last."""
    if not len(entries):
        return {}
    ends = entries["off"] + entries["len"].astype("<u8")
    order = np.lexsort((ends, entries["day"]))
    days = entries["day"][order]
    lasts = order[np.r_[np.flatnonzero(days[1:] != days[:-1]), len(days) - 1]]
    return {int(entries["day"][k]): (int(ends[k]), entries[k]) for k in lasts.tolist()}
