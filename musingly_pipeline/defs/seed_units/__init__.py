"""Dagster wiring of seed units: the ``seed_units`` asset and its two checks (thin; no logic here)."""

from musingly_pipeline.defs.seed_units.assets import (
    SeedDataResource,
    seed_units,
    seed_units_package_validation,
    seed_units_round_trip,
)

import dagster as dg

assets = [seed_units]
jobs = [dg.define_asset_job("import_seed_units", selection=dg.AssetSelection.groups("seed_units"),
                            description="Import the seed folder's users and units, then check the round trip.")]
asset_checks = [seed_units_package_validation, seed_units_round_trip]
resources = {"seed_data": SeedDataResource()}

__all__ = ["SeedDataResource", "asset_checks", "assets", "jobs", "resources", "seed_units"]
