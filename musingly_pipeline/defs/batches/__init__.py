"""Dagster wiring for import batches: the process_batch and reprocess_failed_items jobs and their resource.

The lead's Definitions add ``jobs`` and bind ``resources`` (key ``batch_manager``).
"""

from musingly_pipeline.defs.batches.jobs import ProcessConfig, ReprocessConfig, process_batch, reprocess_failed_items
from musingly_pipeline.defs.batches.resources import BatchManagerResource
from musingly_pipeline.defs.resources import PostgresResource

jobs = [process_batch, reprocess_failed_items]
resources = {"batch_manager": BatchManagerResource(postgres=PostgresResource())}

__all__ = ["BatchManagerResource", "ProcessConfig", "ReprocessConfig", "jobs", "process_batch",
           "reprocess_failed_items", "resources"]
