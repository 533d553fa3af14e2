"""The bundle chain: raw_bundle -> validated_bundle -> draft_snapshot -> promoted_snapshot.

One partition per bundle file name: ``x.json``, or ``incremental/x.json`` for a partial bundle that
is merged onto the current snapshot. The first three assets are made by one step,
``bundle_import``, which calls ``SnapshotStore.import_file`` once: the bundle is read once,
validated once (its integrity rules run while its rows load) and finalized as a ready draft; each
asset then reports its part, and every check judges this partition only. An invalid bundle fails
its blocking check on ``validated_bundle`` and leaves no snapshot.

Nothing passes between steps through an IO manager or a local path: the bytes a run imports are
staged in PostgreSQL by sha256 (run tag ``musingly/sha256``, set by the inbox sensor), and
``promoted_snapshot`` finds the draft of its partition in the instance's record of
``draft_snapshot``'s materializations. So any step can run on any machine.
"""


import warnings

import dagster as dg
from musingly_core.report import Category, ValidationReport
from pydantic import Field

from musingly_pipeline.defs.bundles.partitions import bundle_partitions
from musingly_pipeline.defs.resources import DataFolderResource, PostgresResource
from musingly_pipeline.defs.signals.resources import SignalStoreResource
from musingly_pipeline.bundles import BundleInvalid, ImportResult, SnapshotStore, SourceFile
from musingly_pipeline.bundles.inbox import is_incremental
from musingly_pipeline.defs.bundles.failures import failure, refused
from musingly_pipeline.errors import MusinglyError
from musingly_pipeline.defs.metadata import markdown_table

# Partitioned asset checks are a preview feature in Dagster 1.13; they are what judges one partition.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")

GROUP = "bundles"
SHA_TAG = "musingly/sha256"
RAW, VALIDATED, DRAFT = (dg.AssetKey(k) for k in ("raw_bundle", "validated_bundle", "draft_snapshot"))

# One blocking check per rule family: a failure is visible per check in the UI and stops the chain.
BLOCKING_CHECKS: dict[str, tuple[tuple[Category, ...], str]] = {
    "schema": ((Category.file, Category.schema),
               "The file is readable UTF-8 JSON that matches the bundle contract: supported schema_version, "
               "required fields present, no unknown fields, every value of the right type and range."),
    "referential_integrity": ((Category.references,),
                              "Every slug a row refers to (a trail's domain, a junction's spark, a link's ends) is "
                              "defined in the bundle, or in the merged content when merging."),
    "unique_slugs": ((Category.uniqueness,),
                     "Each slug is used once per entity kind, and each junction and link appears once."),
    "acyclic_links": ((Category.graph,),
                      "No link points to itself, and the spark and concept prerequisite graphs have no cycle."),
}
WARNINGS_CHECK = "content_warnings"
ROWS_CHECK = "draft_rows_match_bundle"
# Changed keys listed per kind in a draft's diff metadata (the counts are always complete).
DIFF_KEYS_SHOWN = 20


class BundleImportConfig(dg.Config):
    """How to import the partition's bundle (the launchpad's form for the ``bundle_import`` step)."""

    merge: bool = Field(False, description="Apply the bundle onto the current snapshot by slug (a partial, "
                        "incremental bundle). Always on for partitions under incremental/.")
    remove: list[str] = Field(default_factory=list, description="With merge: rows to take out, as KIND:SLUG "
                              "(sparks:old-lesson) or KIND:A->B (spark_links:a->b).")
    allow_shrink: bool = Field(False, description="Allow a full import that drops more than half of the current "
                               "snapshot's sparks.")
    force: bool = Field(False, description="Make a new snapshot even if a ready or current one has this content.")


