"""What the API refuses before an endpoint sees a request body: too large, not UTF-8, nested too deep.

JSON bodies are read by :class:`StrictJSONRoute` (FastAPI's documented way to customise how a
route reads its request) instead of FastAPI's ``json.loads`` of whatever encoding the bytes
happen to be in: a body must be UTF-8 (RFC 8259), and no deeper than :data:`MAX_DEPTH` levels of
arrays and objects. Python's parser gives up with a RecursionError somewhere near 1,000 levels,
depending on how deep the stack already is; a documented limit well below that is the same on
every request, and keeps deep values away from the code that encodes, stores and hashes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

# Levels of arrays and objects a JSON body may nest (the body's own object is level 1, so an
# item of POST /api/batches has 61 below itself). .NET's System.Text.Json has the same default.
MAX_DEPTH = 64


class BodyRefused(HTTPException):
    """A body the API cannot read: 400 with a code. An HTTPException, so FastAPI passes it on as is."""

    def __init__(self, code: str, message: str):
        super().__init__(400, message)
        self.code = code


def parse_json_body(body: bytes) -> Any:
    """The JSON value of a request body, or BodyRefused (REQUEST_NOT_UTF8, REQUEST_TOO_DEEP).

    Invalid JSON raises json.JSONDecodeError, which FastAPI reports as a validation error.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused("REQUEST_NOT_UTF8", f"the request body is not UTF-8 (byte {exc.start} cannot be decoded); "
                          "send JSON encoded as UTF-8") from None
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        too_deep = True
    else:
        too_deep = nests_deeper_than(value, MAX_DEPTH)
    if too_deep:
        raise BodyRefused("REQUEST_TOO_DEEP", f"the request body nests arrays and objects more than {MAX_DEPTH} "
                          "levels deep; flatten the items")
    return value


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) has more than ``limit`` levels of arrays and objects."""
    if type(value) not in (dict, list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in (node.values() if type(node) is dict else node):
            if type(child) in (dict, list):
                stack.append((child, depth + 1))
    return False


class StrictJSONRequest(Request):
    """A request whose ``json()`` is :func:`parse_json_body`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_body(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute that reads JSON bodies with :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


class BodySizeLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413, before the app parses it.
    Requests to ``streamed`` paths pass through unread: their endpoint streams the body itself (a
    bundle upload, up to 1 GiB, never held in memory) and applies its own limit."""

    def __init__(self, app, max_bytes: int, streamed: tuple[str, ...] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in self.streamed:
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
