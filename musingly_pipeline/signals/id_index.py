"""A compact, persistent index of the ids in one kind's partitions, so a write never re-reads history.

metaspn-store rebuilds its duplicate index by parsing every line of every partition on the first
write of a process (15 s for a million events). Here each kind directory holds ``.ids.idx``:

* a 16-byte header: the magic ``MSIDX001`` and a generation number (changed when rebuilt);
* then one 24-byte entry per stored line: the 64-bit BLAKE2b hash of the id, the day (proleptic
  ordinal), the line's byte length and its byte offset in that day's ``.jsonl`` file.

Opening loads the entries with numpy (24 MB for a million events) and sorts the hashes; a lookup is a
binary search, and a hash hit is confirmed by reading the one line it points at and comparing the
id, so a hash collision can never drop an event. The index is a cache of the partitions and is
repaired from them: on open each partition's size is compared with the end of its last indexed line;
lines appended by another writer (metaspn-store, a crash before the index was written) are indexed
from that offset, and anything inconsistent rebuilds the index from all partitions. Entries are
appended *before* their lines, so a crashed writer leaves at worst an entry pointing at missing bytes,
which the confirmation read rejects.

The index file is only written under the kind's exclusive lock (see ``file_store``); another process
picks up new entries by reading the file's tail when it next takes the lock.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path

import numpy as np

MAGIC = b"MSIDX001"
HEADER_SIZE = 16
ENTRY = np.dtype([("h", "<u8"), ("day", "<i4"), ("len", "<u4"), ("off", "<u8")])
# Entries appended since the sorted arrays were built live in a dict; past this many they are merged.
MERGE_THRESHOLD = 200_000


def id_hash(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode("utf-8"), digest_size=8).digest(), "little")


def id_hashes(event_ids: list[str]) -> np.ndarray:
    """The hashes of many ids at once, as a uint64 array."""
    blake = hashlib.blake2b
    digests = b"".join([blake(i.encode("utf-8"), digest_size=8).digest() for i in event_ids])
    return np.frombuffer(digests, "<u8")


def partition_day(path: Path) -> date | None:
    if path.suffix != ".jsonl":
        return None
    try:
        return date.fromisoformat(path.stem)
    except ValueError:
        return None


class IdIndex:
    """The ids of one directory of day partitions; every method expects the caller to hold the lock."""

    def __init__(self, directory: Path, id_field: str):
        self.directory = directory
        self.id_field = id_field
        self.path = directory / ".ids.idx"
        self._loaded = False
        self._generation = 0
        self._file_size = 0
        self._sorted_h = np.empty(0, "<u8")
        self._order = np.empty(0, "<i8")
        self._sorted = np.empty(0, ENTRY)
        self._delta: dict[int, list[tuple[int, int, int]]] = {}
        self._delta_count = 0
        self._fds: dict[int, int] = {}

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
                    self._add_delta(np.frombuffer(tail[:usable], ENTRY))
                    self._file_size += usable
        except FileNotFoundError:
            self._load_and_repair()

    def _load_and_repair(self) -> None:
        self.close()
        entries = np.empty(0, ENTRY)
        generation = None
        if self.path.exists():
            data = self.path.read_bytes()
            if len(data) >= HEADER_SIZE and data[:8] == MAGIC:
                generation = int.from_bytes(data[8:16], "little")
                usable = (len(data) - HEADER_SIZE) // ENTRY.itemsize * ENTRY.itemsize
                entries = np.frombuffer(data[HEADER_SIZE:HEADER_SIZE + usable], ENTRY)
                if HEADER_SIZE + usable != len(data):  # a torn entry from a crash: drop it
                    with open(self.path, "r+b") as handle:
                        handle.truncate(HEADER_SIZE + usable)
        if generation is None:
            entries, generation = np.empty(0, ENTRY), self._new_file()
        covered = self._covered(entries)
        new_parts: list[np.ndarray] = []
        for path in sorted(self.directory.glob("*.jsonl")):
            day = partition_day(path)
            if day is None:
                continue
            size = path.stat().st_size
            end = covered.get(day.toordinal(), 0)
            if end == size:
                continue
            if end > size or (end and _byte_at(path, end - 1) != b"\n"):
                entries, generation, new_parts = np.empty(0, ENTRY), self._new_file(), []
                for p in sorted(self.directory.glob("*.jsonl")):
                    if partition_day(p) is not None:
                        new_parts.append(self._scan(p, 0))
                break
            new_parts.append(self._scan(path, end))
        new = np.concatenate(new_parts) if new_parts else np.empty(0, ENTRY)
        if len(new):
            with open(self.path, "ab") as handle:
                handle.write(new.tobytes())
        self._generation = generation
        self._file_size = self.path.stat().st_size
        self._build_sorted(np.concatenate([entries, new]) if len(new) else entries)
        self._loaded = True

    def _new_file(self) -> int:
        generation = int.from_bytes(os.urandom(8), "little")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(MAGIC + generation.to_bytes(8, "little"))
        os.replace(tmp, self.path)
        return generation

    @staticmethod
    def _covered(entries: np.ndarray) -> dict[int, int]:
        if not len(entries):
            return {}
        ends = entries["off"] + entries["len"].astype("<u8")
        days = entries["day"]
        first = int(days.min())
        out = np.zeros(int(days.max()) - first + 1, "<u8")
        np.maximum.at(out, days - first, ends)
        return {first + i: int(end) for i, end in enumerate(out.tolist()) if end}

    def _scan(self, path: Path, start: int) -> np.ndarray:
        """Index the complete lines of ``path`` from byte ``start`` (unreadable lines get no entry)."""
        day = partition_day(path).toordinal()
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
        hashes, lens, offs = [], [], []
        pos = 0
        id_field = self.id_field
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # a torn last line is not indexed; the writer terminates it before appending
            line = data[pos:nl]
            try:
                event_id = json.loads(line).get(id_field)
            except (ValueError, AttributeError):
                event_id = None
            if isinstance(event_id, str) and event_id:
                hashes.append(id_hash(event_id))
                lens.append(nl + 1 - pos)
                offs.append(start + pos)
            pos = nl + 1
        out = np.empty(len(hashes), ENTRY)
        out["h"], out["day"], out["len"], out["off"] = hashes, day, lens, offs
        return out

    def _build_sorted(self, entries: np.ndarray) -> None:
        # Sorting only the 8-byte hashes and keeping the permutation is several times cheaper than
        # reordering the 24-byte entries; an entry is fetched through the permutation on a hit.
        hashes = entries["h"]
        self._order = np.argsort(hashes)
        self._sorted_h = hashes[self._order]
        self._sorted = entries
        self._delta, self._delta_count = {}, 0

    def _add_delta(self, entries: np.ndarray) -> None:
        for h, day, length, off in entries.tolist():
            self._delta.setdefault(h, []).append((day, length, off))
        self._delta_count += len(entries)
        if self._delta_count > MERGE_THRESHOLD:
            merged = [(h, d, ln, o) for h, items in self._delta.items() for d, ln, o in items]
            self._build_sorted(np.concatenate([self._sorted, np.array(merged, ENTRY)]))

    # -- lookups and appends -------------------------------------------------------------------------
    def lookup(self, event_id: str, h: int | None = None) -> date | None:
        """The day that holds ``event_id``, confirmed by reading its line; None if it is not stored."""
        h = id_hash(event_id) if h is None else h
        candidates = list(self._delta.get(h, ()))
        i = int(np.searchsorted(self._sorted_h, np.uint64(h)))
        while i < len(self._sorted_h) and int(self._sorted_h[i]) == h:
            e = self._sorted[self._order[i]]
            candidates.append((int(e["day"]), int(e["len"]), int(e["off"])))
            i += 1
        for day, length, off in candidates:
            if self._read_id(day, off, length) == event_id:
                return date.fromordinal(day)
        return None

    def lookup_many(self, event_ids: list[str], hashes: np.ndarray) -> list[date | None]:
        """:meth:`lookup` for a batch: one vectorised search of the sorted hashes, then only the hits."""
        found: list[date | None] = [None] * len(event_ids)
        candidates: set[int] = set()
        if len(self._sorted_h):
            pos = np.searchsorted(self._sorted_h, hashes)
            hit = self._sorted_h[np.minimum(pos, len(self._sorted_h) - 1)] == hashes
            candidates.update(np.nonzero(hit)[0].tolist())
        if self._delta:
            delta = self._delta
            candidates.update(i for i, h in enumerate(hashes.tolist()) if h in delta)
        for i in candidates:
            found[i] = self.lookup(event_ids[i], int(hashes[i]))
        return found

    def _read_id(self, day: int, off: int, length: int) -> str | None:
        fd = self._fds.get(day)
        if fd is None:
            try:
                fd = os.open(self.directory / f"{date.fromordinal(day).isoformat()}.jsonl", os.O_RDONLY)
            except FileNotFoundError:
                return None
            self._fds[day] = fd
        line = os.pread(fd, length, off)
        try:
            value = json.loads(line).get(self.id_field)
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def append(self, hashes: list[int], day: int, lengths: list[int], offsets: list[int]) -> None:
        """Record lines about to be appended to one day's partition."""
        array = np.empty(len(hashes), ENTRY)
        array["h"], array["day"], array["len"], array["off"] = hashes, day, lengths, offsets
        with open(self.path, "ab") as handle:
            handle.write(array.tobytes())
        self._file_size += array.nbytes
        self._add_delta(array)

    @property
    def size(self) -> int:
        return len(self._sorted) + self._delta_count

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def _byte_at(path: Path, offset: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(1)
