"""Which files in an inbox folder are ready to import: new or changed, finished, and safe.

Domain logic of the inbox sensor, free of Dagster so it is tested directly. The inbox holds full
bundles (``inbox/NAME.json``) and partial ones to merge onto the current snapshot
(``inbox/incremental/NAME.json``, named ``incremental/NAME.json``). The state is a JSON-able dict
kept between scans (the sensor's cursor):

* ``seen``: file name -> [size, mtime_ns, sha256] of the version last handed out for import;
* ``pending``: file name -> [size, mtime_ns, first_seen] for a new or changed file: the size and
  modification time last observed, and when (Unix time) they were first observed.

A new or changed file is handed out once it has not changed for ``settle_seconds``: by its
modification time, and by what the scans saw (a file seen changing between scans counts from then).
A writer that pauses for less than that is not caught mid-file. With ``settle_seconds`` 0, a file
is handed out once two scans saw the same size and modification time. The safe way for a producer is to write ``NAME.json.part`` (ignored) and
rename it when complete. A ready file is read once: hashed, and handed to ``stage`` (the sensor
stores its bytes in PostgreSQL by hash), so what is imported is exactly what was read; a file that
changed while being read waits for the next scan. Unchanged files cost one ``stat``, so a scan
stays cheap with thousands of files; a touched file with the same content is not handed out again.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from musingly_pipeline.settings import INCREMENTAL_FOLDER
from musingly_pipeline.bundles.staging import PARTIAL_SUFFIXES, file_sha256

# Files that left the inbox stay in the state (so the same content dropped again under the same
# name is not imported again) until it holds this many names.
SEEN_LIMIT = 10_000

Stage = Callable[[Path, str], str]
"""``stage(path, sha256)`` stores the file's bytes and returns the sha256 of what it stored."""


@dataclass(frozen=True)
class ReadyFile:
    name: str  # the partition key: `x.json`, or `incremental/x.json`
    sha256: str
    size: int
    mtime_ns: int

    @property
    def incremental(self) -> bool:
        return is_incremental(self.name)


def is_incremental(name: str) -> bool:
    """Whether an inbox name (a partition key) is a partial bundle to merge."""
    return name.startswith(INCREMENTAL_FOLDER + "/")


@dataclass
class ScanResult:
    ready: list[ReadyFile] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)   # still being written, or not settled yet
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    state: dict = field(default_factory=dict)


def _stat_key(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns]


def _candidates(inbox: Path, root: Path, result: ScanResult):
    """(name, path, stat) of every importable file of the inbox and its incremental folder."""
    for folder, prefix in ((inbox, ""), (inbox / INCREMENTAL_FOLDER, INCREMENTAL_FOLDER + "/")):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        except OSError as exc:
            result.skipped[prefix or "."] = f"cannot list: {exc.strerror or exc}"
            continue
        for entry in entries:
            name = prefix + entry.name
            if entry.name.startswith("."):
                continue  # hidden files, editors' swap files
            if entry.name.endswith(PARTIAL_SUFFIXES) or not entry.name.endswith(".json"):
                continue
            try:
                if entry.is_symlink():
                    target = Path(entry.path).resolve(strict=True)
                    if not target.is_relative_to(root):
                        result.skipped[name] = f"link leads outside the inbox, to {target}"
                        continue
                stat = entry.stat()
                if not entry.is_file():
                    continue
            except (OSError, RuntimeError) as exc:  # a link loop, a broken link, a file gone meanwhile
                result.skipped[name] = _unreadable(exc)
                continue
            yield name, Path(entry.path), stat


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return "cannot follow the link: it is a link loop"
    if isinstance(exc, FileNotFoundError):
        return "cannot read: a broken link, or the file went away"
    return f"cannot read: {getattr(exc, 'strerror', None) or exc}"


def scan_inbox(inbox: Path, state: dict | None, *, settle_seconds: float = 0.0, now: float | None = None,
               stage: Stage | None = None) -> ScanResult:
    """Compare the inbox with ``state`` and return what is ready, waiting or skipped, and the new state."""
    state = state or {}
    now = time.time() if now is None else now
    seen: dict[str, list] = dict(state.get("seen", {}))
    old_pending: dict[str, list] = state.get("pending", {})
    pending: dict[str, list] = {}
    result = ScanResult()
    if not inbox.is_dir():
        result.state = {"seen": seen, "pending": {}}
        return result
    root = inbox.resolve()
    present: set[str] = set()
    for name, path, stat in _candidates(inbox, root, result):
        present.add(name)
        observed = _stat_key(stat)
        known = seen.get(name)
        if known is not None and known[:2] == observed:
            continue  # unchanged since it was handed out
        before = old_pending.get(name)
        modified = observed[1] / 1e9
        if before is None or before[:2] != observed:
            # New, or changed since the last scan. Its modification time may show it is already
            # quiet for long enough (copied in earlier, or renamed into place after writing).
            quiet_since = modified if before is None else now
            if not settle_seconds or now - quiet_since < settle_seconds:
                pending[name] = [*observed, now]  # look again next scan
                result.waiting.append(name)
                continue
        elif now - min(before[2], modified) < settle_seconds:
            pending[name] = before  # unchanged since it was first seen, but not for long enough yet
            result.waiting.append(name)
            continue
        try:
            sha, _ = file_sha256(path)
            new_content = known is None or known[2] != sha
            staged = stage(path, sha) if new_content and stage is not None else sha
            after = _stat_key(path.stat())
        except OSError as exc:
            result.skipped[name] = f"cannot read: {exc.strerror or exc}"
            continue
        if after != observed or staged != sha:
            pending[name] = [*after, now]  # written to while being read: wait for it to settle again
            result.waiting.append(name)
            continue
        seen[name] = [*observed, sha]
        if new_content:
            result.ready.append(ReadyFile(name, sha, observed[0], observed[1]))
    if len(seen) > SEEN_LIMIT:  # keep the cursor bounded: forget files that left the inbox
        seen = {k: v for k, v in seen.items() if k in present}
    result.state = {"seen": seen, "pending": pending}
    return result
