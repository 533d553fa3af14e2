"""``SeedUnitStore``: seed units in one PostgreSQL database, the one object both faces call.

``musingly seed import|export`` and the Dagster ``seed_units`` asset and its checks use only this;
each method is one step of :mod:`~musingly_pipeline.seed_units.folder` (or a read of the seed
tables) against the store's database. A refusal is a :class:`~musingly_pipeline.seed_units.errors.SeedUnitError`
with a stable code; what a folder's files hold wrong is a list of issues in the result, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from musingly_core.report import Issue

from musingly_pipeline.seed_units import folder
from musingly_pipeline.seed_units.folder import FolderExport, FolderImport, RoundTrip
from musingly_pipeline.seed_units.tables import unit_titles
from musingly_pipeline.storage.database import connect
from musingly_pipeline.storage.migrations import ensure_migrated


class SeedUnitStore:
    """The seed units (and users) of the database at ``url`` (``None``: the configured one)."""

    def __init__(self, url: str | None = None):
        self.url = url

    def import_folder(self, directory: str | Path) -> FolderImport:
        """Import ``users.json``, then ``units/*.json`` as one ``seed_unit`` batch; a broken unit fails
        alone (see :func:`~musingly_pipeline.seed_units.folder.import_folder`). A ``directory`` that is
        not a folder is ``SEED_FOLDER_NOT_FOUND``."""
        return folder.import_folder(directory, self.url)

    def validate_folder(self, directory: str | Path) -> list[Issue]:
        """Every issue the folder's files have, without importing anything; each path starts with its file."""
        return folder.validate_folder(directory, self.url)

    def export_folder(self, directory: str | Path, unit_ids: Sequence[str] | None = None,
                      users: bool = False) -> FolderExport:
        """Write the units (all when ``unit_ids`` is ``None``) and, with ``users``, ``users.json`` into
        ``directory``; ids not in the database are listed in ``missing``."""
        return folder.export_folder(directory, self.url, None if unit_ids is None else list(unit_ids), users)

    def round_trip(self, directory: str | Path) -> RoundTrip:
        """Compare the folder's files with what export writes for them, byte for byte."""
        return folder.round_trip(directory, self.url)

    def units(self) -> list[tuple[str, str]]:
        """``(id, title)`` of every unit in the database, ordered by title then id."""
        ensure_migrated(self.url)
        with connect(self.url) as conn:
            return [tuple(row) for row in unit_titles(conn)]
