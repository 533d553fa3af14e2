"""The bundle chain: raw_bundle -> validated_bundle -> draft_snapshot -> promoted_snapshot.

Each asset is one partition per bundle file. The assets call domain functions and report numbers
as metadata; the data that flows between them is small (a staged file reference, an import result).
"""


from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

import musingly_core
from musingly_core.report import Category

from musingly_pipeline.defs.bundles.partitions import bundle_partitions
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource
from musingly_pipeline.defs.signals.resources import SignalStoreResource
from musingly_pipeline.signals.lifecycle import record_snapshot_event
from musingly_pipeline.staging import StagedBundle, entity_counts, stage_bundle
from musingly_pipeline.storage import snapshots
from musingly_pipeline.validation.report import markdown_table

GROUP = "bundles"

# One blocking check per rule family: a failure is visible per check in the UI and stops the chain.
BLOCKING_CHECKS: dict[str, tuple[Category, ...]] = {
    "schema": (Category.file, Category.schema),
    "referential_integrity": (Category.references,),
    "unique_slugs": (Category.uniqueness,),
    "acyclic_links": (Category.graph,),
}


@dataclass(frozen=True)
class ValidatedBundle:
    """A staged bundle that passed (or failed) validation, with its counts."""

    staged: StagedBundle
    valid: bool
    counts: dict[str, int]


@dg.asset(group_name=GROUP, partitions_def=bundle_partitions, kinds={"json"})
def raw_bundle(context: dg.AssetExecutionContext, data_folder: DataFolderResource) -> dg.Output[StagedBundle]:
    """The bundle file as dropped, copied once to an immutable staging file named by its sha256.
    Metadata: size, sha256 and the entity counts the file states."""
    source = data_folder.bundle_path(context.partition_key)
    staged = stage_bundle(source, data_folder.staging)
    counts = entity_counts(staged.path)
    metadata = {"source": dg.MetadataValue.path(str(source)), "size_bytes": staged.size, "sha256": staged.sha256}
    if counts is not None:
        metadata.update({f"count_{k}": v for k, v in counts.items()})
    return dg.Output(staged, metadata=metadata)


@dg.asset(
    group_name=GROUP,
    partitions_def=bundle_partitions,
    check_specs=[
        *[dg.AssetCheckSpec(name, asset="validated_bundle", blocking=True,
                            description=f"no {' or '.join(c.value for c in cats)} errors")
          for name, cats in BLOCKING_CHECKS.items()],
        dg.AssetCheckSpec("content_warnings", asset="validated_bundle",
                          description="suspicious but legal content (orphan sparks, empty concepts)"),
    ],
)
def validated_bundle(context: dg.AssetExecutionContext, raw_bundle: StagedBundle):
    """The bundle checked against the contracts and every integrity and graph rule. An invalid
    bundle fails a blocking check here, so no snapshot is made from it."""
    report = musingly_core.validate(raw_bundle.path)
    yield dg.Output(
        ValidatedBundle(staged=raw_bundle, valid=report.valid, counts=dict(report.counts)),
        metadata={
            "valid": report.valid,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            **{f"count_{k}": v for k, v in report.counts.items()},
            "issues": dg.MetadataValue.md(markdown_table(report.issues)),
        },
    )
    for name, categories in BLOCKING_CHECKS.items():
        failed = [i for i in report.errors if i.category in categories]
        yield dg.AssetCheckResult(
            check_name=name, passed=not failed, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"errors": len(failed), "issues": dg.MetadataValue.md(markdown_table(failed, limit=20))},
        )
    yield dg.AssetCheckResult(
        check_name="content_warnings", passed=not report.warnings, severity=dg.AssetCheckSeverity.WARN,
        metadata={"warnings": len(report.warnings),
                  "issues": dg.MetadataValue.md(markdown_table(report.warnings, limit=20))},
    )


