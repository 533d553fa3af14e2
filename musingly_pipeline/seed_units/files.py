"""The files of a seed data folder: canonical encoding, safe names, atomic writes.

The canonical form of a seed file is what the exporter writes: keys in the document's order (free-
form objects and packages in the order they were imported), two-space indent, UTF-8 without
escaping non-ASCII characters, a final newline.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

USERS_FILE = "users.json"
UNITS_DIR = "units"
MAX_NAME_LENGTH = 80


def encode(document: Any) -> bytes:
    """The canonical bytes of a seed document."""
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def unit_paths(directory: Path) -> list[Path]:
    """The unit files of a seed folder (``units/*.json``), in name order."""
    units = directory / UNITS_DIR
    return sorted(p for p in units.glob("*.json") if p.is_file()) if units.is_dir() else []


def safe_name(title: str) -> str:
    """A file stem from a title: lowercase ASCII letters, digits and hyphens; never empty or ``..``."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    stem = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:MAX_NAME_LENGTH].strip("-")
    return stem or "unit"


def unit_file_names(units: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{unit id: file name}`` from ``(id, title)`` pairs, with no two names equal.

    The first unit of a title (in the order given) gets ``{title}.json``; others with the same
    safe title get the safe id appended (and a counter if even that collides).
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for unit_id, title in units:
        stem = safe_name(title)
        candidate = stem
        if candidate in taken:
            candidate = f"{stem}-{safe_name(unit_id)}"
        counter = 2
        base = candidate
        while candidate in taken:
            candidate = f"{base}-{counter}"
            counter += 1
        taken.add(candidate)
        names[unit_id] = candidate + ".json"
    return names


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would.
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(handle, 0o666 & ~mask)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
