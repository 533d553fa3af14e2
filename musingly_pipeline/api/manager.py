"""APIManager: the batch REST API over a BatchManager, in one line.

    manager = BatchManager()
    manager.registry.discover("myapp.processors")      # *Processor and *Endpoint classes
    APIManager(manager).run(host="0.0.0.0", port=8000)  # token from MUSINGLY_API_TOKEN

``.app`` is the ASGI application for any server (``uvicorn myapp.api:app`` with
``app = APIManager(manager).app``); ``.run(host, port)`` serves it with uvicorn. ``musingly api`` is
this class with the project's processors.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from musingly_pipeline.api.app import API_TOKEN_ENV, MAX_BODY_BYTES, build_app
from musingly_pipeline.api.runners import DagsterRunner, Runner, WorkerPool
from musingly_pipeline.batches import BatchManager
from musingly_pipeline.errors import MusinglyError

DAGSTER_URL_ENV = "MUSINGLY_DAGSTER_URL"
# Threads of the worker pool: batches processed at once by one API process (one connection each).
DEFAULT_WORKERS = 2
# The user id of a single token's caller (without authentication every caller is "local").
TOKEN_USER = "api"
NO_TOKEN = (f"refusing to start without a token: set {API_TOKEN_ENV}, or pass --insecure-local "
            "(APIManager(insecure_local=True)) to serve without authentication on this machine only")


class ApiConfigError(MusinglyError, ValueError):
    """The API cannot start as configured (``API_CONFIG_INVALID``); the message says what to set."""

    def __init__(self, message: str):
        super().__init__("API_CONFIG_INVALID", message)


class APIManager:
    """The batch REST API over ``manager`` (default: the project's database and processors).

    - ``token``: the bearer token (its caller's user id is ``"api"``), or a mapping of tokens to
      user ids (the id endpoint hooks see as ``ctx.user_id`` and batches record as ``created_by``).
      Default: ``MUSINGLY_API_TOKEN``. Without a token the API refuses to start unless
      ``insecure_local`` (no authentication, user ``"local"``, loopback addresses only).
    - ``dagster_url``: the Dagster webserver that processes batches (``process_batch`` runs).
      Default: ``MUSINGLY_DAGSTER_URL``; unset, a pool of ``workers`` threads in this process does.
    - ``max_body_bytes``: larger request bodies get 413.

    An endpoint class whose batch type no processor handles is refused (BATCH_PROCESSOR_INVALID).
    """

    def __init__(self, manager: BatchManager | None = None, *, token: str | Mapping[str, str] | None = None,
                 insecure_local: bool = False, dagster_url: str | None = None, workers: int = DEFAULT_WORKERS,
                 max_body_bytes: int = MAX_BODY_BYTES):
        tokens = bearer_tokens(os.environ.get(API_TOKEN_ENV, "") if token is None else token)
        if not tokens and not insecure_local:
            raise ApiConfigError(NO_TOKEN)
        self.manager = manager if manager is not None else BatchManager()
        self.manager.registry.check_endpoints()
        self.authenticated = bool(tokens)
        url = (os.environ.get(DAGSTER_URL_ENV, "") if dagster_url is None else dagster_url).strip()
        try:
            self.runner: Runner = DagsterRunner(self.manager, url) if url else WorkerPool(self.manager, workers)
        except ValueError as exc:
            raise ApiConfigError(str(exc)) from None
        self.app = build_app(self.manager, self.runner, tokens or None, max_body_bytes=max_body_bytes)

    def run(self, host: str = "127.0.0.1", port: int = 8000, **uvicorn_options: Any) -> None:
        """Serve the API with uvicorn until interrupted (OpenAPI docs at /docs)."""
        if not self.authenticated and not is_loopback(host):
            raise ApiConfigError(f"--insecure-local (insecure_local=True) serves only on a loopback address, "
                                 f"not {host}")
        import uvicorn

        uvicorn.run(self.app, host=host, port=port, **{"log_level": "info", **uvicorn_options})


def bearer_tokens(token: str | Mapping[str, str]) -> dict[str, str]:
    """``{token: user id}`` from one token (user ``"api"``) or a mapping; blank tokens are no tokens."""
    if isinstance(token, str):
        return {token.strip(): TOKEN_USER} if token.strip() else {}
    tokens = {str(t).strip(): str(user).strip() for t, user in token.items()}
    if any(not t or not user for t, user in tokens.items()):
        raise ApiConfigError("every API token needs a non-empty token and user id")
    return tokens


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