@dg.multi_asset(
    name="bundle_import",
    specs=[
        dg.AssetSpec(RAW, group_name=GROUP, kinds={"json"},
                     description="The bundle's bytes as accepted for import: staged in PostgreSQL by sha256 when "
                     "the inbox sensor decided the file was complete. Metadata: size and sha256."),
        dg.AssetSpec(VALIDATED, group_name=GROUP, deps=[RAW], skippable=True,
                     description="The bundle checked against the contracts and every integrity and graph rule "
                     "(for a merge: the file, then the merged content). Metadata: counts and issues."),
        dg.AssetSpec(DRAFT, group_name=GROUP, deps=[VALIDATED], skippable=True, kinds={"postgres"},
                     description="The bundle imported as an immutable, ready draft snapshot (not yet current). "
                     "Metadata: snapshot and import ids, rows per table, the diff against the current snapshot."),
    ],
    # Partitioned checks: each evaluation is recorded for the run's partition (one bundle file).
    check_specs=[
        *[dg.AssetCheckSpec(name, asset=VALIDATED, blocking=True, description=text, partitions_def=bundle_partitions)
          for name, (_, text) in BLOCKING_CHECKS.items()],
        dg.AssetCheckSpec(WARNINGS_CHECK, asset=VALIDATED, partitions_def=bundle_partitions,
                          description="No suspicious but legal content: orphan sparks, empty concepts, published "
                          "trails in unpublished domains."),
        dg.AssetCheckSpec(ROWS_CHECK, asset=DRAFT, blocking=True, partitions_def=bundle_partitions,
                          description="The rows stored for the snapshot equal the bundle's entities, table by table "
                          "(for a merge: the merged content's)."),
    ],
    partitions_def=bundle_partitions,
    can_subset=False,
    pool="postgres_import",  # limited by the instance file (concurrency: pools), across runs and workers
)
def bundle_import(context: dg.AssetExecutionContext, config: BundleImportConfig, data_folder: DataFolderResource,
                  postgres: PostgresResource, signal_store: SignalStoreResource):
    """Read the partition's bundle once (the staged bytes its run names, or the file), validate it,
    and import it as a ready draft snapshot; report raw_bundle, validated_bundle and draft_snapshot."""
    key = context.partition_key
    url = postgres.get_url()
    sha = context.run.tags.get(SHA_TAG)
    if sha:
        with refused():
            path = SnapshotStore(url).fetch_staged(sha, data_folder.staging_cache)
    else:
        path = data_folder.bundle_path(key)
    merge = config.merge or is_incremental(key)
    with signal_store.open() as signals:
        try:
            result = SnapshotStore(url, signals=signals).import_file(
                path, expect_sha256=sha, source_file=key, merge=merge, remove=config.remove,
                allow_shrink=config.allow_shrink, force=config.force)
        except BundleInvalid as exc:
            if exc.source is not None:
                yield _raw_result(exc.source, path, sha)
            yield from _validation_results(exc.report)
            failed = sorted({name for name, (cats, _) in BLOCKING_CHECKS.items()
                             if any(i.category in cats for i in exc.report.errors)})
            raise dg.Failure(
                description=f"{exc.code}: {key} is invalid: blocking check {', '.join(failed)} failed "
                f"({len(exc.report.errors)} error(s)); first: {exc.report.errors[0]}. Nothing was imported; "
                "fix the file and drop it again.",
                metadata={"code": exc.code,
                          "issues": dg.MetadataValue.md(markdown_table(exc.report.errors, limit=20))},
                allow_retries=False) from None
        except MusinglyError as exc:
            if getattr(exc, "source", None) is not None:
                yield _raw_result(exc.source, path, sha)
            raise failure(exc) from None
    yield _raw_result(result.source, path, sha)
    report = ValidationReport(file=key, issues=list(result.warnings), counts=dict(result.source.counts))
    yield from _validation_results(report, merged=result.entity_counts if result.merged else None)
    yield dg.MaterializeResult(asset_key=DRAFT, metadata=_draft_metadata(url, result))
    yield _rows_check(url, result)
    if result.lifecycle_error:  # the draft is ready (materialized above); the run says what is missing
        raise failure(MusinglyError("LIFECYCLE_SIGNAL_NOT_WRITTEN", result.lifecycle_error))


def _rows_check(url: str, result: ImportResult) -> dg.AssetCheckResult:
    expected = result.entity_counts if result.merged else result.source.counts
    try:
        stored = SnapshotStore(url).snapshot_row_counts(result.snapshot_id)
    except Exception as exc:  # noqa: BLE001 - the draft is committed: the check says what it could not do
        return dg.AssetCheckResult(
            asset_key=DRAFT, check_name=ROWS_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
            description=f"snapshot {result.snapshot_id} is a ready draft, but its rows could not be counted: {exc}")
    mismatched = {k: {"bundle": expected.get(k), "database": stored.get(k)}
                  for k in sorted(set(expected) | set(stored)) if expected.get(k) != stored.get(k)}
    return dg.AssetCheckResult(
        asset_key=DRAFT, check_name=ROWS_CHECK, passed=not mismatched, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"mismatched": dg.MetadataValue.json(mismatched), **{f"rows_{k}": v for k, v in stored.items()}})


def _raw_result(source: SourceFile, path, sha: str | None) -> dg.MaterializeResult:
    metadata = {"size_bytes": source.size, "sha256": source.sha256 or "",
                "read_from": dg.MetadataValue.path(str(path)),
                "staged": bool(sha)}
    return dg.MaterializeResult(asset_key=RAW, metadata=metadata)


