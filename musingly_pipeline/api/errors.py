"""JSON errors with a code and a message for everything the API refuses, and the Allow header.

Every error is ``{"code", "message", "details"}`` with a code of ``musingly_pipeline.errors``
(the REST API section, or the batches section for what the BatchManager refuses): :data:`ERROR_CODES`,
which the OpenAPI document lists. Every :class:`~musingly_pipeline.errors.MusinglyError` is answered
with its code and message; its HTTP status is its own ``status`` (an :class:`ApiError`, a hook's
``RequestRefused``) or :data:`STATUS_OF_CODE`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from musingly_core.report import CODES, format_path

from musingly_pipeline.errors import MusinglyError, PipelineCategory
from musingly_pipeline.storage.database import DatabaseUnavailable

logger = logging.getLogger("musingly_pipeline.api")

# Codes of the API's category that no answer carries: the server refuses to start instead.
START_CODES = frozenset({"API_CONFIG_INVALID"})
# Every code an error answer may carry: the API's own and the batch refusals (not the item outcomes).
ERROR_CODES = sorted(code for code, category in CODES.items()
                     if (category is PipelineCategory.api and code not in START_CODES)
                     or (category is PipelineCategory.batches and not code.startswith("ITEM_")))
# Error code -> HTTP status, for errors without a status of their own; other codes are 422.
STATUS_OF_CODE = {
    "BATCH_NOT_FOUND": 404,
    "BATCH_BUSY": 409,
    "BATCH_NOTHING_TO_REPROCESS": 409,
    "BATCH_HOOK_FAILED": 500,
    "BATCH_ENDPOINT_FAILED": 500,
    "PROCESSING_UNAVAILABLE": 503,
}
HTTP_CODES = {401: "UNAUTHORIZED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE"}


def error_response(status: int, code: str, message: str, details: list | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "details": details or []}, status_code=status,
                        headers=headers)


class ApiError(MusinglyError):
    """An error the API returns as is (authentication, limits): a code, an HTTP status, headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(code, message)
        self.status, self.headers = status, headers


def allowed_methods(request: Request) -> str:
    """The Allow header for the request's path: the methods of every route on it, and OPTIONS."""
    methods = {"OPTIONS"}
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MusinglyError)
    async def refused(request: Request, exc: MusinglyError):
        details = [{"path": exc.path}] if exc.path else []
        status = getattr(exc, "status", None) or STATUS_OF_CODE.get(exc.code, 422)
        return error_response(status, exc.code, exc.message, details, headers=getattr(exc, "headers", None))

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, exc: DatabaseUnavailable):
        return error_response(503, "DATABASE_UNAVAILABLE", f"the database cannot be reached: {exc}")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        details = [{"path": format_path(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
                   for e in exc.errors()[:50]]
        first = details[0] if details else {"path": "", "message": "invalid request"}
        where = f" at {first['path']}" if first["path"] else ""
        return error_response(422, "REQUEST_INVALID", f"invalid request{where}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        status = exc.status_code
        if status == 405:
            # Starlette names only the first route matching the path; a path may have several.
            allow = allowed_methods(request)
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": allow})
            return error_response(405, "METHOD_NOT_ALLOWED",
                                  f"{request.method} is not allowed on {request.url.path}; allowed: {allow}",
                                  headers={"Allow": allow})
        code = getattr(exc, "code", None) or HTTP_CODES.get(status) or (
            "REQUEST_INVALID" if status < 500 else "INTERNAL_ERROR")
        return error_response(status, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "INTERNAL_ERROR", "unexpected server error; see the server log")
