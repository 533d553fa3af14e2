"""Dagster wiring for import batches: the reprocess_failed_items job and its resource.

The lead's Definitions add ``jobs`` and bind ``resources`` (key ``batch_manager``).
"""

from musingly_pipeline.defs.batches.jobs import ReprocessConfig, reprocess_failed_items
from musingly_pipeline.defs.batches.resources import BatchManagerResource
from musingly_pipeline.defs.resources import PostgresResource

jobs = [reprocess_failed_items]
resources = {"batch_manager": BatchManagerResource(postgres=PostgresResource())}

__all__ = ["BatchManagerResource", "ReprocessConfig", "jobs", "reprocess_failed_items", "resources"]
