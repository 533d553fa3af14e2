"""Seed units as import-batch items: one unit file is one item of a ``seed_unit`` batch.

The item's source data is ``{"file": "units/x.json", "text": "<the file's exact text>"}``: the text
is kept as a string (not parsed JSON) so reprocessing a failed unit later sees the same bytes, and
the exact round trip (timestamp spellings, absent versus null) survives a reprocess. A broken unit
fails alone with its issues recorded on the item; re-importing a fixed unit upserts it by id.

A file that is not a unit at all (unreadable, outside the folder, not one JSON object) is the item
``{"file": ..., "refused": "<code: reason>"}``: it fails with that reason, and its content is never
kept, since no reprocessing could import it (the file must be fixed and imported again).
"""

from __future__ import annotations

from typing import Any, ClassVar

from musingly_core.report import error

from musingly_pipeline.batches.processor import BaseProcessor
from musingly_pipeline.seed_units.errors import SeedFileRefused, SeedImportFailed, SeedUnitError, SeedUnitRejected
from musingly_pipeline.seed_units.tables import import_unit, known_users
from musingly_pipeline.seed_units.validation import UnitValidation, validate_unit


class SeedUnitProcessor(BaseProcessor):
    """Validates and imports one unit file (batch type ``seed_unit``)."""

    # The smallest unit that imports (no lessons yet); its id makes importing it again an update.
    example_items: ClassVar[list[dict[str, Any]] | None] = [{
        "file": "units/example-unit.json",
        "text": '{\n  "id": "example-unit",\n  "title": "Example unit",\n  "lessons": []\n}\n',
    }]
    # Outcomes per item file, for a caller that wants Issues rather than the error text: a
    # subclass may point this at its own dict (see seed_units.folder.import_folder).
    outcomes: ClassVar[dict[str, dict[str, Any]] | None] = None

    def __init__(self) -> None:
        self._validated: dict[int, UnitValidation] = {}
        self._users = None
        self._unit_files: dict[str, str] = {}  # unit id -> file, within this run

    def item_key(self, source_data: dict[str, Any]) -> str:
        # A unit's identity for "already applied": its exact file text. The same text imported in
        # another batch is skipped; a fixed unit has new text and is imported (upserted by id).
        if "refused" in source_data:
            return super().item_key({"file": source_data.get("file"), "refused": source_data["refused"]})
        return super().item_key({"text": source_data.get("text")})

    def validate_item(self, item, ctx) -> bool:
        if self._users is None:
            self._users = known_users(ctx.connection)
        source = str(item.source_data.get("file", f"item {item.item_index}"))
        refused = item.source_data.get("refused")
        if refused is not None:
            raise SeedFileRefused(f"{source} is not a unit: {refused}; its content was not kept: fix the "
                                  "file and run `musingly seed import` again", source)
        text = item.source_data.get("text")
        if not isinstance(text, str):
            raise SeedUnitError("SEED_ITEM_INVALID", f"{source} holds no unit text; a seed_unit item is "
                                '{"file": "units/NAME.json", "text": "<the unit file\'s exact text>"}', source)
        validation = validate_unit(text.encode("utf-8"), self._users, source=source)
        self._record(source, issues=validation.issues, title=validation.unit.title if validation.unit else None)
        if validation.unit is None:
            raise SeedUnitRejected(validation.issues)
        unit_id = validation.unit.id
        if unit_id is not None and self._unit_files.setdefault(unit_id, source) != source:
            issue = error("SEED_DUPLICATE_ID", "id", f"unit id {unit_id!r} is also the id of "
                          f"{self._unit_files[unit_id]}; give each unit file its own id")
            self._record(source, issues=[*validation.issues, issue])
            raise SeedUnitRejected([issue])
        self._validated[item.id] = validation
        return True

    def process_item(self, item, ctx) -> dict[str, Any]:
        validation = self._validated.pop(item.id)
        source = str(item.source_data.get("file"))
        try:
            imported = import_unit(ctx.connection, validation.unit)
        except SeedImportFailed as exc:
            self._record(source, issues=[*validation.issues, *exc.issues])
            raise SeedUnitRejected(exc.issues) from exc
        self._record(source, imported=True, unit_id=imported.id, created=imported.created, counts=imported.counts)
        return {"target_table": "units", "target_id": str(imported.id)}

    def _record(self, source: str, **outcome: Any) -> None:
        if self.outcomes is not None:
            self.outcomes.setdefault(source, {}).update(outcome)
