"""The entries of an id index, sorted by their id hash: what :mod:`id_index` searches.

An entry (24 bytes, :data:`ENTRY`) is one stored line: the 64-bit hash of its id, its day (proleptic
ordinal), its byte length and its byte offset in that day's file.
"""

from __future__ import annotations

import numpy as np

ENTRY = np.dtype([("h", "<u8"), ("day", "<i4"), ("len", "<u4"), ("off", "<u8")])


class SortedEntries:
    """Index entries with their hashes sorted; new entries are merged in, not re-sorted.

    Sorting only the 8-byte hashes and keeping the permutation is several times cheaper than
    reordering the 24-byte entries; an entry is fetched through the permutation on a hit.
    """

    __slots__ = ("_buffer", "count", "hashes", "order", "spare")

    def __init__(self, entries: np.ndarray, *, spare: bool = False):
        self._buffer = entries
        self.count = len(entries)
        self.order = np.argsort(entries["h"])
        self.hashes = entries["h"][self.order]
        self.spare = spare  # grow the entries with room to spare (frequent small additions)

    @property
    def entries(self) -> np.ndarray:
        return self._buffer[:self.count]

    def add(self, new: np.ndarray) -> None:
        new_order = np.argsort(new["h"])
        new_hashes = new["h"][new_order]
        where = np.searchsorted(self.hashes, new_hashes)
        self.hashes = np.insert(self.hashes, where, new_hashes)
        self.order = np.insert(self.order, where, new_order + self.count)
        needed = self.count + len(new)
        if needed > len(self._buffer):
            grown = np.empty(max(needed, 2 * len(self._buffer), 4096) if self.spare else needed, ENTRY)
            grown[:self.count] = self._buffer[:self.count]
            self._buffer = grown
        self._buffer[self.count:needed] = new
        self.count = needed

    def pairs(self, hashes: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(at, index)``: entry ``index[j]`` has the hash of position ``at[j]``; every such pair.

        ``hashes`` are the positions' hashes, sorted (``hashes[k]`` is the hash of ``positions[k]``):
        the binary searches then walk the array in order (several times faster than random probes
        into a million hashes).
        """
        size = len(self.hashes)
        if not size or not len(hashes):
            return np.empty(0, np.intp), np.empty(0, np.intp)
        low = np.searchsorted(self.hashes, hashes)
        hit = np.flatnonzero(self.hashes[np.minimum(low, size - 1)] == hashes)
        low = low[hit]
        following = low + 1
        single = (following >= size) | (self.hashes[np.minimum(following, size - 1)] != hashes[hit])
        at, index = [positions[hit[single]]], [self.order[low[single]]]  # the usual case: one entry per hash
        for k in hit[~single].tolist():
            lo, hi = np.searchsorted(self.hashes, hashes[k]), np.searchsorted(self.hashes, hashes[k], "right")
            at.append(np.full(hi - lo, positions[k], np.intp))
            index.append(self.order[lo:hi])
        return np.concatenate(at).astype(np.intp, copy=False), np.concatenate(index).astype(np.intp, copy=False)

    def candidates(self, hashes: np.ndarray, positions: np.ndarray, out: dict[int, list[tuple[int, int, int]]]) -> None:
        """Add ``(day, len, off)`` of every entry with the hash of position ``positions[k]`` (``hashes[k]``,
        sorted) to ``out[positions[k]]``."""
        at, index = self.pairs(hashes, positions)
        if not len(at):
            return
        rows = self.entries[index]
        for i, day, length, off in zip(at.tolist(), rows["day"].tolist(), rows["len"].tolist(), rows["off"].tolist()):
            out.setdefault(i, []).append((day, length, off))
