"""Endpoint hooks: what a batch type adds to the REST API's requests and to the end of every run.

    class CustomerDataEndpoint(BaseEndpoint):        # batch type 'customer_data', found like processors
        def before_create_batch(self, request_data, ctx):
            if not self._check_quota(ctx.user_id):
                raise ValueError("Quota exceeded")    # refuses the request: 422 BATCH_REFUSED
            return request_data
        def after_batch_complete(self, batch_id, summary, ctx):
            self._send_slack_notification(summary)

An endpoint class is found like a processor: ``registry.discover(package)`` registers every
``*Endpoint`` class it finds next to the ``*Processor`` classes (``CustomerDataEndpoint`` ->
``customer_data``, or a ``batch_type`` attribute), or ``registry.register(cls)``. One instance
serves a registry (so an API process) for its whole life, possibly from several threads at once.

- ``before_create_batch(request_data, ctx)`` runs for ``POST /api/batches`` only (the request that
  carries data; ``/reprocess`` copies a batch's items and does not call it). ``request_data`` is
  the validated body as a dict (``batch_type``, ``items``, ``process``, ``metadata``). Return it
  (changed or not; None keeps it), or raise to refuse the request: a ``ValueError`` (or
  :class:`BatchRefused`, which can pick 403, 409 or 429) refuses it with ``BATCH_REFUSED`` and its
  message; any other exception is a bug in the hook (``BATCH_ENDPOINT_FAILED``, 500). The hook
  runs in the transaction that then creates the batch, so its ``ctx.execute`` writes commit only
  with the batch, and nothing is written when the request is refused.
- ``after_batch_complete(batch_id, summary, ctx)`` runs once at the end of every processing run
  that gave every item an outcome (the batch is then ``completed`` or ``failed``), whichever way
  the run was started: the API's worker pool, the ``process_batch`` Dagster job, ``musingly batch
  process``/``reprocess``, or ``BatchManager.process_batch`` from Python. It is called by the
  BatchManager after the run's outcome is committed, while the run still holds the batch's lock,
  in a transaction of its own. If it raises, its writes roll back, the error and traceback go to
  the batch's audit log (``BATCH_ENDPOINT_FAILED``), and the batch and its items stay as they were:
  nothing of the batch's results is lost, and the run still returns its summary. A run that stops
  early (killed, or stopped by a shutting-down API) does not call it; the run that finishes the
  batch does. If the process dies after the outcome commits and before the hook returns, the hook
  is not called again (at most once per run).

``ctx`` (:class:`EndpointContext`) says who called (``user_id``: the API token's user; in
``after_batch_complete`` the user who created the batch, None for batches made outside the API),
runs SQL in the hook's transaction (``execute``, ``execute_one``) and writes to the batch's audit
log (``info``, ``warning``, ``error``; lines of ``before_create_batch`` are written with the new
batch, or only to the Python logger when the request is refused).
"""

from __future__ import annotations

import logging
import traceback
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from musingly_pipeline.batches import store
from musingly_pipeline.batches.errors import BatchError, BatchRefused, RequestRefused
from musingly_pipeline.batches.item_json import storable_text
from musingly_pipeline.batches.processor import batch_type_for
from musingly_pipeline.batches.records import LogEntry

if TYPE_CHECKING:
    from musingly_pipeline.batches.records import BatchSummary

ENDPOINT_SUFFIX = "Endpoint"
REQUEST_KEYS = ("batch_type", "items", "process", "metadata")
# The longest message of a hook's exception kept in an error.
MAX_MESSAGE = 2000

logger = logging.getLogger("musingly_pipeline.batches")


