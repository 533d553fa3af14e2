"""The batch jobs: process_batch (a batch's pending items) and reprocess_failed_items (a new batch of
the failed ones), each one op that reports the batch's summary."""

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


def failed_items_markdown(items, total: int | None = None) -> str:
    """The first failed items as a Markdown table; ``total``: how many failed in all (default len(items))."""
    if not items:
        return "No failed items."
    total = len(items) if total is None else total
    rows = ["| item | code | message |", "|---|---|---|"]
    for item in items[:FAILED_ITEMS_SHOWN]:
        message = (item.error_message or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {item.item_index} | {item.error_code} | {message} |")
    if total > FAILED_ITEMS_SHOWN:
        rows.append(f"| | | … and {total - FAILED_ITEMS_SHOWN} more |")
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


class ProcessConfig(dg.Config):
    """Which batch to process (its pending items; an interrupted run is resumed)."""

    batch_id: str


def process_run_config(batch_id) -> dict:
    """The run config of a process_batch run for ``batch_id``."""
    return {"ops": {"process_items": {"config": {"batch_id": str(batch_id)}}}}


@dg.op
def process_items(context: dg.OpExecutionContext, config: ProcessConfig, batch_manager: BatchManagerResource) -> dict:
    """Process a batch's pending items (resuming an interrupted run); output its summary."""
    manager = batch_manager.manager()
    try:
        summary = manager.process_batch(config.batch_id)
    except BatchError as exc:
        raise dg.Failure(description=f"{exc.code}: {exc.message}", metadata={"code": exc.code}) from exc
    failed = manager.get_batch_items(summary.batch_id, status="failed", limit=FAILED_ITEMS_SHOWN)
    context.log.info(f"batch {summary.batch_id}: {summary.status}, {summary.completed_items} completed, "
                     f"{summary.failed_items} failed, {summary.skipped_items} skipped")
    context.add_output_metadata(summary_metadata(summary, failed_items_markdown(failed, summary.failed_items)))
    return summary.to_dict()


@dg.job(description="Process an import batch's pending items (config: batch_id); resumes an interrupted run. "
                    "The REST API launches it when MUSINGLY_DAGSTER_URL is set.")
def process_batch():
    process_items()
