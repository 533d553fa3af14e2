"""Import a seed data folder, export units into one, and compare the two (the round trip).

Import runs in one transaction with a savepoint per item: ``users.json`` first, then each unit file.
A broken unit (invalid, or refused by the database) fails alone with its issues; the others are
imported and committed. The CLI and the Dagster asset both call these functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from musingly_core.report import Issue, Severity, error

from musingly_pipeline.seed_units.files import (
    UNITS_DIR,
    USERS_FILE,
    FolderFileRefused,
    encode,
    ensure_inside,
    read_inside,
    unit_file_names,
    unit_paths,
    write_atomic,
)
from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.migrations import ensure_migrated
from musingly_pipeline.seed_units.tables import (
    SeedImportFailed,
    export_units,
    export_users,
    import_users,
    known_users,
    unit_titles,
)
from musingly_pipeline.seed_units.parse import parse_json, unit_document
from musingly_pipeline.seed_units.validation import validate_unit, validate_users


@dataclass
class ItemResult:
    """One file of the folder: imported or not, with its issues (``source`` is relative)."""

    source: str
    issues: list[Issue] = field(default_factory=list)
    imported: bool = False
    unit_id: str | None = None
    title: str | None = None
    created: bool | None = None
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

    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a folder; it should hold users.json and units/*.json")
    ensure_migrated(url)
    result = FolderImport(directory=str(directory))
    users_path = directory / USERS_FILE
    if os.path.lexists(users_path):
        with connect(url) as conn, conn.transaction():
            result.users = _import_users(conn, directory, users_path)

    items, by_source = [], {}
    for path in unit_paths(directory):
        item = ItemResult(source=f"{UNITS_DIR}/{path.name}")
        result.units.append(item)
        by_source[item.source] = item
        try:
            data = read_inside(directory, path)
        except FolderFileRefused as exc:
            item.issues.append(exc.issue)
        else:  # parsed again by the processor: holding every unit's tree at once would cost GBs
            item.issues.extend(unit_document(data)[1])
        if item.issues:
            items.append({"file": item.source, "refused": "; ".join(f"{i.code}: {i.message}" for i in item.issues)})
        else:
            items.append({"file": item.source, "text": data.decode("utf-8")})
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
            item.imported, item.created = True, False
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
    directory = Path(directory)
    ensure_migrated(url)
    with connect(url) as conn:
        known = known_users(conn)
    issues: list[Issue] = []

    def add(source: str, found: list[Issue]) -> None:
        issues.extend(Issue(i.code, i.severity, f"{source}: {i.path}" if i.path else source, i.message)
                      for i in found)

    users_path = directory / USERS_FILE
    if os.path.lexists(users_path):
        try:
            users = validate_users(read_inside(directory, users_path), source=str(users_path))
        except FolderFileRefused as exc:
            add(USERS_FILE, [exc.issue])
        else:
            add(USERS_FILE, users.issues)
            known = known | users.known
    for path in unit_paths(directory):
        source = f"{UNITS_DIR}/{path.name}"
        try:
            add(source, validate_unit(read_inside(directory, path), known, source=source).issues)
        except FolderFileRefused as exc:
            add(source, [exc.issue])
    return issues


def _import_users(conn: psycopg.Connection, directory: Path, path: Path) -> ItemResult:
    item = ItemResult(source=USERS_FILE)
    try:
        data = read_inside(directory, path)
    except FolderFileRefused as exc:
        item.issues.append(exc.issue)
        return item
    validation = validate_users(data, source=str(path))
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
    refused (:class:`FolderFileRefused`) before anything is written."""
    directory = Path(directory)
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
            path = directory / UNITS_DIR / names[unit.id]
            write_atomic(path, encode(unit.document))
            result.files.append(path)
        if users:
            path = directory / USERS_FILE
            write_atomic(path, encode(export_users(conn)))
            result.files.append(path)
    return result


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
        users_path = directory / USERS_FILE
        if os.path.lexists(users_path):
            data = _read_or_nothing(directory, users_path)
            document, _ = parse_json(data)
            ids = [u.get("id") for u in document.get("users", [])] if isinstance(document, dict) else []
            exported = export_users(conn)
            wanted = set(ids)
            exported = {"users": [u for u in exported["users"] if u["id"] in wanted]}
            _compare(result, USERS_FILE, data, encode(exported))
        for path in unit_paths(directory):
            source = f"{UNITS_DIR}/{path.name}"
            data = _read_or_nothing(directory, path)
            document, _ = parse_json(data)
            unit_id = document.get("id") if isinstance(document, dict) else None
            if not isinstance(unit_id, str):
                result.compared += 1
                result.differences.append(Difference(source, 1, "a unit with an id", "nothing to compare"))
                continue
            exported = list(export_units(conn, [unit_id]))
            _compare(result, source, data, encode(exported[0].document) if exported else b"")
    return result


def _read_or_nothing(directory: Path, path: Path) -> bytes:
    """A file the import would read, or no bytes for one it refuses (which then differs)."""
    try:
        return read_inside(directory, path)
    except FolderFileRefused:
        return b""


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
