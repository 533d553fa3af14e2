"""The one Definitions object of the code location (loaded by workspace.yaml and `dagster -m`).

:func:`build_definitions` makes it for an executor: the in-process one here (the fast default for
one machine), the Celery one in ``musingly_pipeline.distributed`` (a deployment's workspace file
chooses that module; nothing else changes).
"""

import dagster as dg

from musingly_pipeline.defs import batches, bundles, seed_units, signals
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource


def build_definitions(executor: dg.ExecutorDefinition) -> dg.Definitions:
    return dg.Definitions(
        assets=[*bundles.assets, *seed_units.assets, *signals.assets],
        asset_checks=[*bundles.asset_checks, *seed_units.asset_checks, *signals.asset_checks],
        jobs=[*bundles.jobs, *seed_units.jobs, *batches.jobs, *signals.jobs],
        sensors=[*bundles.sensors],
        resources={
            "postgres": PostgresResource(),
            "data_folder": DataFolderResource(),
            **seed_units.resources,
            **batches.resources,
            **signals.resources(),
        },
        executor=executor,
    )


# Small runs: the in-process executor avoids seconds of subprocess start-up per step.
defs = build_definitions(dg.in_process_executor)
