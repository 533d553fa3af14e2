"""Jobs with typed config, so import, promote, rollback and cleanup are buttons in the launchpad."""


from datetime import datetime, timezone

import dagster as dg

from musingly_pipeline.defs.bundles.assets import record_lifecycle
from musingly_pipeline.defs.resources import PostgresResource
from musingly_pipeline.defs.signals.resources import SignalStoreResource
from musingly_pipeline.signals.lifecycle import record_snapshot_event
from musingly_pipeline.storage import snapshots

import_bundle_job = dg.define_asset_job(
    "import_bundle",
    selection=dg.AssetSelection.groups("bundles"),
    description="Stage, validate and import one bundle file as a draft snapshot "
    "(promoted only with promoted_snapshot config promote: true).",
)


class PromoteSnapshotConfig(dg.Config):
    """Promote the draft of this import, or the newest ready draft when `latest` is true."""

    import_id: str | None = None
    latest: bool = False


class RollbackConfig(dg.Config):
    """Roll back to the snapshot before the current one (or before this import's snapshot)."""

    import_id: str | None = None


class CleanupConfig(dg.Config):
    """Archive old snapshots, keeping the `keep` most recent."""

    keep: int = 5


def _snapshot_metadata(info) -> dict:
    return {"snapshot_id": str(info.id), "version_label": info.version_label, "status": info.status}


@dg.op
def promote_op(config: PromoteSnapshotConfig, postgres: PostgresResource,
               signal_store: SignalStoreResource) -> dg.Output[str]:
    if not config.import_id and not config.latest:
        raise dg.Failure(description="give import_id, or latest: true to promote the newest ready draft")
    info = snapshots.promote(postgres.get_url(), config.import_id, latest=config.latest)
    record_lifecycle(signal_store, "promoted", info, config.import_id)
    return dg.Output(str(info.id), metadata=_snapshot_metadata(info))


@dg.op
def rollback_op(config: RollbackConfig, postgres: PostgresResource,
                signal_store: SignalStoreResource) -> dg.Output[str]:
    info = snapshots.rollback(postgres.get_url(), config.import_id)
    record_snapshot_event(signal_store.open(), "rolled_back", info.id, config.import_id, info.version_label,
                          datetime.now(timezone.utc))
    return dg.Output(str(info.id), metadata=_snapshot_metadata(info))


@dg.op
def cleanup_op(config: CleanupConfig, postgres: PostgresResource) -> dg.Output[int]:
    if config.keep < 1:
        raise dg.Failure(description="keep must be at least 1: the current snapshot is always kept")
    removed = snapshots.cleanup(postgres.get_url(), config.keep)
    return dg.Output(int(removed or 0), metadata={"kept": config.keep, "removed": int(removed or 0)})


@dg.job(description="Promote a ready draft snapshot to current.")
def promote_snapshot():
    promote_op()


@dg.job(description="Roll back to the previous snapshot.")
def rollback_snapshot():
    rollback_op()


@dg.job(description="Archive and delete old snapshots, keeping the N most recent.")
def cleanup_snapshots():
    cleanup_op()


jobs = [import_bundle_job, promote_snapshot, rollback_snapshot, cleanup_snapshots]
