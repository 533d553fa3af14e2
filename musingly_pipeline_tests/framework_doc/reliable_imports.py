"""Where the names the framework document imports from ``reliable_imports`` live in this project
(only the document's examples in this folder import it)."""

from musingly_pipeline.api import APIManager
from musingly_pipeline.batches import (
    BaseEndpoint, BaseProcessor, BatchManager, EndpointContext, ImportBatchItem, ImportContext)

__all__ = ["APIManager", "BaseEndpoint", "BaseProcessor", "BatchManager", "EndpointContext", "ImportBatchItem",
           "ImportContext"]
