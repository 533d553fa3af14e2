"""The batch manager as a Dagster resource: nothing connects until a run asks for it."""

import dagster as dg

from musingly_pipeline.batches import BatchManager, default_registry


class BatchManagerResource(dg.ConfigurableResource):
    """Import batches in the project database (or ``database_url``).

    Processors come from the project's packages, ``MUSINGLY_PROCESSOR_PACKAGES`` and
    ``processor_packages``.
    """

    database_url: str | None = None
    processor_packages: list[str] = []

    def manager(self) -> BatchManager:
        return BatchManager(self.database_url, default_registry(self.processor_packages))
