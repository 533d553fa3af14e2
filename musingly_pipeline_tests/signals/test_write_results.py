"""A batch's results built in C (tuple.__new__ over numpy-gathered columns) equal the plain WriteResults."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from musingly_pipeline.signals.store import WriteResult
from musingly_pipeline.signals.write_results import write_results, write_results_plain


@st.composite
def batches(draw):
    days = [date(2026, 2, 5) + timedelta(days=d) for d in draw(st.lists(st.integers(0, 30), max_size=5))]
    n = draw(st.integers(0, 12)) if days else 0
    which = np.array(draw(st.lists(st.integers(0, len(days) - 1), min_size=n, max_size=n)) if days else [], np.intp)
    written = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    ids = draw(st.lists(st.text(max_size=5), min_size=n, max_size=n))
    return ids, days, [f"store/signals/{d.isoformat()}.jsonl" for d in days], which, written


@settings(max_examples=200, deadline=None)
@given(batches())
def test_results_are_the_plain_write_results(batch):
    fast, plain = write_results(*batch), write_results_plain(*batch)
    assert fast == plain
    assert all(type(r) is WriteResult and type(r.written) is bool for r in fast)
