"""The signal store as a Dagster resource: where the store lives and where raw files are dropped."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from musingly_pipeline.signals import EventStore, open_store

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class SignalStoreResource(dg.ConfigurableResource):
    """``location``: a workspace directory (metaspn-store layout) or a ``postgresql://`` URL.
    ``incoming``: the folder of raw ``YYYY-MM-DD*.jsonl`` files. Relative paths are from the project root."""

    location: str = "data/signals"
    incoming: str = "data/signals/incoming"

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else PROJECT_ROOT / path

    def open(self) -> EventStore:
        if self.location.startswith(("postgresql://", "postgres://")):
            return open_store(self.location)
        return open_store(self._path(self.location))

    @property
    def incoming_dir(self) -> Path:
        return self._path(self.incoming)
