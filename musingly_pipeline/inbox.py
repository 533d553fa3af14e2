"""Which files in an inbox folder are ready to import: new or changed, finished, and safe.

Domain logic of the inbox sensor, free of Dagster so it is tested directly. The state is a JSON-able
dict kept between scans (the sensor's cursor):

* ``seen``: file name -> [size, mtime_ns, sha256] of the version last handed out for import;
* ``pending``: file name -> [size, mtime_ns] observed on the previous scan for a file that changed.

A changed file is handed out only once two scans see the same size and modification time (a file
still being written is left for a later scan). Unchanged files cost one ``stat`` and no read, so a
scan stays cheap with thousands of files. A content hash decides whether a touched file really
changed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass(frozen=True)
class ReadyFile:
    name: str
    sha256: str
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    ready: list[ReadyFile] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)   # still being written
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    state: dict = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def scan_inbox(inbox: Path, state: dict | None) -> ScanResult:
    """Compare the inbox with ``state`` and return what is ready, waiting or skipped, and the new state."""
    state = state or {}
    seen: dict[str, list] = dict(state.get("seen", {}))
    pending: dict[str, list] = {}
    old_pending: dict[str, list] = state.get("pending", {})
    result = ScanResult()
    if not inbox.is_dir():
        result.state = {"seen": seen, "pending": {}}
        return result
    root = inbox.resolve()
    with os.scandir(inbox) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue  # hidden files, editors' swap files
            if name.endswith(PARTIAL_SUFFIXES) or not name.endswith(".json"):
                continue
            if entry.is_symlink():
                try:
                    target = Path(entry.path).resolve()
                except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
                    result.skipped[name] = f"cannot follow the link: {getattr(exc, 'strerror', None) or exc}"
                    continue
                if not target.is_relative_to(root):
                    result.skipped[name] = f"link leads outside the inbox, to {target}"
                    continue
            try:
                stat = entry.stat()
            except OSError as exc:
                result.skipped[name] = f"cannot stat: {exc.strerror}"
                continue
            if not entry.is_file():
                continue
            size, mtime = stat.st_size, stat.st_mtime_ns
            known = seen.get(name)
            if known is not None and known[0] == size and known[1] == mtime:
                continue  # unchanged since it was handed out
            if old_pending.get(name) != [size, mtime]:
                pending[name] = [size, mtime]  # new or still changing: look again next scan
                result.waiting.append(name)
                continue
            try:
                sha = _sha256(Path(entry.path))
            except OSError as exc:
                result.skipped[name] = f"cannot read: {exc.strerror}"
                continue
            seen[name] = [size, mtime, sha]
            if known is not None and known[2] == sha:
                continue  # touched, same content
            result.ready.append(ReadyFile(name, sha, size, mtime))
    result.state = {"seen": seen, "pending": pending}
    return result
