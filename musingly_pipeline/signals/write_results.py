"""A batch's results (one :class:`WriteResult` per envelope) built in C, and plainly.

After a batch is written, each position's result names its id, its day (where the id was stored
now, or was already), whether it was written now, and the day file. This is per-envelope work in a
write path that is otherwise per batch, so :func:`write_results` builds them without a Python-level
call per result: the days and locations are gathered with numpy and each
tuple is made by ``tuple.__new__`` (what ``WriteResult(*values)`` ends in). :func:`write_results_plain`
is the reference the property test (``musingly_pipeline_tests/signals/test_write_results.py``) holds
it to.
"""

from __future__ import annotations

import functools
from datetime import date

import numpy as np

from musingly_pipeline.signals.store import WriteResult

_result = functools.partial(tuple.__new__, WriteResult)  # _result(values): WriteResult(*values), in C


def write_results(event_ids: list[str], days: list[date], locations: list[str], which: np.ndarray,
                  written: np.ndarray) -> list[WriteResult]:
    """``[WriteResult(event_ids[i], days[which[i]], written[i], locations[which[i]]) for each i]``."""
    day_objects = np.empty(max(len(days), 1), object)
    day_objects[:len(days)] = days
    places = np.array(locations or [""], object)
    return list(map(_result, zip(event_ids, day_objects[which].tolist(), written.tolist(), places[which].tolist())))


def write_results_plain(event_ids: list[str], days: list[date], locations: list[str], which: np.ndarray,
                        written: np.ndarray) -> list[WriteResult]:
    """:func:`write_results`, one ``WriteResult`` at a time: the reference."""
    return [WriteResult(event_id, days[k], bool(w), locations[k])
            for event_id, k, w in zip(event_ids, which.tolist(), written.tolist())]
