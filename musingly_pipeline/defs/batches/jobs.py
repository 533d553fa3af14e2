"""The reprocess_failed_items job: one op that reprocesses a batch and reports its summary."""

import dagster as dg

from musingly_pipeline.batches import BatchError, BatchSummary
from musingly_pipeline.defs.batches.resources import BatchManagerResource

# How many failed items the run metadata lists.
FAILED_ITEMS_SHOWN = 20


class ReprocessConfig(dg.Config):
    """Which batch to reprocess, and whether only its failed items (the default) or all of them."""

    batch_id: str
    failed_items_only: bool = True


def summary_metadata(summary: BatchSummary, failed_items_table: str) -> dict:
    return {
        "batch_id": str(summary.batch_id),
        "reprocess_of": str(summary.parent_batch_id) if summary.parent_batch_id else "",
        "status": summary.status,
        "total_items": summary.total_items,
        "completed_items": summary.completed_items,
        "failed_items": summary.failed_items,
        "skipped_items": summary.skipped_items,
        "success_rate": dg.MetadataValue.float(summary.success_rate),
        "items_per_second": dg.MetadataValue.float(summary.items_per_second or 0.0),
        "failed_items_detail": dg.MetadataValue.md(failed_items_table),
    }


def failed_items_markdown(items) -> str:
    if not items:
        return "No failed items."
    rows = ["| item | code | message |", "|---|---|---|"]
    for item in items[:FAILED_ITEMS_SHOWN]:
        message = (item.error_message or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {item.item_index} | {item.error_code} | {message} |")
    if len(items) > FAILED_ITEMS_SHOWN:
        rows.append(f"| | | … and {len(items) - FAILED_ITEMS_SHOWN} more |")
    return "\n".join(rows)


@dg.op
def reprocess_batch(context: dg.OpExecutionContext, config: ReprocessConfig,
                    batch_manager: BatchManagerResource) -> dict:
    """Reprocess the failed (or all) items of a batch in a new batch; output its summary."""
    manager = batch_manager.manager()
    try:
        summary = manager.reprocess_batch(config.batch_id, failed_items_only=config.failed_items_only)
    except BatchError as exc:
        raise dg.Failure(description=f"{exc.code}: {exc.message}", metadata={"code": exc.code}) from exc
    failed = manager.get_batch_items(summary.batch_id, status="failed")
    context.log.info(f"batch {summary.batch_id}: {summary.completed_items} completed, "
                     f"{summary.failed_items} failed, {summary.skipped_items} skipped")
    context.add_output_metadata(summary_metadata(summary, failed_items_markdown(failed)))
    return summary.to_dict()


@dg.job(description="Reprocess the failed items of an import batch (config: batch_id) in a new, linked batch.")
def reprocess_failed_items():
    reprocess_batch()
