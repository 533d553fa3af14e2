"""The import batch REST API (FastAPI): ``APIManager(manager).run(host, port)``, or `musingly api`."""

from musingly_pipeline.api.app import API_TOKEN_ENV, MAX_BODY_BYTES
from musingly_pipeline.api.manager import DAGSTER_URL_ENV, APIManager, ApiConfigError
from musingly_pipeline.batches import BatchManager

__all__ = ["API_TOKEN_ENV", "APIManager", "ApiConfigError", "BatchManager", "DAGSTER_URL_ENV", "MAX_BODY_BYTES"]
