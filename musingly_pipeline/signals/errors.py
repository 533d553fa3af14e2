"""The signal store's refusals: :class:`~musingly_pipeline.errors.MusinglyError` s with the ``SIGNAL_*`` codes.

Each keeps the built-in base it had (``ValueError``, ``RuntimeError``), so ``except ValueError`` still
catches a duplicate or an invalid envelope. The codes are in the Signals section of
``musingly_pipeline.errors.PIPELINE_CODES``.
"""

from __future__ import annotations

from musingly_core.report import Issue

from musingly_pipeline.errors import MusinglyError


class SignalError(MusinglyError):
    """A refusal of the signal store."""


class SignalRequestError(SignalError, ValueError):
    """An argument the store cannot take (a duplicate policy, a name, a window, a checkpoint's events)."""


class DuplicateEventError(SignalError, ValueError):
    """An id already stored was written with ``on_duplicate="raise"``; nothing of the batch was written."""

    def __init__(self, message: str):
        super().__init__("SIGNAL_DUPLICATE_ID", message)


class InvalidEnvelope(SignalError, ValueError):
    """Envelopes that cannot be stored; ``issues`` say where and how to fix each one (the error's own
    code and path are the first issue's)."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        if not issues:
            super().__init__("SIGNAL_INVALID", "invalid envelope")
            return
        first = issues[0]
        message = f"{first.path}: {first.message}" if first.path else first.message
        if len(issues) > 1:
            message += "; " + "; ".join(f"{i.code} {i.path}: {i.message}" if i.path else f"{i.code} {i.message}" for i in issues[1:])
        super().__init__(first.code, message, first.path)


class UnreadableLineWarning(UserWarning):
    """A partition line that could not be read (torn by a crash, or not an envelope) was skipped; a
    read's ``issues`` name it with ``SIGNAL_UNREADABLE_LINE``."""


class ForeignWriterError(SignalError, RuntimeError):
    """A day file kept changing while a batch was written: a process that does not take the store's
    lock appends to it. The batch is not acknowledged; what was written intact is found next time."""

    def __init__(self, message: str):
        super().__init__("SIGNAL_FOREIGN_WRITER", message)
