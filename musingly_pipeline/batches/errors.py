"""What the batches area refuses: :class:`BatchError` and the refusals of endpoint hooks.

Every one is a :class:`~musingly_pipeline.errors.MusinglyError` with a code of the batches section
of :data:`~musingly_pipeline.errors.PIPELINE_CODES`; the CLI prints it, the REST API answers it
(with :attr:`RequestRefused.status` where a hook chose one), the Dagster job fails with it.
"""

from __future__ import annotations

from musingly_pipeline.errors import MusinglyError

# The statuses a BatchRefused may ask for (documented in the OpenAPI document).
REFUSAL_STATUSES = (403, 409, 422, 429)


class BatchError(MusinglyError):
    """A refused batch operation: a stable ``code`` and a message that says the fix."""


class BatchRefused(BatchError, ValueError):
    """Raise from ``before_create_batch`` to refuse a request with an HTTP status of your choice
    (403 forbidden, 409 conflict, 422 unprocessable, 429 too many requests; default 422).

    Its code is ``BATCH_REFUSED``; it is also a ValueError, as any ValueError a hook raises refuses
    the request the same way.
    """

    def __init__(self, message: str, *, status: int = 422):
        if status not in REFUSAL_STATUSES:
            raise ValueError(f"status must be one of {REFUSAL_STATUSES}, not {status}")
        super().__init__("BATCH_REFUSED", message)
        self.status = status


class RequestRefused(BatchError):
    """A request an endpoint hook refused: a BatchError with the HTTP status the API answers."""

    def __init__(self, code: str, message: str, status: int, path: str = ""):
        super().__init__(code, message, path)
        self.status = status
