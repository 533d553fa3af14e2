"""The batch manager as a Dagster resource: nothing connects until a run asks for it."""

import dagster as dg

from musingly_pipeline.batches import BatchManager, default_registry
from musingly_pipeline.defs.resources import PostgresResource


class BatchManagerResource(dg.ConfigurableResource):
    """Import batches in the database of ``postgres`` (the shared PostgresResource).

    Processors come from the project's packages, ``MUSINGLY_PROCESSOR_PACKAGES`` and
    ``processor_packages``.
    """

    postgres: PostgresResource
    processor_packages: list[str] = []

    def manager(self) -> BatchManager:
        return BatchManager(self.postgres.get_url(), default_registry(self.processor_packages))
