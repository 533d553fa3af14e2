"""Issues as Dagster shows them (``report``).

Bundles are validated by ``musingly_core`` (``musingly_core.validate``), seed units by
``musingly_pipeline.seed_units``; the pipeline's codes are in :mod:`musingly_pipeline.errors`.
"""
