"""Immutable copies of incoming bundle files, named by content hash.

The pipeline reads a dropped file once, copies it to ``staging/<sha256>.json`` while hashing it,
and works only on that copy from then on: a file rewritten in the inbox mid-run cannot change what
was validated and imported.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from musingly_core.models import ENTITY_KINDS

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StagedBundle:
    """One staged bundle file: where it came from, the immutable copy, its size and hash."""

    source: str
    path: str
    sha256: str
    size: int


def stage_bundle(source: Path, staging: Path) -> StagedBundle:
    """Copy ``source`` to ``staging/<sha256>.json`` (atomically, once per content) and describe it."""
    staging.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = staging / f".{os.getpid()}-{source.name}.part"
    size = 0
    with source.open("rb") as src, tmp.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    sha = digest.hexdigest()
    final = staging / f"{sha}.json"
    if final.exists():
        tmp.unlink()
    else:
        tmp.replace(final)
    return StagedBundle(source=str(source), path=str(final), sha256=sha, size=size)


def entity_counts(path: str | Path) -> dict[str, int] | None:
    """Entities per type as the file states them, before validation; ``None`` if it is not a JSON object."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {kind: len(data[kind]) if isinstance(data.get(kind), list) else 0 for kind in ENTITY_KINDS}
