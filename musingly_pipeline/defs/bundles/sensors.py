"""bundle_inbox_sensor: each new or changed, finished `*.json` in the inbox imports itself, and so
does each bundle pushed in (`musingly inbox push`, `POST /api/bundles`)."""

import json
from pathlib import Path

import dagster as dg

from musingly_pipeline.defs.bundles.assets import SHA_TAG
from musingly_pipeline.defs.bundles.jobs import import_bundle_job
from musingly_pipeline.defs.bundles.partitions import bundle_partitions
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource
from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.bundles.inbox import is_incremental, scan_inbox

MERGE_CONFIG = {"ops": {"bundle_import": {"config": {"merge": True}}}}


def _request(name: str, sha256: str, run_key: str) -> dg.RunRequest:
    return dg.RunRequest(run_key=run_key, partition_key=name, tags={SHA_TAG: sha256},
                         run_config=MERGE_CONFIG if is_incremental(name) else None)


@dg.sensor(
    job=import_bundle_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Imports each new or changed *.json of the inbox (data/inbox/) as a draft snapshot, and each "
    "bundle pushed in (musingly inbox push, POST /api/bundles); files in inbox/incremental/ are merged onto "
    "the current snapshot. A file is taken once it has not changed for MUSINGLY_INBOX_SETTLE_SECONDS "
    "(default 10); its bytes are staged in PostgreSQL by sha256 at that moment, and the run imports exactly "
    "those. Hidden files, *.part/*.tmp names and links leading outside the inbox are ignored; writing "
    "NAME.json.part and renaming it is the safe way to drop a file.",
)
def bundle_inbox_sensor(context: dg.SensorEvaluationContext, data_folder: DataFolderResource,
                        postgres: PostgresResource) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    store = SnapshotStore(postgres.get_url())

    def stage(path: Path, sha256: str) -> str:
        return store.stage_file(path, sha256).sha256

    scan = scan_inbox(data_folder.inbox, state, settle_seconds=data_folder.settle(), stage=stage)
    for name, why in scan.skipped.items():
        context.log.warning(f"skipping {name}: {why}")
    requests = [_request(f.name, f.sha256, f"{f.name}:{f.sha256}:{f.mtime_ns}") for f in scan.ready]
    last_push = int(state.get("push_id", 0))
    for push in store.pushes_after(last_push):
        last_push = push.id
        if push.duplicate:
            context.log.info(f"push {push.id} of {push.name}: the same bytes as its previous push, nothing new")
        else:
            requests.append(_request(push.name, push.sha256, f"push:{push.id}"))
    existing = set(context.instance.get_dynamic_partitions(bundle_partitions.name))
    new_keys = sorted({r.partition_key for r in requests} - existing)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[bundle_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps({**scan.state, "push_id": last_push}, sort_keys=True),
    )
