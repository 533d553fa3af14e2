"""The batch REST API's routes: create, list, show, process and reprocess import batches over HTTP.

Build it with :class:`musingly_pipeline.api.APIManager`. Every endpoint but ``/health`` needs
``Authorization: Bearer <token>``; the token says who calls (its user id). Processing never runs
inside a request: ``process: true``, ``/process`` and ``/reprocess`` hand the batch to a runner
(``api.runners``) and answer ``202 Accepted`` with the batch's URL, where ``GET`` shows progress.
OpenAPI docs are at ``/docs``.
"""


import hmac
import tempfile
import uuid
from collections.abc import Mapping
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Body, Depends, FastAPI, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from musingly_pipeline import __version__
from musingly_pipeline.bundles import PushRefused, SnapshotStore
from musingly_pipeline.bundles.staging import MAX_PUSH_BYTES
from musingly_pipeline.api import openapi
from musingly_pipeline.api.body import MAX_DEPTH, BodySizeLimit, StrictJSONRoute
from musingly_pipeline.api.errors import ApiError, install_error_handlers
from musingly_pipeline.api.models import (
    BATCH_TYPE_PATTERN, AcceptedOut, BatchDetailOut, BatchStatus, BatchSummaryOut, CreateBatchRequest, ErrorOut,
    FailedItemOut, HealthOut, ProgressOut, PushOut, ReprocessRequest)
from musingly_pipeline.api.runners import Runner
from musingly_pipeline.batches import BatchError, BatchManager
from musingly_pipeline.storage.database import DatabaseUnavailable

API_TOKEN_ENV = "MUSINGLY_API_TOKEN"
# Large enough for MAX_ITEMS small items; bigger bodies are refused before parsing.
MAX_BODY_BYTES = 16 * 1024 * 1024
# Where bundles are handed to the inbox (streamed: not subject to MAX_BODY_BYTES).
INBOX_PATH = "/api/inbox"
PUSH_NAME_PATTERN = r"^(incremental/)?[^/.][^/]*\.json$"
# How many failed items GET /api/batches/{id} returns.
FAILED_ITEMS_SHOWN = 100
# The user id of every caller when the API runs without authentication (--insecure-local).
LOCAL_USER = "local"

DESCRIPTION = f"""Create, process and reprocess import batches; hand bundles to the inbox (`POST /api/inbox`).

Processing runs in the background: `process: true`, `/process` and `/reprocess` answer `202 Accepted`
with the batch's URL (body `url` and the `Location` header); `GET` it for `progress` (items done of
total, and whether a run works on it now).

Errors are JSON `{{"code", "message", "details"}}`; `code` is one of the enum of `ErrorOut`. Bodies
must be UTF-8 JSON (`REQUEST_NOT_UTF8`), nested at most {MAX_DEPTH} levels (`REQUEST_TOO_DEEP`), at most
the server's size limit (`REQUEST_TOO_LARGE`); booleans are `true`/`false`, never 0/1 or strings.
`OPTIONS` on any path answers 204 with `Allow`; other methods a path does not have answer 405 with `Allow`."""


def error_responses(*statuses: int) -> dict:
    return {status: {"model": ErrorOut} for status in statuses}


def batch_url(batch_id: uuid.UUID) -> str:
    return f"/api/batches/{batch_id}"


