"""Dagster wiring of seed units: the ``seed_units`` asset and its two checks (thin; no logic here)."""

from musingly_pipeline.defs.seed_units.assets import (
    SeedDataResource,
    seed_units,
    seed_units_package_validation,
    seed_units_round_trip,
)

assets = [seed_units]
asset_checks = [seed_units_package_validation, seed_units_round_trip]
resources = {"seed_data": SeedDataResource()}

__all__ = ["SeedDataResource", "asset_checks", "assets", "resources", "seed_units"]
