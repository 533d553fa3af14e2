"""The processor API: subclass :class:`BaseProcessor`, name it for its batch type, write two methods.

``CustomerDataProcessor`` handles batches of type ``customer_data``. ``validate_item`` says whether
an item may be processed (a falsy return or an exception fails the item as ``ITEM_INVALID`` and
``process_item`` is never called); ``process_item`` writes it through the context and may return
``{'target_table': ..., 'target_id': ..., ...}``, kept on the item.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from musingly_pipeline.batches.context import ImportContext
    from musingly_pipeline.batches.records import BatchSummary, ImportBatchItem

SUFFIX = "Processor"


def batch_type_for(class_name: str, suffix: str = SUFFIX) -> str:
    """``CustomerDataProcessor`` -> ``customer_data``; ``HTTPLogProcessor`` -> ``http_log``.

    ``suffix`` is the class kind's suffix (``CustomerDataEndpoint`` with ``"Endpoint"``).
    """
    stem = class_name[: -len(suffix)] if class_name.endswith(suffix) else class_name
    stem = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", stem)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", stem).lower()


# Canonical JSON: sorted keys, no spaces, text as is; values JSON cannot hold become strings.
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_key(source_data: Any) -> str:
    """SHA-256 of the canonical JSON of an item: the same content gives the same key."""
    return hash_text(CANONICAL_JSON.encode(source_data))


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class BaseProcessor:
    """Business logic for one batch type. One instance serves one run of one batch.

    Class attributes:
    - ``batch_type``: set it to override the name derived from the class name.
    - ``skip_already_applied`` (default True): an item whose :meth:`item_key` was already applied
      for this batch type (in any batch) is marked ``skipped`` instead of processed again. Set it to
      False for a processor that must run every time (it must then be idempotent itself).
    - ``example_items`` (default None): a few items that import successfully; the REST API's
      OpenAPI document shows them as this batch type's request examples.
    - ``replay_safe`` (default False): set it to True when ``validate_item`` and ``process_item``
      act only through ``ctx`` (the database and the log) and keep no state between items that a
      second call would break. The framework then runs items in groups under one savepoint (one
      round trip per group instead of per item, much faster for small items), in psycopg's
      pipeline mode (writes are sent without waiting for their result, see BatchManager); when an
      item fails, the group's writes and log lines are rolled back and its items run again: those
      before the failing one together, the failing one alone. So an item may be processed twice,
      but only the run whose writes are kept counts (outcome, log lines, applied key). Using
      ``ctx.connection`` turns pipeline mode off for the rest of the run. Leave it False for items
      that are slow anyway (a second run costs more than the round trip saved) or that reach
      outside the database (files, HTTP, counters in ``self`` or ``ctx.metadata``).
    """

    batch_type: str | None = None
    skip_already_applied: bool = True
    replay_safe: bool = False
    # Items that import successfully, shown as the REST API's request examples for this batch type.
    example_items: ClassVar[list[dict[str, Any]] | None] = None

    @classmethod
    def resolved_batch_type(cls) -> str:
        return cls.batch_type or batch_type_for(cls.__name__)

    def item_key(self, source_data: dict[str, Any]) -> str:
        """What identifies this item's content; by default a hash of its canonical JSON."""
        return content_key(source_data)

    def validate_item(self, item: ImportBatchItem, ctx: ImportContext) -> bool:
        """True when the item may be processed. Raise or return False to fail it as ITEM_INVALID."""
        return True

    def process_item(self, item: ImportBatchItem, ctx: ImportContext) -> dict[str, Any] | None:
        """Write one item through ``ctx``; its writes roll back alone if it raises (see ``replay_safe``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement process_item(item, ctx)")

    def on_batch_start(self, ctx: ImportContext) -> None:
        """Runs once per processing run, before any item, in its own transaction."""

    def on_batch_complete(self, ctx: ImportContext, summary: BatchSummary) -> None:
        """Runs once per processing run, after every item, in its own transaction."""
