"""The files of a seed data folder: canonical encoding, safe names, atomic writes, reads kept inside.

The canonical form of a seed file is what the exporter writes: keys in the document's order (free-
form objects and packages in the order they were imported), two-space indent, UTF-8 without
escaping non-ASCII characters, a final newline.

A seed folder's files are read only from inside it: a link is followed when it leads to a regular
file inside the folder (``units/a.json -> ../shared/a.json``), and refused when it leads out
(``FILE_OUTSIDE_FOLDER``: nothing of the target is read), to nothing (``FILE_NOT_FOUND``) or to
anything but a regular file (``FILE_UNREADABLE``; a FIFO is not opened for reading, so it cannot
block). Export likewise refuses to write through a ``units`` link that leads out of its folder.
(A folder that an adversary changes while the command runs is not defended against.)
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musingly_core.report import Issue, error

from musingly_pipeline.seed_units.errors import FolderFileRefused

USERS_FILE = "users.json"
UNITS_DIR = "units"
MAX_NAME_LENGTH = 80


def encode(document: Any) -> bytes:
    """The canonical bytes of a seed document."""
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def unit_paths(directory: Path) -> list[Path]:
    """The entries named ``units/*.json`` of a seed folder, in name order (read them with
    :func:`read_inside`, which refuses those that are not regular files inside the folder)."""
    units = directory / UNITS_DIR
    return sorted(units.glob("*.json")) if units.is_dir() else []


@dataclass(frozen=True)
class FolderFile:
    """One seed file of a folder as the import reads it: its bytes, or the issue that refused it."""

    source: str  # relative to the folder: ``users.json``, ``units/a.json``
    path: Path
    data: bytes = b""
    refused: Issue | None = None


def users_file(directory: Path) -> FolderFile | None:
    """The folder's ``users.json`` (``None`` when there is no such entry), read from inside it."""
    path = directory / USERS_FILE
    return _read(directory, USERS_FILE, path) if os.path.lexists(path) else None


def unit_files(directory: Path) -> Iterator[FolderFile]:
    """The folder's ``units/*.json`` in name order, each read from inside it when it is reached (one
    unit's bytes in memory at a time)."""
    for path in unit_paths(directory):
        yield _read(directory, f"{UNITS_DIR}/{path.name}", path)


def _read(directory: Path, source: str, path: Path) -> FolderFile:
    try:
        return FolderFile(source, path, read_inside(directory, path))
    except FolderFileRefused as exc:
        return FolderFile(source, path, refused=exc.issue)


def read_inside(root: Path, path: Path) -> bytes:
    """The bytes of ``path``, a regular file inside the folder ``root`` once links are followed."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        raise FolderFileRefused(error("FILE_NOT_FOUND", "", f"{path} does not exist (or links to nothing)")) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise FolderFileRefused(error("FILE_UNREADABLE", "", f"cannot read {path}: {_reason(exc)}")) from None
    ensure_inside(root, path, target)
    try:
        # O_NOFOLLOW: the checked path is what is opened; O_NONBLOCK: a FIFO does not wait for a writer
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise FolderFileRefused(error("FILE_UNREADABLE", "", f"cannot read {path}: {_reason(exc)}")) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FolderFileRefused(error(
                "FILE_UNREADABLE", "", f"{path} is not a regular file; a seed file must be a plain JSON file"))
        return handle.read()


def ensure_inside(root: Path, path: Path, target: Path | None = None,
                  fix: str = "copy the file in instead of linking it") -> None:
    """Refuse ``path`` (resolved: ``target``) when, links followed, it is not inside ``root``."""
    target = target or path.resolve()
    if not target.is_relative_to(root.resolve()):
        raise FolderFileRefused(error(
            "FILE_OUTSIDE_FOLDER", "",
            f"{path} leads out of the folder {root} through a link; a seed folder's files must be inside "
            f"it: {fix}",
        ))


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


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
