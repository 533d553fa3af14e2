"""The one Definitions object of the code location (loaded by workspace.yaml and `dagster -m`)."""

import dagster as dg

from musingly_pipeline.defs import batches, bundles, seed_units, signals
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource

defs = dg.Definitions(
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
    # Small runs: the in-process executor avoids seconds of subprocess start-up per step.
    executor=dg.in_process_executor,
)
