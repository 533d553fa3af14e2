"""The batch REST API: create, list, show, process and reprocess import batches over HTTP.

Every endpoint but ``/health`` needs ``Authorization: Bearer <token>`` with the token from
``MUSINGLY_API_TOKEN`` (compared in constant time). OpenAPI docs are at ``/docs``.
"""

import hmac
import uuid
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from musingly_pipeline import __version__
from musingly_pipeline.api.errors import ApiError, BodySizeLimit, install_error_handlers
from musingly_pipeline.api.models import (
    BATCH_TYPE_PATTERN, BatchDetailOut, BatchStatus, BatchSummaryOut, CreateBatchRequest, ErrorOut,
    FailedItemOut, HealthOut, ReprocessRequest)
from musingly_pipeline.batches import BatchManager
from musingly_pipeline.storage.database import DatabaseUnavailable

API_TOKEN_ENV = "MUSINGLY_API_TOKEN"
# Large enough for MAX_ITEMS small items; bigger bodies are refused before parsing.
MAX_BODY_BYTES = 16 * 1024 * 1024
# How many failed items GET /api/batches/{id} returns.
FAILED_ITEMS_SHOWN = 100

ERRORS = {status: {"model": ErrorOut} for status in (401, 404, 409, 413, 422, 500, 503)}


def create_app(manager: BatchManager | None = None, *, token: str | None, insecure_local: bool = False,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The API over ``manager`` (default: the project database and processors).

    ``token`` is required unless ``insecure_local`` (no authentication at all: local use only).
    """
    if not token and not insecure_local:
        raise ValueError(f"an API token is required (set {API_TOKEN_ENV}) unless insecure_local is set")
    manager = manager or BatchManager()
    expected = token.encode("utf-8") if token else None
    bearer = HTTPBearer(auto_error=False, description=f"the token in {API_TOKEN_ENV}")

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode("utf-8", "surrogateescape") if credentials else b""
        if not credentials or not hmac.compare_digest(given, expected):
            raise ApiError(401, "UNAUTHORIZED", "missing or wrong bearer token; send 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="musingly import batches", version=__version__,
                  description="Create, process and reprocess import batches. Errors are JSON with a code and a message.")
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    secured = [Depends(require_token)]

    @app.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
    def health():
        """Whether the API runs and reaches its database (no token needed)."""
        try:
            with manager.connect() as conn:
                conn.execute("SELECT 1")
        except DatabaseUnavailable:
            from fastapi.responses import JSONResponse
            return JSONResponse({"status": "unavailable", "database": False}, status_code=503)
        return {"status": "ok", "database": True}

    @app.post("/api/batches", response_model=BatchSummaryOut, status_code=201, dependencies=secured,
              responses=ERRORS)
    def create_batch(request: CreateBatchRequest):
        """Create a batch of items; with ``process: true`` process it before answering."""
        batch_id = manager.create_batch(request.batch_type, request.items, metadata=request.metadata)
        summary = manager.process_batch(batch_id) if request.process else manager.get_batch_summary(batch_id)
        return summary.to_dict()

    @app.get("/api/batches", response_model=list[BatchSummaryOut], dependencies=secured, responses=ERRORS)
    def list_batches(
        status: BatchStatus | None = None,
        batch_type: Annotated[str | None, Query(pattern=BATCH_TYPE_PATTERN)] = None,
        parent_batch_id: uuid.UUID | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ):
        """Batches, newest first, filtered by status, type or the batch they reprocess."""
        return [s.to_dict() for s in manager.list_batches(status=status, batch_type=batch_type,
                                                          parent_batch_id=parent_batch_id, limit=limit,
                                                          offset=offset)]

    @app.get("/api/batches/{batch_id}", response_model=BatchDetailOut, dependencies=secured, responses=ERRORS)
    def get_batch(batch_id: uuid.UUID):
        """A batch's summary and its first failed items with their errors."""
        summary = manager.get_batch_summary(batch_id)
        failed = manager.get_batch_items(batch_id, status="failed", limit=FAILED_ITEMS_SHOWN)
        return {
            "summary": summary.to_dict(),
            "failed_items": [FailedItemOut(id=i.id, item_index=i.item_index, attempts=i.attempts,
                                           error_code=i.error_code, error_message=i.error_message,
                                           source_data=i.source_echo, source_item_id=i.source_item_id)
                             for i in failed],
            "failed_items_shown": len(failed),
        }

    @app.post("/api/batches/{batch_id}/process", response_model=BatchSummaryOut, dependencies=secured,
              responses=ERRORS)
    def process_batch(batch_id: uuid.UUID):
        """Process a batch's pending items (resumes an interrupted run)."""
        return manager.process_batch(batch_id).to_dict()

    @app.post("/api/batches/{batch_id}/reprocess", response_model=BatchSummaryOut, status_code=201,
              dependencies=secured, responses=ERRORS)
    def reprocess_batch(batch_id: uuid.UUID, request: Annotated[ReprocessRequest | None, Body()] = None):
        """Reprocess the failed (or all) items in a new batch linked to this one; returns the new batch."""
        failed_only = request.failed_items_only if request is not None else True
        return manager.reprocess_batch(batch_id, failed_items_only=failed_only).to_dict()

    return app
