"""The canonical content hash of a bundle: what makes two imports "the same content".

Only the entity lists count (not the version label, name or metadata), and each row is hashed
alone, serialised with every default filled in, so reordering a list or writing a default
explicitly does not change the hash.

Version 2 (``musingly-content-v2``, issue 19) is a multiset hash, so a merge can compute the
hash of its result from its base's and the rows it changes, without reading the rest:

* a row's hash is the sha256 of its canonical JSON (the contract model's compact serialisation),
  read as a 256-bit integer;
* a kind's *sum* is the sum of its rows' hashes modulo 2**256 (order-free: no sort);
* the content hash is the sha256 of the version tag and, per kind in import order, its name, row
  count and sum. The sums are stored with the snapshot (``snapshots.content_sums``).

A merge subtracts the hashes of the rows it replaces or removes and adds those of its new rows
(:meth:`ContentSums.apply`), which gives exactly what hashing the merged content would. An additive
multiset hash is not collision-resistant against someone who chooses rows on purpose (a generalised
birthday attack on sums); it recognises repeated imports of the same content, which is its job
here. Snapshots hashed with version 1 (the sorted serialisation of whole lists) keep their hash;
a v1 and a v2 hash never match, so content imported before the upgrade is loaded once more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from musingly_core.models import ENTITY_KINDS, ImportBundle

VERSION = b"musingly-content-v2"
_MODULUS = 1 << 256
_SERIALISERS = {kind: ImportBundle.model_fields[kind].annotation.__args__[0].__pydantic_serializer__.to_json
                for kind in ENTITY_KINDS}


def row_hash(kind: str, row) -> int:
    """The hash of one contract row of ``kind``, as an integer below 2**256."""
    return int.from_bytes(hashlib.sha256(_SERIALISERS[kind](row)).digest(), "big")


def rows_sum(kind: str, rows: Iterable) -> int:
    """The sum of ``rows``' hashes modulo 2**256 (``rows`` of one ``kind``)."""
    serialise, sha256, from_bytes = _SERIALISERS[kind], hashlib.sha256, int.from_bytes
    total = 0
    for row in rows:
        total += from_bytes(sha256(serialise(row)).digest(), "big")
    return total % _MODULUS


class ContentSums:
    """Per kind, (row count, sum of row hashes); :attr:`digest` is the content hash."""

    __slots__ = ("counts", "sums")

    def __init__(self, counts: Mapping[str, int], sums: Mapping[str, int]):
        self.counts = {kind: int(counts.get(kind, 0)) for kind in ENTITY_KINDS}
        self.sums = {kind: int(sums.get(kind, 0)) % _MODULUS for kind in ENTITY_KINDS}

    @classmethod
    def of(cls, bundle: ImportBundle) -> ContentSums:
        return cls({kind: len(getattr(bundle, kind)) for kind in ENTITY_KINDS},
                   {kind: rows_sum(kind, getattr(bundle, kind)) for kind in ENTITY_KINDS})

    @property
    def digest(self) -> ContentDigest:
        h = hashlib.sha256(VERSION)
        for kind in ENTITY_KINDS:
            h.update(f"\n{kind}\n{self.counts[kind]}\n".encode())
            h.update(self.sums[kind].to_bytes(32, "big"))
        return ContentDigest(h.hexdigest(), self)

    def apply(self, removed: Mapping[str, Iterable], added: Mapping[str, Iterable]) -> ContentSums:
        """These sums with ``removed``'s rows taken out and ``added``'s put in (kind -> rows)."""
        counts, sums = dict(self.counts), dict(self.sums)
        for kind, rows in removed.items():
            rows = list(rows)
            counts[kind] -= len(rows)
            sums[kind] -= rows_sum(kind, rows)
        for kind, rows in added.items():
            rows = list(rows)
            counts[kind] += len(rows)
            sums[kind] += rows_sum(kind, rows)
        return ContentSums(counts, sums)

    def to_json(self) -> dict:
        """What ``snapshots.content_sums`` stores: kind -> [count, sum as 64 hex digits]."""
        return {kind: [self.counts[kind], f"{self.sums[kind]:064x}"] for kind in ENTITY_KINDS}

    @classmethod
    def from_json(cls, data: Mapping) -> ContentSums:
        return cls({k: v[0] for k, v in data.items()}, {k: int(v[1], 16) for k, v in data.items()})

    def __eq__(self, other) -> bool:
        return isinstance(other, ContentSums) and (self.counts, self.sums) == (other.counts, other.sums)

    def __repr__(self) -> str:
        return f"ContentSums({self.digest})"


class ContentDigest(str):
    """A content hash (64 hex digits, compared as a ``str``) that keeps the sums it came from."""

    sums: ContentSums

    def __new__(cls, value: str, sums: ContentSums):
        self = super().__new__(cls, value)
        self.sums = sums
        return self


def content_hash(bundle: ImportBundle) -> ContentDigest:
    """The bundle's content hash (version 2, see the module's docstring): a ``str`` of 64 hex
    digits whose ``sums`` are what a merge onto this content starts from."""
    return ContentSums.of(bundle).digest
