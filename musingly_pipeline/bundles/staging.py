"""Staged bundles: the exact bytes of an accepted bundle file, in PostgreSQL, named by sha256.

When the inbox sensor decides a dropped file is ready (or a producer hands one in), its bytes are
staged here at once, and the run it starts names them by their hash. The run fetches exactly those
bytes, from any machine, into a local cache file, and the import refuses bytes whose hash differs:
a file rewritten in the inbox after the decision cannot change what is imported, and what was
validated is what is imported.

Chunks of 4 MiB (table ``staged_bundle_chunks``, in the baseline migration), so a 1 GiB bundle is never one
value in memory on either side. Staging the same content twice stores it once.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from musingly_core.bundle_file import MAX_BUNDLE_BYTES

from musingly_pipeline.bundles.errors import PushRefused, StagingError
from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.migrations import ensure_migrated

CHUNK_BYTES = 4 << 20
_READ = 1 << 20
# A bundle over this is refused before it is parsed (musingly_core); a push of one is refused too.
MAX_PUSH_BYTES = MAX_BUNDLE_BYTES
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass(frozen=True)
class StagedBundle:
    """One staged bundle: its sha256, its size in bytes, and where it came from."""

    sha256: str
    size: int
    source: str | None = None


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256, size) of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while piece := f.read(_READ):
            digest.update(piece)
            size += len(piece)
    return digest.hexdigest(), size


def staged(url: str, sha256: str) -> StagedBundle | None:
    """The staged bundle with this hash, or ``None``."""
    ensure_migrated(url)
    with connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT size, source FROM staged_bundles WHERE sha256 = %s", (sha256,)).fetchone()
    return None if row is None else StagedBundle(sha256, row[0], row[1])


def stage_file(url: str, path: Path, *, source: str | None = None, sha256: str | None = None) -> StagedBundle:
    """Stage the bytes of ``path``; returns what was staged (once per content).

    ``sha256``: the hash the caller already computed for the file (the inbox scan does): when that
    content is staged already, the file is not read again. Otherwise the file is read once, hashed
    as it is written; if it changed meanwhile, what is staged is what was read, under its own hash.
    """
    if sha256 is not None:
        known = staged(url, sha256)
        if known is not None:
            return known
    with path.open("rb") as stream:
        return stage_stream(url, stream, source=source or path.name)


def stage_stream(url: str, stream: BinaryIO, *, source: str | None = None, limit: int | None = None) -> StagedBundle:
    """Stage everything ``stream`` yields, in one transaction; returns what was staged. More than
    ``limit`` bytes: :class:`PushRefused`, and nothing is kept."""
    ensure_migrated(url)
    upload = uuid.uuid4()
    digest = hashlib.sha256()
    size = chunks = 0
    with connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY staged_bundle_chunks (upload_id, seq, data) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "int4", "bytea"])
                while chunk := _read_chunk(stream):
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise PushRefused("PUSH_TOO_LARGE", f"the bundle is over {limit >> 20} MiB, the most one "
                                          "bundle may be; split it into several bundles (merge the later ones)")
                    digest.update(chunk)
                    copy.write_row((upload, chunks, chunk))
                    chunks += 1
            sha = digest.hexdigest()
            inserted = cur.execute(
                "INSERT INTO staged_bundles (sha256, upload_id, size, chunks, source) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (sha256) DO NOTHING RETURNING source", (sha, upload, size, chunks, source)).fetchone()
        if inserted is None:  # already staged: keep the first copy, drop these chunks
            conn.rollback()
            return staged(url, sha) or StagedBundle(sha, size, source)
    return StagedBundle(sha, size, source)


def _read_chunk(stream: BinaryIO) -> bytes:
    parts, wanted = [], CHUNK_BYTES
    while wanted and (piece := stream.read(min(wanted, _READ))):
        parts.append(piece)
        wanted -= len(piece)
    return b"".join(parts)


def fetch_staged(url: str, sha256: str, cache_dir: Path) -> Path:
    """A local file holding the staged bundle ``sha256``: ``cache_dir/<sha256>.json``.

    Read from PostgreSQL on first use, hashed as it is written, and renamed into place only if the
    hash matches; later calls on the same machine reuse the file.
    """
    final = cache_dir / f"{sha256}.json"
    if final.is_file():
        return final
    ensure_migrated(url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{sha256}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
    digest = hashlib.sha256()
    with connect(url) as conn:
        row = conn.execute("SELECT upload_id, size, chunks FROM staged_bundles WHERE sha256 = %s", (sha256,)).fetchone()
        if row is None:
            raise StagingError("STAGED_BUNDLE_MISSING", f"no staged bundle has sha256 {sha256}; it was never staged "
                               "here or was cleaned up: drop the file into the inbox again")
        upload, size, expected_chunks = row
        written = seen = 0
        try:
            with tmp.open("wb") as out, conn.cursor() as cur:
                with cur.copy("COPY (SELECT data FROM staged_bundle_chunks WHERE upload_id = %s ORDER BY seq) "
                              "TO STDOUT (FORMAT BINARY)", (upload,)) as copy:
                    copy.set_types(["bytea"])
                    for (chunk,) in copy.rows():
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                        seen += 1
            if seen != expected_chunks or written != size or digest.hexdigest() != sha256:
                raise StagingError(
                    "STAGED_BUNDLE_DAMAGED", f"staged bundle {sha256} is damaged: read {written} bytes in {seen} "
                    f"chunks hashing to {digest.hexdigest()}, expected {size} bytes in {expected_chunks}; drop the "
                    "file again")
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
    return final


# Pushes: bundles handed in without a shared folder (``musingly inbox push``, ``POST /api/bundles``).

_NAME = re.compile(r"(?:incremental/)?[^/.][^/]*\.json")


@dataclass(frozen=True)
class Push:
    """One handed-in bundle: its inbox name, its staged bytes, and whether the previous push of the
    same name had the same bytes (a duplicate, which imports nothing new)."""

    id: int
    name: str
    sha256: str
    size: int
    duplicate: bool = False

    @property
    def incremental(self) -> bool:
        return self.name.startswith("incremental/")


def check_push_name(name: str) -> str:
    """``name`` as an inbox file name (``x.json`` or ``incremental/x.json``), or :class:`PushRefused`."""
    if not _NAME.fullmatch(name) or name.endswith(PARTIAL_SUFFIXES):
        raise PushRefused("PUSH_NAME_INVALID", f"cannot push as {name!r}: name it like an inbox file, NAME.json or "
                          "incremental/NAME.json (no other folders, no leading dot)")
    return name


def push_bundle(url: str, stream: BinaryIO, name: str, *, pushed_by: str | None = None) -> Push:
    """Stage the bytes of ``stream`` and hand them in under inbox name ``name``."""
    check_push_name(name)
    staged_bundle = stage_stream(url, stream, source=name, limit=MAX_PUSH_BYTES)
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            "WITH previous AS (SELECT sha256 FROM inbox_pushes WHERE name = %(name)s ORDER BY id DESC LIMIT 1) "
            "INSERT INTO inbox_pushes (name, sha256, pushed_by) VALUES (%(name)s, %(sha)s, %(by)s) "
            "RETURNING id, (SELECT sha256 FROM previous) IS NOT DISTINCT FROM %(sha)s",
            {"name": name, "sha": staged_bundle.sha256, "by": pushed_by}).fetchone()
    return Push(row[0], name, staged_bundle.sha256, staged_bundle.size, duplicate=row[1])


def pushes_after(url: str, after_id: int, limit: int = 1000) -> list[Push]:
    """The pushes with an id above ``after_id``, oldest first; ``duplicate`` when the push of the same
    name before it had the same bytes."""
    ensure_migrated(url)
    with connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT p.id, p.name, p.sha256, s.size, "
            "       lag(p.sha256) OVER (PARTITION BY p.name ORDER BY p.id) IS NOT DISTINCT FROM p.sha256 "
            "FROM inbox_pushes p JOIN staged_bundles s USING (sha256) "
            "WHERE p.name IN (SELECT name FROM inbox_pushes WHERE id > %s) ORDER BY p.id", (after_id,)).fetchall()
    return [Push(*row) for row in rows if row[0] > after_id][:limit]