def _validation_results(report: ValidationReport, merged: dict[str, int] | None = None):
    metadata = {
        "valid": report.valid,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        **{f"count_{k}": v for k, v in report.counts.items()},
        "issues": dg.MetadataValue.md(markdown_table(report.issues)),
    }
    if merged is not None:
        metadata["merged_counts"] = dg.MetadataValue.json(merged)
    yield dg.MaterializeResult(asset_key=VALIDATED, metadata=metadata)
    for name, (categories, _) in BLOCKING_CHECKS.items():
        failed = [i for i in report.errors if i.category in categories]
        yield dg.AssetCheckResult(
            asset_key=VALIDATED, check_name=name, passed=not failed, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"errors": len(failed), "issues": dg.MetadataValue.md(markdown_table(failed, limit=20))})
    yield dg.AssetCheckResult(
        asset_key=VALIDATED, check_name=WARNINGS_CHECK, passed=not report.warnings,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"warnings": len(report.warnings), "issues": dg.MetadataValue.md(markdown_table(report.warnings, limit=20))})


def _draft_metadata(url: str, result: ImportResult) -> dict:
    metadata: dict = {
        "snapshot_id": str(result.snapshot_id),
        "import_id": str(result.import_id),
        "version_label": result.version_label,
        "reused_existing_snapshot": result.reused,
        "merged": result.merged,
        **{f"rows_{k}": v for k, v in result.entity_counts.items()},
    }
    if result.parent_id is None or result.parent_id == result.snapshot_id:
        return metadata
    # Reported after the commit, for the reviewer: a failure here is shown, not raised, because the
    # draft is ready whatever the diff says.
    try:
        diff = SnapshotStore(url).diff(result.parent_id, result.snapshot_id)
    except Exception as exc:  # noqa: BLE001 - reported in the metadata instead
        metadata["diff_against_current"] = f"not available: {type(exc).__name__}: {exc}"
        return metadata
    metadata["diff_against_current"] = dg.MetadataValue.json({
        "from": {"id": str(result.parent_id), "version_label": diff.from_snapshot.version_label if diff.from_snapshot else None},
        "summary": diff.summary(),
        "changed_fields": {kind: {k: list(v) for k, v in list(d.fields.items())[:DIFF_KEYS_SHOWN]}
                           for kind, d in diff.kinds.items() if d.fields},
        "added": {kind: list(d.added[:DIFF_KEYS_SHOWN]) for kind, d in diff.kinds.items() if d.added},
        "removed": {kind: list(d.removed[:DIFF_KEYS_SHOWN]) for kind, d in diff.kinds.items() if d.removed},
    })
    return metadata


class PromoteConfig(dg.Config):
    """Promotion is a person's decision: off by default, so drafts wait for review."""

    promote: bool = False


@dg.asset(group_name=GROUP, partitions_def=bundle_partitions, deps=[DRAFT], output_required=False,
          kinds={"postgres"})
def promoted_snapshot(context: dg.AssetExecutionContext, config: PromoteConfig, postgres: PostgresResource,
                      signal_store: SignalStoreResource):
    """The partition's latest draft promoted to current (the snapshot readers see). Materialized only
    when the run's config says `promote: true`; otherwise the draft waits and this asset is skipped."""
    if not config.promote:
        context.log.info(f"the draft of {context.partition_key} waits for review; promote it with the "
                         "promote_snapshot job, or run this asset with config promote: true")
        return
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DRAFT, asset_partitions=[context.partition_key]), limit=1).records
    if not records:
        raise dg.Failure(description=f"SNAPSHOT_NOT_FOUND: partition {context.partition_key} has no draft snapshot "
                         "yet; materialize draft_snapshot first", metadata={"code": "SNAPSHOT_NOT_FOUND"},
                         allow_retries=False)
    import_id = records[0].asset_materialization.metadata["import_id"].value
    with signal_store.open() as signals, refused():
        info = SnapshotStore(postgres.get_url(), signals=signals).promote(import_id)
    yield dg.MaterializeResult(metadata={"snapshot_id": str(info.id), "import_id": import_id,
                                         "version_label": info.version_label})


@dg.asset_check(asset=promoted_snapshot, partitions_def=bundle_partitions, blocking=True,
                description="Exactly one snapshot is current, and it is the one this partition promoted.")
def exactly_one_current_snapshot(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=promoted_snapshot.key, asset_partitions=[context.partition_key]),
        limit=1).records
    promoted = records[0].asset_materialization.metadata["snapshot_id"].value if records else None
    current = [str(s.id) for s in SnapshotStore(postgres.get_url()).list_snapshots() if s.status == "current"]
    return dg.AssetCheckResult(
        passed=current == [promoted], severity=dg.AssetCheckSeverity.ERROR,
        metadata={"current_snapshots": dg.MetadataValue.json(current), "promoted": promoted or ""})


assets = [bundle_import, promoted_snapshot]
asset_checks = [exactly_one_current_snapshot]
