"""The import batch REST API (FastAPI); start it with `musingly api`."""

from musingly_pipeline.api.app import API_TOKEN_ENV, MAX_BODY_BYTES, create_app

__all__ = ["API_TOKEN_ENV", "MAX_BODY_BYTES", "create_app"]