@dg.asset(group_name=GROUP, partitions_def=bundle_partitions, kinds={"postgres"})
def draft_snapshot(
    context: dg.AssetExecutionContext, validated_bundle: ValidatedBundle, postgres: PostgresResource,
    signal_store: SignalStoreResource,
) -> dg.Output[snapshots.ImportResult]:
    """The bundle imported into PostgreSQL as an immutable, ready draft snapshot (not yet current).
    Metadata: snapshot and import ids, rows per table, and the diff against the current snapshot.
    Writes the `import_started` and `snapshot_ready` lifecycle signals."""
    url = postgres.get_url()
    started = datetime.now(timezone.utc)
    result = snapshots.import_bundle_file(url, validated_bundle.staged.path, source_file=context.partition_key)
    store = signal_store.open()
    record_snapshot_event(store, "import_started", result.snapshot_id, result.import_id, result.version_label, started)
    record_snapshot_event(store, "snapshot_ready", result.snapshot_id, result.import_id, result.version_label,
                          datetime.now(timezone.utc))
    current = snapshots.current_snapshot(url)
    metadata: dict = {
        "snapshot_id": str(result.snapshot_id),
        "import_id": str(result.import_id),
        "version_label": result.version_label,
        "reused_existing_snapshot": result.reused,
        **{f"rows_{k}": v for k, v in result.entity_counts.items()},
    }
    if current is not None and str(current.id) != str(result.snapshot_id):
        summary = snapshots.diff_snapshots(url, current.id, result.snapshot_id).summary()
        metadata["diff_against_current"] = dg.MetadataValue.json(summary)
    return dg.Output(result, metadata=metadata)


@dg.asset_check(asset=draft_snapshot, blocking=True,
                additional_ins={"validated_bundle": dg.AssetIn("validated_bundle")})
def draft_rows_match_bundle(
    draft_snapshot: snapshots.ImportResult, validated_bundle: ValidatedBundle, postgres: PostgresResource
) -> dg.AssetCheckResult:
    """The rows stored for the snapshot equal the bundle's entity counts, table by table."""
    stored = snapshots.snapshot_row_counts(postgres.get_url(), draft_snapshot.snapshot_id)
    expected = validated_bundle.counts
    mismatched = {k: {"bundle": expected.get(k), "database": stored.get(k)}
                  for k in set(expected) | set(stored) if expected.get(k) != stored.get(k)}
    return dg.AssetCheckResult(passed=not mismatched, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"mismatched": dg.MetadataValue.json(mismatched), **{
                                   f"rows_{k}": v for k, v in stored.items()}})


class PromoteConfig(dg.Config):
    """Promotion is a person's decision: off by default, so drafts wait for review."""

    promote: bool = False


@dg.asset(group_name=GROUP, partitions_def=bundle_partitions, output_required=False, kinds={"postgres"})
def promoted_snapshot(
    context: dg.AssetExecutionContext, config: PromoteConfig, draft_snapshot: snapshots.ImportResult,
    postgres: PostgresResource, signal_store: SignalStoreResource,
):
    """The draft snapshot promoted to current (the one readers see). Materialized only when the
    run's config says `promote: true`; otherwise the draft waits and this asset is skipped."""
    if not config.promote:
        context.log.info(f"snapshot {draft_snapshot.snapshot_id} is a ready draft; promote it "
                         "with the promote_snapshot job or config promote: true")
        return
    info = snapshots.promote(postgres.get_url(), draft_snapshot.import_id)
    record_lifecycle(signal_store, "promoted", info, draft_snapshot.import_id)
    yield dg.Output(str(info.id), metadata={"snapshot_id": str(info.id), "import_id": str(draft_snapshot.import_id),
                                            "version_label": info.version_label})


def record_lifecycle(signal_store: SignalStoreResource, event: str, info: snapshots.SnapshotInfo,
                     import_id=None) -> None:
    """Write a lifecycle signal, so a replay answers which snapshot was current at any time."""
    at = info.promoted_at or datetime.now(timezone.utc)
    record_snapshot_event(signal_store.open(), event, info.id, import_id, info.version_label, at)


@dg.asset_check(asset=promoted_snapshot, blocking=True)
def exactly_one_current_snapshot(promoted_snapshot: str, postgres: PostgresResource) -> dg.AssetCheckResult:
    """Exactly one snapshot is current, and it is the one this run promoted."""
    listed = snapshots.list_snapshots(postgres.get_url())
    current = [str(s.id) for s in listed if s.status == "current"]
    return dg.AssetCheckResult(
        passed=current == [promoted_snapshot], severity=dg.AssetCheckSeverity.ERROR,
        metadata={"current_snapshots": dg.MetadataValue.json(current), "promoted": promoted_snapshot},
    )


assets = [raw_bundle, validated_bundle, draft_snapshot, promoted_snapshot]
asset_checks = [draft_rows_match_bundle, exactly_one_current_snapshot]
