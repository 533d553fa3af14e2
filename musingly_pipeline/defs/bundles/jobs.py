"""Jobs with typed config, so import, promote, rollback and cleanup are buttons in the launchpad.

Each op calls one method of :class:`~musingly_pipeline.bundles.SnapshotStore`, which checks its
arguments, makes the change and records its lifecycle signal, exactly as the ``musingly`` command does.
"""

import dagster as dg
from pydantic import Field

from musingly_pipeline.defs.resources import PostgresResource
from musingly_pipeline.defs.signals.resources import SignalStoreResource
from musingly_pipeline.bundles import SnapshotStore
from musingly_pipeline.defs.bundles.failures import refused

import_bundle_job = dg.define_asset_job(
    "import_bundle",
    selection=dg.AssetSelection.groups("bundles"),
    description="Stage, validate and import one bundle file as a draft snapshot (config of step "
    "bundle_import: merge, remove, allow_shrink, force); promoted only with promoted_snapshot's config "
    "promote: true.",
)


class PromoteSnapshotConfig(dg.Config):
    """Promote the draft of this import, or the newest ready draft when `latest` is true."""

    import_id: str | None = Field(None, description="An import id (from `musingly imports` or a draft's metadata).")
    latest: bool = Field(False, description="Promote the newest ready draft instead.")


class RollbackConfig(dg.Config):
    """Roll back to the snapshot before the current one (or before this import's snapshot)."""

    import_id: str | None = Field(None, description="Refuse unless this import's snapshot is the current one.")


class CleanupConfig(dg.Config):
    """Delete archived snapshots beyond the `keep` most recently published."""

    keep: int = Field(5, description="How many published snapshots to keep (the current one counts).")


def _snapshot_metadata(info) -> dict:
    return {"snapshot_id": str(info.id), "version_label": info.version_label, "status": info.status}


# The ops' outputs are only metadata (type Nothing): no IO manager writes them anywhere, so a step
# runs the same on any machine (a Celery worker included).
@dg.op(out=dg.Out(dg.Nothing))
def promote_op(config: PromoteSnapshotConfig, postgres: PostgresResource, signal_store: SignalStoreResource):
    with signal_store.open() as signals, refused():
        info = SnapshotStore(postgres.get_url(), signals=signals).promote(config.import_id, latest=config.latest)
    return dg.Output(None, metadata=_snapshot_metadata(info))


@dg.op(out=dg.Out(dg.Nothing))
def rollback_op(config: RollbackConfig, postgres: PostgresResource, signal_store: SignalStoreResource):
    with signal_store.open() as signals, refused():
        info = SnapshotStore(postgres.get_url(), signals=signals).rollback(config.import_id)
    return dg.Output(None, metadata=_snapshot_metadata(info))


@dg.op(out=dg.Out(dg.Nothing))
def cleanup_op(config: CleanupConfig, postgres: PostgresResource):
    with refused():
        removed = SnapshotStore(postgres.get_url()).cleanup(config.keep)
    return dg.Output(None, metadata={"kept": config.keep, "removed": int(removed or 0)})


@dg.job(description="Promote a ready draft snapshot to current.")
def promote_snapshot():
    promote_op()


@dg.job(description="Roll back to the previous snapshot.")
def rollback_snapshot():
    rollback_op()


@dg.job(description="Delete archived snapshots beyond the N most recently published.")
def cleanup_snapshots():
    cleanup_op()


jobs = [import_bundle_job, promote_snapshot, rollback_snapshot, cleanup_snapshots]
