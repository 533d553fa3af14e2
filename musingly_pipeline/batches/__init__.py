"""Import batches: write a processor for a batch type, and every multi-item import gets a batch id,
per-item status, an audit log and one-call reprocessing of what failed.

    class CustomerDataProcessor(BaseProcessor):          # handles batch type 'customer_data'
        def validate_item(self, item, ctx):
            return "@" in item.source_data.get("email", "")
        def process_item(self, item, ctx):
            ctx.execute("INSERT INTO customers ... ON CONFLICT ...", (...))
            return {"target_table": "customers", "target_id": item.source_data["email"]}

    manager = BatchManager()
    manager.registry.register(CustomerDataProcessor)     # or manager.registry.discover("myapp.processors")
    summary = manager.process_batch(manager.create_batch("customer_data", items))
    if summary.failed_items:
        manager.reprocess_batch(summary.batch_id, failed_items_only=True)

A batch type may also have an endpoint (``CustomerDataEndpoint``, see ``batches.endpoints``): a
``before_create_batch`` hook for REST API requests and an ``after_batch_complete`` hook that runs
at the end of every completed processing run, however it was started.

Where things live: ``manager`` (BatchManager, the one object both faces call), ``processor``,
``context`` and ``endpoints`` (what a batch type writes), ``registry`` (which class serves which
type), ``chunk`` (the plain way a chunk's items run, under savepoints) and ``pipelined`` (its fast
path in pipeline mode), ``store`` (the SQL of the batch tables) and ``records`` (their rows),
``item_json`` (JSON as the tables take it), ``errors`` (BatchError and the hooks' refusals).
"""

from musingly_pipeline.batches.context import ImportContext
from musingly_pipeline.batches.endpoints import BaseEndpoint, EndpointContext
from musingly_pipeline.batches.errors import BatchError, BatchRefused, RequestRefused
from musingly_pipeline.batches.manager import BatchManager, as_batch_id
from musingly_pipeline.batches.processor import BaseProcessor, batch_type_for, content_key
from musingly_pipeline.batches.registry import PROCESSOR_PACKAGES, ProcessorRegistry, default_registry
from musingly_pipeline.batches.records import BatchSummary, ImportBatchItem, ItemRecord, LogRecord

__all__ = [
    "BaseEndpoint",
    "BaseProcessor",
    "BatchError",
    "BatchManager",
    "BatchRefused",
    "BatchSummary",
    "EndpointContext",
    "ImportBatchItem",
    "ImportContext",
    "ItemRecord",
    "LogRecord",
    "PROCESSOR_PACKAGES",
    "ProcessorRegistry",
    "RequestRefused",
    "as_batch_id",
    "batch_type_for",
    "content_key",
    "default_registry",
]
