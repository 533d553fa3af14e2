"""Import a seed data folder, export units into one, and compare the two (the round trip).

Import runs in one transaction with a savepoint per item: ``users.json`` first, then each unit file.
A broken unit (invalid, or refused by the database) fails alone with its issues; the others are
imported and committed. Every file is read through :mod:`~musingly_pipeline.seed_units.files`
(``users_file``, ``unit_files``): the import, the check and the round trip read the folder the same
way. The CLI and the Dagster asset call these through :class:`~musingly_pipeline.seed_units.store.SeedUnitStore`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from musingly_core.report import Issue, Severity, error

from musingly_pipeline.seed_units.errors import SeedImportFailed, SeedUnitError
from musingly_pipeline.seed_units.files import (
    UNITS_DIR,
    USERS_FILE,
    FolderFile,
    encode,
    ensure_inside,
    unit_file_names,
    unit_files,
    users_file,
    write_atomic,
)
from musingly_pipeline.seed_units.parse import parse_json, unit_document
from musingly_pipeline.seed_units.tables import export_units, export_users, import_users, known_users, unit_titles
from musingly_pipeline.seed_units.validation import validate_unit, validate_users
from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.migrations import ensure_migrated


@dataclass
class ItemResult:
    """One file of the folder: imported or not, with its issues (``source`` is relative)."""

    source: str
    issues: list[Issue] = field(default_factory=list)
    imported: bool = False
    unit_id: str | None = None
    title: str | None = None
    created: bool | None = None
    unchanged: bool = False  # the same text was already imported: skipped, nothing written
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.error]


@dataclass
class FolderImport:
    """What ``musingly seed import`` did with one folder."""

    directory: str
    users: ItemResult | None = None
    units: list[ItemResult] = field(default_factory=list)
    batch_id: Any = None  # the seed_unit import batch of the units, when there were any

    @property
    def items(self) -> list[ItemResult]:
        return ([self.users] if self.users else []) + self.units

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if not i.imported]

    @property
    def ok(self) -> bool:
        return not self.failed

    def issues(self) -> list[Issue]:
        """Every issue, its path prefixed with the file (``units/a.json: lessons[2].package``)."""
        return [
            Issue(i.code, i.severity, f"{item.source}: {i.path}" if i.path else item.source, i.message)
            for item in self.items for i in item.issues
        ]


def import_folder(directory: str | Path, url: str | None = None) -> FolderImport:
    """Import ``users.json``, then ``units/*.json`` of ``directory`` as one ``seed_unit`` import batch.

    ``users.json`` goes first in its own transaction (units refer to users). Each unit file is one
    batch item, validated and imported in its own savepoint: a broken unit fails alone with its
    issues on the item, the others commit; ``musingly batch reprocess ID`` retries only the failed
    ones. A unit whose exact text was already imported is skipped as unchanged.

    Files are read only from inside the folder (:func:`~musingly_pipeline.seed_units.files.read_inside`).
    A file that cannot be read there, or that is not one JSON object, is not a unit: its item fails
    with the reason and keeps only the file's name (``{"file", "refused"}``), never its content.
    """
    from musingly_pipeline.batches.manager import BatchManager
    from musingly_pipeline.batches.registry import ProcessorRegistry
    from musingly_pipeline.seed_units.processor import SeedUnitProcessor

    directory = folder(directory)
    ensure_migrated(url)
    result = FolderImport(directory=str(directory))
    users = users_file(directory)
    if users is not None:
        with connect(url) as conn, conn.transaction():
            result.users = _import_users(conn, users)

    items, by_source = [], {}
    for file in unit_files(directory):
        item = ItemResult(source=file.source)
        result.units.append(item)
        by_source[item.source] = item
        if file.refused is not None:
            item.issues.append(file.refused)
        else:  # parsed again by the processor: holding every unit's tree at once would cost GBs
            item.issues.extend(unit_document(file.data)[1])
        if item.issues:
            items.append({"file": item.source, "refused": "; ".join(f"{i.code}: {i.message}" for i in item.issues)})
        else:
            items.append({"file": item.source, "text": file.data.decode("utf-8")})
    if not items:
        return result

    outcomes: dict[str, dict[str, Any]] = {}
    recording = type("SeedUnitProcessor", (SeedUnitProcessor,), {"outcomes": outcomes})
    registry = ProcessorRegistry()
    registry.register(recording)
    manager = BatchManager(url, registry)
    result.batch_id = manager.create_batch("seed_unit", items, metadata={"directory": str(directory)})
    manager.process_batch(result.batch_id)
    for record in manager.get_batch_items(result.batch_id):
        item = by_source[record.source_data["file"]]
        outcome = outcomes.get(item.source, {})
        item.issues.extend(outcome.get("issues", []))
        item.title = outcome.get("title")
        if record.status == "skipped":  # same text as already imported: unchanged
            item.imported, item.created, item.unchanged = True, False, True
        elif record.status == "completed":
            item.imported = True
            item.unit_id, item.created = outcome.get("unit_id"), outcome.get("created")
            item.counts = outcome.get("counts", {})
        elif not item.errors:
            item.issues.append(error("SEED_DATABASE_REJECTED", "", record.error_message or "the unit failed"))
    return result


def validate_folder(directory: str | Path, url: str | None = None) -> list[Issue]:
    """Every issue the seed folder's files have, without importing anything: the issues
    :func:`import_folder` would report before the database (the files read the same way, from
    inside the folder; the users known are the database's and ``users.json``'s). Each issue's path
    starts with its file (``units/a.json: lessons[2].package``)."""
    directory = folder(directory)
    ensure_migrated(url)
    with connect(url) as conn:
        known = known_users(conn)
    issues: list[Issue] = []

    def add(source: str, found: list[Issue]) -> None:
        issues.extend(Issue(i.code, i.severity, f"{source}: {i.path}" if i.path else source, i.message)
                      for i in found)

    users = users_file(directory)
    if users is not None and users.refused is not None:
        add(users.source, [users.refused])
    elif users is not None:
        validation = validate_users(users.data, source=str(users.path))
        add(users.source, validation.issues)
        known = known | validation.known
    for file in unit_files(directory):
        if file.refused is not None:
            add(file.source, [file.refused])
        else:
            add(file.source, validate_unit(file.data, known, source=file.source).issues)
    return issues


def folder(directory: str | Path) -> Path:
    """``directory`` as a ``Path``, refused (``SEED_FOLDER_NOT_FOUND``) when it is not a folder."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SeedUnitError("SEED_FOLDER_NOT_FOUND",
                            f"{directory} is not a folder; name a seed folder with users.json and units/*.json")
    return directory


def _import_users(conn: psycopg.Connection, file: FolderFile) -> ItemResult:
    item = ItemResult(source=file.source)
    if file.refused is not None:
        item.issues.append(file.refused)
        return item
    validation = validate_users(file.data, source=str(file.path))
    item.issues.extend(validation.issues)
    if not validation.valid:
        return item
    try:
        with conn.transaction():
            item.counts = {"users": import_users(conn, validation)}
    except SeedImportFailed as exc:
        item.issues.extend(exc.issues)
        return item
    item.imported = True
    return item


@dataclass
class FolderExport:
    directory: str
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def export_folder(
    directory: str | Path,
    url: str | None = None,
    unit_ids: list[str] | None = None,
    users: bool = False,
) -> FolderExport:
    """Write ``units/{title}.json`` for the given units (all when ``None``) and, with ``users``,
    ``users.json``; each file is written atomically. Ids that are not in the database are listed in
    ``missing`` and nothing is written for them. A ``units`` link leading out of ``directory`` is
    refused (:class:`FolderFileRefused`) before anything is written; a file that cannot be written is
    ``SEED_EXPORT_FAILED``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise SeedUnitError("SEED_EXPORT_FAILED", f"{directory} exists and is not a folder; export into a folder")
    if os.path.lexists(directory / UNITS_DIR):
        ensure_inside(directory, directory / UNITS_DIR,
                      fix="remove the link, or export into another folder")
    ensure_migrated(url)
    result = FolderExport(directory=str(directory))
    with connect(url) as conn:
        # One snapshot for the whole export, so the files agree with each other.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        titles = unit_titles(conn, unit_ids)
        if unit_ids is not None:
            found = {unit_id for unit_id, _ in titles}
            result.missing = [u for u in unit_ids if u not in found]
        names = unit_file_names(titles)
        for unit in export_units(conn, [unit_id for unit_id, _ in titles]):
            _write(result, directory / UNITS_DIR / names[unit.id], encode(unit.document))
        if users:
            _write(result, directory / USERS_FILE, encode(export_users(conn)))
    return result


def _write(result: FolderExport, path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise SeedUnitError("SEED_EXPORT_FAILED", f"cannot write {path}: {exc.strerror or exc}; "
                            "export into a folder you can write to") from exc
    result.files.append(path)


@dataclass(frozen=True)
class Difference:
    """A source file that export does not reproduce: where the bytes first differ."""

    source: str
    line: int
    expected: str
    actual: str

    def describe(self) -> str:
        return f"{self.source} line {self.line}: file has {self.expected!r}, export writes {self.actual!r}"


@dataclass
class RoundTrip:
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.differences


def round_trip(directory: str | Path, url: str | None = None) -> RoundTrip:
    """Export every unit (and the users) of ``directory`` from the database and compare with the files.

    Files that do not parse, or units without an id, cannot be compared and count as differences.
    """
    directory = Path(directory)
    result = RoundTrip()
    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        users = users_file(directory)  # a refused file has no bytes: it differs
        if users is not None:
            document, _ = parse_json(users.data)
            ids = [u.get("id") for u in document.get("users", [])] if isinstance(document, dict) else []
            exported = export_users(conn)
            wanted = set(ids)
            exported = {"users": [u for u in exported["users"] if u["id"] in wanted]}
            _compare(result, users.source, users.data, encode(exported))
        for file in unit_files(directory):
            document, _ = parse_json(file.data)
            unit_id = document.get("id") if isinstance(document, dict) else None
            if not isinstance(unit_id, str):
                result.compared += 1
                result.differences.append(Difference(file.source, 1, "a unit with an id", "nothing to compare"))
                continue
            exported = list(export_units(conn, [unit_id]))
            _compare(result, file.source, file.data, encode(exported[0].document) if exported else b"")
    return result


def _compare(result: RoundTrip, source: str, expected: bytes, actual: bytes) -> None:
    result.compared += 1
    if expected == actual:
        return
    left, right = expected.decode("utf-8", "replace").split("\n"), actual.decode("utf-8", "replace").split("\n")
    for number, (a, b) in enumerate(zip(left, right), start=1):
        if a != b:
            result.differences.append(Difference(source, number, a, b))
            return
    number = min(len(left), len(right)) + 1
    result.differences.append(Difference(
        source, number, _at(left, number), _at(right, number),
    ))


def _at(lines: list[Any], number: int) -> str:
    return lines[number - 1] if number <= len(lines) else "<end of file>"
