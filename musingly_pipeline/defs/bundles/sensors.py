"""bundle_inbox_sensor: each new or changed, finished `*.json` in the inbox imports itself."""

import json
from pathlib import Path

import dagster as dg

from musingly_pipeline.defs.bundles.assets import SHA_TAG
from musingly_pipeline.defs.bundles.jobs import import_bundle_job
from musingly_pipeline.defs.bundles.partitions import bundle_partitions
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource
from musingly_pipeline.inbox import scan_inbox
from musingly_pipeline.staging import stage_file


@dg.sensor(
    job=import_bundle_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Imports each new or changed *.json of the inbox (data/inbox/) as a draft snapshot; files "
    "in inbox/incremental/ are merged onto the current snapshot. A file is taken once it has not changed "
    "for MUSINGLY_INBOX_SETTLE_SECONDS (default 10); its bytes are staged in PostgreSQL by sha256 at that "
    "moment, and the run imports exactly those. Hidden files, *.part/*.tmp names and links leading "
    "outside the inbox are ignored; writing NAME.json.part and renaming it is the safe way to drop a file.",
)
def bundle_inbox_sensor(context: dg.SensorEvaluationContext, data_folder: DataFolderResource,
                        postgres: PostgresResource) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    url = postgres.get_url()

    def stage(path: Path, sha256: str) -> str:
        return stage_file(url, path, sha256=sha256).sha256

    scan = scan_inbox(data_folder.inbox, state, settle_seconds=data_folder.settle(), stage=stage)
    for name, why in scan.skipped.items():
        context.log.warning(f"skipping {name}: {why}")
    existing = set(context.instance.get_dynamic_partitions(bundle_partitions.name))
    new_keys = sorted({f.name for f in scan.ready} - existing)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{f.name}:{f.sha256}:{f.mtime_ns}", partition_key=f.name, tags={SHA_TAG: f.sha256},
                run_config={"ops": {"bundle_import": {"config": {"merge": True}}}} if f.incremental else None)
            for f in scan.ready
        ],
        dynamic_partitions_requests=[bundle_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(scan.state, sort_keys=True),
    )
