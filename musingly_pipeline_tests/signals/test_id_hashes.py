"""The batch hash and the batch's first positions (numpy) agree with their plain versions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from musingly_pipeline.signals.id_hashes import first_positions, first_positions_plain, id_hashes, id_hashes_plain

# ids of every length around the 8-byte words, any code point (lone surrogates too), trailing NULs
IDS = st.text(max_size=40) | st.sampled_from(["", "a", "a\x00", "\x00", "é✓😀", "\ud800", "x" * 8, "x" * 9, "s-1"])


@settings(max_examples=300, deadline=None)
@given(st.lists(IDS, max_size=20))
def test_the_batch_hash_is_the_plain_hash(ids):
    assert id_hashes(ids).tolist() == id_hashes_plain(ids).tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "dd", "eee", "ffff"]), max_size=30), st.integers(1, 4))
def test_first_positions_agree_with_the_plain_dict_even_when_hashes_collide(ids, distinct):
    for hashes in (id_hashes(ids), np.array([len(i) % distinct for i in ids], np.uint64)):
        by_hash = np.argsort(hashes, kind="stable")
        assert first_positions(ids, hashes, by_hash).tolist() == first_positions_plain(ids).tolist()
