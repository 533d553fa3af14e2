"""A refusal of the bundles area as a Dagster run's failure: its code first, and as metadata."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from musingly_pipeline.errors import MusinglyError


def failure(error: MusinglyError, metadata: dict | None = None) -> dg.Failure:
    """``dg.Failure`` whose description is ``CODE: message`` and whose metadata has ``code``."""
    return dg.Failure(description=str(error), metadata={"code": error.code, **(metadata or {})},
                      allow_retries=False)


@contextmanager
def refused() -> Iterator[None]:
    """Raise a :class:`MusinglyError` raised inside as the run's :func:`failure`."""
    try:
        yield
    except MusinglyError as exc:
        raise failure(exc) from None
