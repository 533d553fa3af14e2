"""The signal store as a Dagster resource: where the store lives and where raw files are dropped."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from musingly_pipeline import settings
from musingly_pipeline.signals import EventStore, open_store


class SignalStoreResource(dg.ConfigurableResource):
    """``location``: a workspace directory (metaspn-store layout) or a ``postgresql://`` URL (default
    ``MUSINGLY_SIGNAL_STORE`` or ``<data>/signals``). ``incoming``: the folder of raw
    ``YYYY-MM-DD*.jsonl`` files (default ``<data>/signals/incoming``). Relative paths are from the
    project folder."""

    location: str | None = None
    incoming: str | None = None

    def open(self) -> EventStore:
        location = self.location or settings.signal_store_location()
        if location.startswith(("postgresql://", "postgres://")):
            return open_store(location)
        return open_store(settings.project_path(location))

    @property
    def incoming_dir(self) -> Path:
        return settings.project_path(self.incoming) if self.incoming else settings.signal_incoming_dir()