def build_app(manager: BatchManager, runner: Runner, tokens: Mapping[str, str] | None, *,
              max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The API over ``manager``; ``tokens`` maps bearer tokens to user ids (None: no authentication)."""
    expected = [(token.encode("utf-8"), user) for token, user in (tokens or {}).items()]
    bearer = HTTPBearer(auto_error=False, description=f"a token the server knows (`musingly api`: {API_TOKEN_ENV})")

    def caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        """The caller's user id, from its token (compared in constant time with every known token)."""
        if tokens is None:
            return LOCAL_USER
        given = credentials.credentials.encode("utf-8", "surrogateescape") if credentials else b""
        user = None
        for token, name in expected:  # every token is compared: the time does not tell which one is close
            if hmac.compare_digest(given, token):
                user = name
        if user is None:
            raise ApiError(401, "UNAUTHORIZED", "missing or wrong bearer token; send 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})
        return user

    User = Annotated[str, Depends(caller)]
    secured = [Depends(caller)]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await anyio.to_thread.run_sync(runner.close)

    app = FastAPI(title="musingly import batches", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.router.route_class = StrictJSONRoute
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes, streamed=(INBOX_PATH,))
    examples = openapi.request_examples(manager.registry)

    def accepted(batch_id: uuid.UUID, user: str, *, undo_creation: bool) -> JSONResponse:
        """Hand the batch to the runner and answer 202; if it cannot take it, undo a creation and refuse."""
        try:
            submission = runner.submit(batch_id, user)
        except BatchError:
            if undo_creation:
                manager.delete_pending_batch(batch_id)
            raise
        url = batch_url(batch_id)
        body = AcceptedOut(batch_id=batch_id, url=url, runner=submission.runner,
                           dagster_run_id=submission.dagster_run_id,
                           summary=manager.get_batch_summary(batch_id).to_dict())
        return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": url})

    @app.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, operation_id="health")
    def health():
        """Whether the API runs and reaches its database (no token needed)."""
        try:
            with manager.connect() as conn:
                conn.execute("SELECT 1")
        except DatabaseUnavailable:
            return JSONResponse({"status": "unavailable", "database": False}, status_code=503)
        return {"status": "ok", "database": True}

    @app.post("/api/batches", response_model=BatchSummaryOut, status_code=201, operation_id="createBatch",
              responses={202: {"model": AcceptedOut, "description": "Created, and accepted for processing"},
                         **error_responses(400, 401, 403, 409, 413, 422, 429, 500, 503)})
    def create_batch(request: Annotated[CreateBatchRequest, Body(openapi_examples=examples or None)],
                     response: Response, user: User):
        """Create a batch of items (201); with ``process: true`` also process it in the background (202).

        The batch type's endpoint hook ``before_create_batch`` may refuse the request (``BATCH_REFUSED``,
        with 403, 409, 422 or 429).
        """
        batch_id, created = manager.create_batch_for_request(request.model_dump(), user_id=user)
        if created.get("process"):
            return accepted(batch_id, user, undo_creation=True)
        response.headers["Location"] = batch_url(batch_id)
        return manager.get_batch_summary(batch_id).to_dict()

    @app.get("/api/batches", response_model=list[BatchSummaryOut], operation_id="listBatches",
             dependencies=secured, responses=error_responses(400, 401, 422, 500, 503))
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

    @app.get("/api/batches/{batch_id}", response_model=BatchDetailOut, operation_id="getBatch",
             dependencies=secured, responses=error_responses(400, 401, 404, 422, 500, 503))
    def get_batch(batch_id: uuid.UUID):
        """A batch's summary, its progress and its first failed items with their errors."""
        summary = manager.get_batch_summary(batch_id)
        running = manager.is_batch_running(batch_id)
        failed = manager.get_batch_items(batch_id, status="failed", limit=FAILED_ITEMS_SHOWN)
        done = summary.done_items
        return {
            "summary": summary.to_dict(),
            "progress": ProgressOut(done_items=done, total_items=summary.total_items,
                                    percent=round(100 * done / summary.total_items, 2), running=running),
            "failed_items": [FailedItemOut(id=i.id, item_index=i.item_index, attempts=i.attempts,
                                           error_code=i.error_code, error_message=i.error_message,
                                           source_data=i.source_echo, source_item_id=i.source_item_id)
                             for i in failed],
            "failed_items_shown": len(failed),
        }

    @app.post("/api/batches/{batch_id}/process", response_model=BatchSummaryOut, operation_id="processBatch",
              responses={200: {"description": "The batch was already completed: nothing to do"},
                         202: {"model": AcceptedOut, "description": "Accepted for processing"},
                         **error_responses(400, 401, 404, 409, 422, 500, 503)})
    def process_batch(batch_id: uuid.UUID, user: User):
        """Process a batch's pending items in the background (202; resumes an interrupted run).

        A completed batch is returned as is (200). A batch queued or being processed is ``BATCH_BUSY`` (409).
        """
        summary = manager.get_batch_summary(batch_id)
        if summary.status == "completed":
            return summary.to_dict()
        if runner.is_queued(batch_id) or manager.is_batch_running(batch_id):
            raise BatchError("BATCH_BUSY", f"batch {batch_id} is already queued or being processed; "
                             f"GET {batch_url(batch_id)} shows its progress")
        return accepted(batch_id, user, undo_creation=False)

    @app.post("/api/batches/{batch_id}/reprocess", status_code=202, response_model=AcceptedOut,
              operation_id="reprocessBatch", responses=error_responses(400, 401, 404, 409, 422, 500, 503))
    def reprocess_batch(batch_id: uuid.UUID, user: User,
                        request: Annotated[ReprocessRequest | None, Body(
                            openapi_examples={"failed": {"value": {"failed_items_only": True}},
                                              "all": {"value": {"failed_items_only": False}}})] = None):
        """Copy the failed (or all) items into a new batch linked to this one, and process it in the
        background (202, with the new batch's URL). Items already applied are skipped."""
        failed_only = request.failed_items_only if request is not None else True
        new = manager.reprocess_batch(batch_id, failed_items_only=failed_only, process=False, created_by=user)
        return accepted(new.batch_id, user, undo_creation=True)

    @app.post(INBOX_PATH, status_code=202, response_model=PushOut, operation_id="pushBundle",
              responses=error_responses(400, 401, 413, 422, 500, 503),
              openapi_extra={"requestBody": {"required": True, "description": "The bundle file's bytes, as is.",
                                             "content": {"application/json": {"schema": {"type": "object"}}}}})
    async def push_bundle(request: Request, user: User,
                          name: Annotated[str, Query(pattern=PUSH_NAME_PATTERN, max_length=255,
                                                     description="Its inbox name: NAME.json, or incremental/NAME.json "
                                                     "to merge it onto the current snapshot.")]):
        """Hand a bundle to the inbox from any machine (the body is the bundle file, up to 1 GiB): its
        bytes are staged in PostgreSQL by sha256, and the running Dagster deployment's inbox sensor
        imports it as a dropped file (``musingly inbox push`` does the same). Nothing is validated here:
        the import run does it."""
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as body:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_PUSH_BYTES:
                    raise ApiError(413, "REQUEST_TOO_LARGE", f"a bundle may be at most {MAX_PUSH_BYTES >> 20} "
                                   "MiB; split it into several bundles (merge the later ones)")
                body.write(chunk)
            body.seek(0)
            start = body.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
            if start != b"{":
                raise ApiError(422, "INBOX_PUSH_REFUSED", "the body must be the bundle file: a JSON object"
                               + (" (it is empty)" if size == 0 else ""))
            body.seek(0)
            try:
                push = await anyio.to_thread.run_sync(
                    lambda: SnapshotStore(manager.database_url).push(body, name, pushed_by=user))
            except PushRefused as exc:
                raise ApiError(422, "INBOX_PUSH_REFUSED", exc.message) from None
        return PushOut(push_id=push.id, name=push.name, sha256=push.sha256, size=push.size, duplicate=push.duplicate)

    def document() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = openapi.complete(schema, manager.registry)
        return app.openapi_schema

    app.openapi = document
    return app
