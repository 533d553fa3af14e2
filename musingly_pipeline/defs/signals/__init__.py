"""Dagster wiring of the signal store: add ``assets``, ``asset_checks`` and ``resources()`` to Definitions."""

from __future__ import annotations

import dagster as dg

from musingly_pipeline.defs.signals.assets import no_duplicate_ids, no_unreadable_lines, signal_partitions, timestamps_inside_day
from musingly_pipeline.defs.signals.partitions import signal_days
from musingly_pipeline.defs.signals.resources import SignalStoreResource

assets = [signal_partitions]
asset_checks = [no_duplicate_ids, timestamps_inside_day, no_unreadable_lines]
jobs = [dg.define_asset_job("ingest_signals", selection=dg.AssetSelection.assets(signal_partitions),
                            description="Ingest one day's incoming signal files and write its digest.")]

__all__ = ["SignalStoreResource", "asset_checks", "assets", "jobs", "resources", "signal_days"]


def resources(location: str | None = None, incoming: str | None = None) -> dict[str, SignalStoreResource]:
    """The resources these assets need, keyed as the assets expect (``signal_store``); the defaults
    are the configured store and incoming folder (``musingly_pipeline.settings``)."""
    return {"signal_store": SignalStoreResource(location=location, incoming=incoming)}
