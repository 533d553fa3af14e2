"""The same bytes imported again: found by the file's sha256, reused without parsing (issue 19, part 2).

A successful full import of a file records the file's sha256 on its log (``import_logs.source_sha256``)
with :func:`rules_version`; a merge never does (its file says nothing about the content it results
in). The snapshot holds the rules' warnings of its content as imported (``snapshots.warnings``). A
later full import of the same bytes under the same rules version finds that snapshot (:func:`find`,
while it is ready or current) and reuses it (:func:`reuse`) with what the parse would have given:
the version label and metadata from the earlier log, the counts and warnings from the snapshot.

What a recorded sha256 means: a log with (``source_sha256``, ``rules_version``) on snapshot S says
that these bytes, checked by these rules, give S's content and S's warnings. So a log records it
only if the file's warnings are the snapshot's (:func:`remember`): the warnings name places in the
file (``sparks[3]``), and another file with the same content, reused by content hash, may have them
elsewhere. Such a file is parsed each time, as before.

The rules' version (:func:`rules_version`). The outcome of reading and checking a file (refused or
not, which warnings) is decided by the contracts, the parse and the rules, all in ``musingly_core``,
and by pydantic, which parses. The version is made of ``musingly_core.__version__``, a digest of the
text of every module of the installed ``musingly_core`` (so a rule changed in the repository
without a release still changes it: forgetting a bump would let a file a new rule refuses, or
warns about, be reused unchecked), pydantic's version, and :data:`RULES_REVISION`, the pipeline's
own part. Any change to those files parses each file once more (its first import after the change
records the new version); nothing else is lost.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg
from musingly_core.bundle_file import MAX_BUNDLE_BYTES
from musingly_core.report import Issue, Severity

# Bump when the pipeline changes what the import of a file checks or reports in the pipeline itself
# (a rule of its own run on the parsed bundle, a warning it adds): files recorded before are then
# parsed again. Rules of musingly_core and the contracts change the version by themselves.
RULES_REVISION = 1


@cache
def rules_version() -> str:
    """The version of what decides a file's checks: musingly_core (its version and the digest of its
    modules' text), pydantic, and :data:`RULES_REVISION` (see the module docstring)."""
    import musingly_core
    import pydantic

    folder = Path(musingly_core.__file__).resolve().parent
    digest = hashlib.sha256()
    for module in sorted(folder.rglob("*.py")):
        digest.update(module.relative_to(folder).as_posix().encode() + b"\0" + module.read_bytes() + b"\0")
    return (f"musingly-core {musingly_core.__version__} {digest.hexdigest()[:16]}; "
            f"pydantic {pydantic.VERSION}; pipeline {RULES_REVISION}")


@dataclass(frozen=True)
class FileBytes:
    """A file's bytes as read once, and their sha256."""

    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def read_file(path: str | Path) -> FileBytes | None:
    """The file's bytes and their sha256 (hashlib lets go of the GIL while it hashes); ``None`` when
    the bundle reader would refuse the file before reading it (missing, a directory, over the size
    limit, unreadable): reading it the usual way then says why."""
    path = Path(path)
    try:
        if path.is_dir() or path.stat().st_size > MAX_BUNDLE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return FileBytes(data, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class Found:
    """A ready or current snapshot whose full import recorded the sha256, and what that import's
    parse gave: the log's version label and metadata, the snapshot's counts, hash and warnings."""

    snapshot_id: uuid.UUID
    status: str
    entity_counts: dict[str, int]
    content_hash: str
    warnings: tuple[Issue, ...]
    version_label: str
    source_system: str | None
    source_version: str | None


def find(conn: psycopg.Connection, sha256: str) -> Found | None:
    """The snapshot a full import of these bytes under the current rules version made or reused,
    while it is ready or current (the current one first, then the newest), or ``None``."""
    row = conn.execute(
        "SELECT s.id, s.status, s.entity_counts, s.content_hash, s.warnings, "
        "       l.version_label, l.source_system, l.source_version "
        "FROM import_logs l JOIN snapshots s ON s.id = l.snapshot_id "
        "WHERE l.source_sha256 = %s AND l.rules_version = %s AND s.status IN ('ready', 'current') "
        "  AND s.warnings IS NOT NULL AND s.content_hash IS NOT NULL "
        "ORDER BY (s.status = 'current') DESC, s.created_at DESC, l.started_at DESC LIMIT 1",
        (sha256, rules_version())).fetchone()
    if row is None:
        return None
    snapshot_id, status, counts, digest, warnings, label, system, version = row
    return Found(snapshot_id, status, dict(counts), digest, issues(warnings), label, system, version)


def reuse(conn: psycopg.Connection, import_id: uuid.UUID, found: Found, sha256: str) -> str | None:
    """One transaction: log ``import_id`` as a reuse of the found snapshot (its counts, the sha256
    and rules version recorded); the log's status ('promoted' when the snapshot is current, its
    content being live; else 'ready'). The snapshot is held ``FOR KEY SHARE`` until this commits,
    so a delete-draft or cleanup of it waits (and then marks this log failed, as it does every log
    of a snapshot it deletes) instead of removing it under this import. ``None``: it was deleted
    since it was found; nothing was recorded (import the file the usual way)."""
    with conn.transaction():
        row = conn.execute("SELECT status, entity_counts FROM snapshots WHERE id = %s "
                           "AND status IN ('ready', 'current') FOR KEY SHARE", (found.snapshot_id,)).fetchone()
        if row is None:
            return None
        snapshot_status, counts = row
        status = "promoted" if snapshot_status == "current" else "ready"
        conn.execute("UPDATE import_logs SET reused = true, source_sha256 = %s, rules_version = %s WHERE id = %s",
                     (sha256, rules_version(), import_id))
        conn.execute("SELECT update_import_status(%s, %s, %s, %s)",
                     (import_id, status, found.snapshot_id, json.dumps(counts)))
    return status


def remember(conn: psycopg.Connection, import_id: uuid.UUID, snapshot_id: uuid.UUID,
             warnings: tuple[Issue, ...] | None, sha256: str | None) -> None:
    """After a successful import (loaded or reused after parsing): give the snapshot ``warnings`` if
    it has none yet (it was just made, or made before they were stored), and record ``sha256`` with
    the rules version on the log if the snapshot's warnings are the file's (module docstring).
    ``warnings`` ``None``: not known (a bundle the caller validated); ``sha256`` ``None``: not a
    full import of a file. Missing either only means the same bytes are parsed again next time."""
    if warnings is None:
        return
    stored = json.dumps([w.to_dict() for w in warnings])
    try:
        with conn.transaction():
            conn.execute("UPDATE snapshots SET warnings = %s::jsonb WHERE id = %s AND warnings IS NULL",
                         (stored, snapshot_id))
            if sha256 is not None:
                conn.execute(
                    "UPDATE import_logs SET source_sha256 = %s, rules_version = %s WHERE id = %s AND EXISTS "
                    "(SELECT 1 FROM snapshots WHERE id = %s AND warnings = %s::jsonb)",
                    (sha256, rules_version(), import_id, snapshot_id, stored))
    except psycopg.OperationalError:
        pass  # the import is committed; without these, the same bytes are only parsed again next time


def issues(stored: list[dict] | None) -> tuple[Issue, ...]:
    """``snapshots.warnings`` as issues."""
    return tuple(Issue(w["code"], Severity(w["severity"]), w["path"], w["message"]) for w in stored or ())
