"""Pause Python's cyclic garbage collector around bulk object creation.

Parsing a 100k-spark bundle makes about 700k small objects that live on (models, tuples, dicts).
Each allocation threshold crossed starts a collection, and the older generations get rescanned as
they grow, so the collector took close to half of the parse time while finding nothing to free:
none of these objects form cycles (the signal store pauses it for the same reason while it builds or
writes tens of thousands of envelopes). Reference counting still frees everything as usual; only the
cycle search waits until the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (nesting is fine); re-enable it after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
