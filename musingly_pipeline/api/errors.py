"""JSON errors with a code and a message for everything the API refuses, and the request size limit."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from musingly_core.report import format_path

from musingly_pipeline.storage.batches import BatchError
from musingly_pipeline.storage.database import DatabaseUnavailable

logger = logging.getLogger("musingly_pipeline.api")

# Batch error code -> HTTP status; unknown codes are 422.
STATUS_OF_CODE = {
    "BATCH_NOT_FOUND": 404,
    "BATCH_BUSY": 409,
    "BATCH_NOTHING_TO_REPROCESS": 409,
    "BATCH_HOOK_FAILED": 500,
}
HTTP_CODES = {401: "UNAUTHORIZED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE"}


def error_response(status: int, code: str, message: str, details: list | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "details": details or []}, status_code=status,
                        headers=headers)


class ApiError(Exception):
    """An error the API returns as is (authentication, limits)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(BatchError)
    async def batch_error(request: Request, exc: BatchError):
        details = [{"path": exc.path}] if exc.path else []
        return error_response(STATUS_OF_CODE.get(exc.code, 422), exc.code, exc.message, details)

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
        code = HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "INTERNAL_ERROR", "unexpected server error; see the server log")


class BodySizeLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413, before the app parses it."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, send):
        payload = json.dumps({"code": "REQUEST_TOO_LARGE",
                              "message": f"request body over {self.max_bytes} bytes; send fewer items per batch",
                              "details": []}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