class EndpointContext:
    """Who called, the hook's transaction and the batch's audit log, for a :class:`BaseEndpoint` hook."""

    def __init__(self, connection: psycopg.Connection, *, user_id: str | None, batch_type: str,
                 batch_id: uuid.UUID | None = None):
        self._connection = connection
        self.user_id = user_id
        self.batch_type = batch_type
        self.batch_id = batch_id
        self._logs: list[tuple[str, str, dict[str, Any]]] = []

    def execute(self, query, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement in the hook's transaction; return its rows as dicts."""
        cursor = self._connection.execute(query, params)
        return cursor.fetchall() if cursor.description is not None else []

    def execute_one(self, query, params: Any = None) -> dict[str, Any] | None:
        """Run one statement in the hook's transaction; return its first row as a dict, or None."""
        cursor = self._connection.execute(query, params)
        return cursor.fetchone() if cursor.description is not None else None

    def info(self, message: str, **details: Any) -> None:
        self._log("info", message, details)

    def warning(self, message: str, **details: Any) -> None:
        self._log("warning", message, details)

    def error(self, message: str, **details: Any) -> None:
        self._log("error", message, details)

    def _log(self, level: str, message: str, details: dict[str, Any]) -> None:
        self._logs.append((level, storable_text(str(message)), details))
        logger.log({"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[level],
                   "batch %s (%s endpoint): %s", self.batch_id or "not created yet", self.batch_type, message)

    def take_logs(self, batch_id: uuid.UUID) -> list[LogEntry]:
        """(For the framework.) The lines logged so far, as audit log rows of ``batch_id``."""
        logs, self._logs = self._logs, []
        return [LogEntry(batch_id, None, level, message, details) for level, message, details in logs]


class BaseEndpoint:
    """REST API and completion hooks of one batch type (see the module docstring)."""

    batch_type: str | None = None

    @classmethod
    def resolved_batch_type(cls) -> str:
        return cls.batch_type or batch_type_for(cls.__name__, ENDPOINT_SUFFIX)

    def before_create_batch(self, request_data: dict[str, Any], ctx: EndpointContext) -> dict[str, Any] | None:
        """Check or change a ``POST /api/batches`` request; raise ValueError to refuse it."""
        return request_data

    def after_batch_complete(self, batch_id: uuid.UUID, summary: BatchSummary, ctx: EndpointContext) -> None:
        """Runs once when a processing run has given every item an outcome (notifications, webhooks)."""


def before_create(endpoint: BaseEndpoint, request_data: dict[str, Any], ctx: EndpointContext) -> dict[str, Any]:
    """Call ``endpoint.before_create_batch``; return the request to create, or raise RequestRefused/BatchError."""
    name = f"{type(endpoint).__name__}.before_create_batch"
    try:
        result = endpoint.before_create_batch(request_data, ctx)
    except BatchRefused as exc:
        logger.info("%s refused a request of %s: %s", name, ctx.user_id, exc.message)
        raise RequestRefused("BATCH_REFUSED", f"{name} refused the batch: {_cut(exc.message)}", exc.status) from exc
    except BatchError:
        raise
    except ValueError as exc:
        logger.info("%s refused a request of %s: %s", name, ctx.user_id, exc)
        raise RequestRefused("BATCH_REFUSED", f"{name} refused the batch: {_text(exc)}", 422) from exc
    except Exception as exc:
        logger.exception("%s raised", name)
        raise RequestRefused("BATCH_ENDPOINT_FAILED", f"{name} raised {type(exc).__name__}: {_text(exc)}; "
                             "nothing was created; this is a fault of the endpoint, not of the request", 500) from exc
    if result is None:
        return request_data
    problem = _request_problem(result, ctx.batch_type)
    if problem:
        raise RequestRefused("BATCH_ENDPOINT_FAILED", f"{name} {problem}; nothing was created", 500)
    return result


def _request_problem(result: Any, batch_type: str) -> str | None:
    if not isinstance(result, dict):
        return f"returned a {type(result).__name__}, not the request data (a dict) or None"
    unknown = sorted(set(result) - set(REQUEST_KEYS))
    if unknown:
        return f"returned unknown request fields {unknown}; a request has {', '.join(REQUEST_KEYS)}"
    if result.get("batch_type") != batch_type:
        return f"changed batch_type to {result.get('batch_type')!r}; an endpoint serves its own batch type only"
    if not isinstance(result.get("process", False), bool):
        return "returned a `process` that is not true or false"
    if "items" not in result:
        return "returned a request without items"
    return None


def after_complete(conn: psycopg.Connection, endpoint: BaseEndpoint, summary: BatchSummary) -> None:
    """Call ``endpoint.after_batch_complete`` in its own transaction; log its failure on the batch."""
    name = f"{type(endpoint).__name__}.after_batch_complete"
    ctx = EndpointContext(conn, user_id=summary.created_by, batch_type=summary.batch_type,
                          batch_id=summary.batch_id)
    try:
        with conn.transaction():
            endpoint.after_batch_complete(summary.batch_id, summary, ctx)
            ctx.info(f"{name} ran", batch_status=summary.status)
            store.write_logs(conn, ctx.take_logs(summary.batch_id))
    except Exception as exc:
        message = (f"{name} raised {type(exc).__name__}: {_text(exc)}; none of its writes were kept; "
                   f"the batch's results are unchanged")
        logger.error("batch %s: %s", summary.batch_id, message, exc_info=exc)
        lines = ctx.take_logs(summary.batch_id) + [LogEntry(
            summary.batch_id, None, "error", message,
            {"code": "BATCH_ENDPOINT_FAILED", "traceback": storable_text(traceback.format_exc())})]
        try:
            with conn.transaction():
                store.write_logs(conn, lines)
        except psycopg.Error:
            logger.exception("batch %s: could not record that %s failed", summary.batch_id, name)


def _text(exc: BaseException) -> str:
    return _cut(str(exc).strip() or type(exc).__name__)


def _cut(text: str) -> str:
    text = storable_text(text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"
