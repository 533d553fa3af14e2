"""bundle_inbox_sensor: each new or changed, finished `*.json` in the inbox imports itself."""


import json

import dagster as dg

from musingly_pipeline.defs.bundles.jobs import import_bundle_job
from musingly_pipeline.defs.bundles.partitions import bundle_partitions
from musingly_pipeline.defs.resources import DataFolderResource
from musingly_pipeline.inbox import scan_inbox


@dg.sensor(job=import_bundle_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def bundle_inbox_sensor(context: dg.SensorEvaluationContext, data_folder: DataFolderResource) -> dg.SensorResult:
    """Watches the inbox. A file is imported once its size and modification time are the same on
    two ticks; the run key carries its sha256, so the same content never runs twice and new
    content always does. Hidden files, `*.tmp`/`*.part` names and links leading outside the inbox
    are ignored."""
    state = json.loads(context.cursor) if context.cursor else {}
    scan = scan_inbox(data_folder.inbox, state)
    for name, why in scan.skipped.items():
        context.log.warning(f"skipping {name}: {why}")
    existing = set(context.instance.get_dynamic_partitions(bundle_partitions.name))
    new_keys = sorted({f.name for f in scan.ready} - existing)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"{f.name}:{f.sha256}", partition_key=f.name,
                          tags={"musingly/sha256": f.sha256})
            for f in scan.ready
        ],
        dynamic_partitions_requests=[bundle_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(scan.state, sort_keys=True),
    )
