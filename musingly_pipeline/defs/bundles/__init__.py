"""Dagster wiring of the bundle pipeline."""

from musingly_pipeline.defs.bundles.assets import asset_checks, assets
from musingly_pipeline.defs.bundles.jobs import jobs
from musingly_pipeline.defs.bundles.sensors import bundle_inbox_sensor

sensors = [bundle_inbox_sensor]

__all__ = ["asset_checks", "assets", "jobs", "sensors"]
